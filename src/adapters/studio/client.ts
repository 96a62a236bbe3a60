/**
 * sosync's FS client: the parts of this folder put together behind one interface. Every row it
 * writes carries noSyncJobSwitch = 1 so FS does not announce sosync's own change back (SPEC 4.3).
 */
import type { Logger } from '../../log.ts';
import { dateParam, openStudioConnection, type StudioClientOptions } from './connection.ts';
import { StudioError } from './errors.ts';
import { isoToLandId, landIdToIso, readTypenDefault, serverTimeUtc } from './lookups.ts';
import { readPersonStack, utcToday } from './personStackRead.ts';
import { deletePersonStack, writePersonStack } from './personStackWrite.ts';
import { checkId, findIdByFsoId, findIdsByFsoId, tableAccessor, type TableAccessor } from './tableAccess.ts';
import { personBPKTable, personTable, xBPKAccountTable } from './tables.ts';
import type {
  DeleteResult, IsoDate, PersonBPKRow, PersonBPKValues, PersonStack, PersonStackWrite, PersonStackWriteResult,
  XBPKAccountRow, XBPKAccountValues,
} from './types.ts';

export type { StudioClientOptions };

export interface StudioClient {
  /** host:port, as named in errors */
  readonly address: string;

  readPersonStack(personId: number, today?: IsoDate): Promise<PersonStack | null>;
  findPersonIdByFsoId(fsoId: number): Promise<number | null>;
  /** the Person and the xBPKAccount a bPK refers to, by their FSO ids, in one round trip */
  findBpkOwnersByFsoIds(partnerFsoId: number, companyFsoId: number): Promise<{ personId: number | null; accountId: number | null }>;
  writePersonStack(input: PersonStackWrite): Promise<PersonStackWriteResult>;
  deletePersonStack(personId: number): Promise<DeleteResult>;

  /** dbo.xBPKAccount: one company per row */
  readonly xBPKAccount: TableAccessor<XBPKAccountRow, XBPKAccountValues>;
  /** dbo.PersonBPK: one bPK per row; a new one names its person and company */
  readonly personBPK: TableAccessor<PersonBPKRow, PersonBPKValues, PersonBPKValues & { PersonID: number; xBPKAccountID: number }>;

  /** dbo.Typen.Formularwert of a system default (fsIds.ts typenIds) */
  typenDefault(typenId: number): Promise<string | null>;
  /** sosync.LandID_to_IsoCountryCode2 */
  landIdToIso(landId: number): Promise<string | null>;
  /** sosync.IsoCountryCode2_to_LandID */
  isoToLandId(isoCode: string): Promise<number | null>;
  /** SELECT SYSUTCDATETIME() — the FS server's clock, for the drift check */
  serverTimeUtc(): Promise<Date>;
  /** FS's clock minus ours in ms, taken at the middle of the round trip of SYSUTCDATETIME() */
  clockOffsetMs(): Promise<number>;
  close(): Promise<void>;
}

export function createStudioClient(options: StudioClientOptions, logger: Logger): StudioClient {
  const connection = openStudioConnection(options, logger);
  const { address, run } = connection;

  const client: StudioClient = {
    address,

    async readPersonStack(personId, today = utcToday()) {
      checkId('PersonID', personId);
      dateParam(today, 'today');
      return readPersonStack(run, personId, today);
    },

    findPersonIdByFsoId: (fsoId) => findIdByFsoId(run, personTable, fsoId),
    async findBpkOwnersByFsoIds(partnerFsoId, companyFsoId) {
      const [personId, accountId] = await findIdsByFsoId(run, [[personTable, partnerFsoId], [xBPKAccountTable, companyFsoId]]);
      return { personId, accountId };
    },

    writePersonStack: (input) => connection.inTransaction((scope) => writePersonStack(scope, input)),

    deletePersonStack(personId) {
      checkId('PersonID', personId);
      return connection.inTransaction(async (scope) => {
        const deleted = await deletePersonStack(scope, personId);
        return { deleted, request: scope.written, answer: 'success' as const };
      });
    },

    xBPKAccount: tableAccessor(connection, xBPKAccountTable),
    personBPK: tableAccessor(connection, personBPKTable),

    typenDefault: (typenId) => readTypenDefault(run, typenId),
    landIdToIso: (landId) => landIdToIso(run, landId),
    isoToLandId: (isoCode) => isoToLandId(run, isoCode),
    serverTimeUtc: () => serverTimeUtc(run, address),

    async clockOffsetMs() {
      await connection.connect();
      const sent = Date.now();
      const server = await client.serverTimeUtc();
      const received = Date.now();
      return server.getTime() - (sent + received) / 2;
    },

    close: () => connection.close(),
  };
  nameCallsInErrors(client);
  return client;
}

/** Every failure of a client method names that method, so a job's error text says which FS call failed. */
function nameCallsInErrors(target: object, prefix = ''): void {
  const methods = target as Record<string, unknown>;
  for (const [name, member] of Object.entries(methods)) {
    const call = `${prefix}${name}`;
    if (member !== null && typeof member === 'object') {
      nameCallsInErrors(member, `${call}.`);
      continue;
    }
    if (typeof member !== 'function' || name === 'close') continue;
    methods[name] = async (...args: unknown[]) => {
      try {
        return await (member as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      } catch (err) {
        if (err instanceof StudioError && err.call === undefined) {
          err.call = call;
          err.message = `${err.message} (in FS call ${call})`;
          if (err.answer !== undefined) err.answer = err.message;
        }
        throw err;
      }
    };
  }
}
