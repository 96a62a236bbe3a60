/**
 * sosync's FS client: parameterized T-SQL over one mssql pool. Reads and writes the FS rows the
 * flows need (person stack, xBPKAccount, PersonBPK) and the helpers around them. Every row it
 * writes carries noSyncJobSwitch = 1 so FS does not announce sosync's own change back (SPEC 4.3).
 */
import sql from 'mssql';
import type { Logger } from '../../log.ts';
import { StudioError, StudioInputError, StudioQueryError, StudioUnavailableError } from './errors.ts';
import { guardTokenStreams } from './tokenStreamGuard.ts';
import {
  groupIds, individualSalutationTypeId, phoneTypeIds, typenIds,
  type DeleteResult, type IsoDate, type PersonAdresseAMRow, type PersonAdresseRow,
  type PersonBPKRow, type PersonBPKValues, type PersonEmailGruppeRow, type PersonEmailRow, type PersonGruppeRow,
  type PersonRow, type PersonStack, type PersonStackWrite, type PersonStackWriteResult, type PersonTelefonRow,
  type RecordWriteResult, type WriteMeta, type WrittenRow, type XBPKAccountRow, type XBPKAccountValues,
} from './types.ts';

export interface StudioClientOptions {
  host: string;
  port?: number;
  database: string;
  user: string;
  password: string;
  encrypt: boolean;
  trustServerCertificate: boolean;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  /** most connections the pool opens; default 5 */
  poolMax?: number;
}

export interface StudioClient {
  /** host:port, as named in errors */
  readonly address: string;

  readPersonStack(personId: number, today?: IsoDate): Promise<PersonStack | null>;
  findPersonIdByFsoId(fsoId: number): Promise<number | null>;
  writePersonStack(input: PersonStackWrite): Promise<PersonStackWriteResult>;
  deletePersonStack(personId: number): Promise<DeleteResult>;

  readXBPKAccount(id: number): Promise<XBPKAccountRow | null>;
  findXBPKAccountIdByFsoId(fsoId: number): Promise<number | null>;
  createXBPKAccount(values: XBPKAccountValues, meta: WriteMeta): Promise<RecordWriteResult>;
  updateXBPKAccount(id: number, values: XBPKAccountValues, meta: WriteMeta): Promise<RecordWriteResult>;
  deleteXBPKAccount(id: number): Promise<DeleteResult>;

  readPersonBPK(id: number): Promise<PersonBPKRow | null>;
  findPersonBPKIdByFsoId(fsoId: number): Promise<number | null>;
  createPersonBPK(values: PersonBPKValues & { PersonID: number; xBPKAccountID: number }, meta: WriteMeta): Promise<RecordWriteResult>;
  updatePersonBPK(id: number, values: PersonBPKValues, meta: WriteMeta): Promise<RecordWriteResult>;
  deletePersonBPK(id: number): Promise<DeleteResult>;

  /** dbo.Typen.Formularwert of a system default (200120, 200122, 200525, ...) */
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

// ---------------------------------------------------------------------------------------------
// Column knowledge: which FS columns a caller may write, and their SQL types.

const syncColumnNames = ['sosync_fso_id', 'sosync_write_date', 'write_date', 'noSyncJobSwitch'];
const validityNames = ['GültigMonatArray', 'GültigVon', 'GültigBis'];

const writableColumns: Record<string, string[]> = {
  Person: ['PersontypID', 'Vorname', 'Name', 'Name2', 'Titel', 'Geburtsdatum', 'GeschlechttypID', 'NationalitätID',
    'SprachetypID', 'zMarketingID', 'Anlagedatum', 'xIDA', 'BPKErzwungenVorname', 'BPKErzwungenNachname',
    'BPKErzwungenGeburtsdatum', 'BPKErzwungenPLZ'],
  PersonAdresse: ['PersonID', 'AdresstypID', 'AnredeformtypID', 'IndividuelleAnrede', 'Strasse', 'Hausnummer', 'PLZ',
    'Ort', 'LandID', 'FehlerZähler', ...validityNames, 'xIDA'],
  PersonAdresseAM: ['PersonAdresseID', 'PersonID', 'PAC', 'xIDA'],
  PersonEmail: ['PersonID', 'AnredeformtypID', 'EmailVor', 'EmailNach', ...validityNames],
  PersonTelefon: ['PersonID', 'TelefontypID', 'Landkennzeichen', 'Vorwahl', 'Rufnummer', ...validityNames],
  PersonGruppe: ['PersonID', 'zGruppeDetailID', 'Steuerung', 'GültigVon', 'GültigBis', 'xIDA'],
  PersonEmailGruppe: ['PersonEmailID', 'zGruppeDetailID', 'Steuerung', 'GültigVon', 'GültigBis', 'xIDA'],
  xBPKAccount: ['Name'],
  PersonBPK: ['PersonID', 'xBPKAccountID', 'Anlagedatum', 'BPKPrivat', 'BPKOeffentlich', 'Vorname', 'Nachname',
    'Geburtsdatum', 'PositivAmUm', 'PositivDaten', 'FehlerAmUm', 'FehlerDaten', 'FehlerAntwortDaten', 'FehlerVorname',
    'FehlerNachname', 'FehlerGeburtsdatum', 'FehlerCode', 'FehlerText'],
};

const keyColumns: Record<string, string> = {
  Person: 'PersonID', PersonAdresse: 'PersonAdresseID', PersonAdresseAM: 'PersonAdresseAMID',
  PersonEmail: 'PersonEmailID', PersonTelefon: 'PersonTelefonID', PersonGruppe: 'PersonGruppeID',
  PersonEmailGruppe: 'PersonEmailGruppeID', xBPKAccount: 'xBPKAccountID', PersonBPK: 'PersonBPKID',
};

const dateColumns = new Set(['Geburtsdatum', 'BPKErzwungenGeburtsdatum', 'GültigVon', 'GültigBis', 'FehlerGeburtsdatum']);
const dateTimeColumns = new Set(['Anlagedatum', 'PositivAmUm', 'FehlerAmUm', 'sosync_write_date', 'write_date']);
const bitColumns = new Set(['noSyncJobSwitch', 'Steuerung']);
const intColumn = (c: string) => /ID$/.test(c) || c === 'xIDA' || c === 'FehlerZähler' || c === 'sosync_fso_id';

type ParamType = 'int' | 'bit' | 'date' | 'datetime2' | 'nvarchar';

function columnType(column: string): ParamType {
  if (dateColumns.has(column)) return 'date';
  if (dateTimeColumns.has(column)) return 'datetime2';
  if (bitColumns.has(column)) return 'bit';
  if (intColumn(column)) return 'int';
  return 'nvarchar';
}

interface Param {
  name: string;
  type: ParamType;
  value: unknown;
}

const isoDatePattern = /^\d{4}-\d{2}-\d{2}$/;

function dateParam(value: unknown, column: string): Date | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new StudioInputError(`${column}: invalid date`);
    return new Date(Date.UTC(value.getUTCFullYear(), value.getUTCMonth(), value.getUTCDate()));
  }
  if (typeof value === 'string' && isoDatePattern.test(value)) {
    const d = new Date(`${value}T00:00:00Z`);
    if (!Number.isNaN(d.getTime()) && d.toISOString().startsWith(value)) return d;
  }
  throw new StudioInputError(`${column}: "${String(value)}" is not a date (YYYY-MM-DD)`);
}

function paramValue(p: Param): unknown {
  const v = p.value;
  if (v === null || v === undefined) return null;
  switch (p.type) {
    case 'date': return dateParam(v, p.name);
    case 'datetime2': {
      const d = v instanceof Date ? v : new Date(String(v));
      if (Number.isNaN(d.getTime())) throw new StudioInputError(`${p.name}: "${String(v)}" is not a date and time`);
      return d;
    }
    case 'bit': return v === true || v === 1 || v === '1';
    case 'int': {
      const n = typeof v === 'number' ? v : Number(v);
      if (!Number.isInteger(n)) throw new StudioInputError(`${p.name}: "${String(v)}" is not an integer`);
      return n;
    }
    default: return String(v);
  }
}

function mssqlType(type: ParamType) {
  switch (type) {
    case 'int': return sql.Int;
    case 'bit': return sql.Bit;
    case 'date': return sql.Date;
    case 'datetime2': return sql.DateTime2(3);
    default: return sql.NVarChar(sql.MAX);
  }
}

/** Rows as the client hands them out: `date` columns as 'YYYY-MM-DD'. */
function normalizeRow<T>(row: Record<string, unknown> | undefined): T | null {
  if (!row) return null;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    out[k] = dateColumns.has(k) && v instanceof Date ? v.toISOString().slice(0, 10) : v;
  }
  return out as T;
}

const utcToday = (): IsoDate => new Date().toISOString().slice(0, 10);

function dayBefore(day: IsoDate): IsoDate {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() - 1);
  return d.toISOString().slice(0, 10);
}

const openEnd = '2099-12-31';
const fullYear = '111111111111';

// The current-row rule of SPEC 6.2: valid today, full-year month mask first, then the newest row.
const validToday = '([GültigVon] IS NULL OR [GültigVon] <= @today) AND ([GültigBis] IS NULL OR [GültigBis] >= @today)';
const monthMaskFirst = `CASE WHEN [GültigMonatArray] IS NULL OR [GültigMonatArray] = '' OR [GültigMonatArray] = '${fullYear}' THEN 0 ELSE 1 END`;
const currentAddressId = `(SELECT TOP 1 [PersonAdresseID] FROM dbo.[PersonAdresse] WHERE [PersonID] = @personId AND ${validToday} ORDER BY ${monthMaskFirst}, [PersonAdresseID] DESC)`;
const currentEmailId = `(SELECT TOP 1 [PersonEmailID] FROM dbo.[PersonEmail] WHERE [PersonID] = @personId AND ${validToday} ORDER BY ${monthMaskFirst}, [PersonEmailID] DESC)`;
const currentPhone = (typeId: number) =>
  `SELECT TOP 1 * FROM dbo.[PersonTelefon] WHERE [PersonID] = @personId AND [TelefontypID] = ${typeId} AND ${validToday} ORDER BY ${monthMaskFirst}, [PersonTelefonID] DESC;`;
const currentGroup = (groupId: number) =>
  `SELECT TOP 1 * FROM dbo.[PersonGruppe] WHERE [PersonID] = @personId AND [zGruppeDetailID] = ${groupId} AND ${validToday} ORDER BY [PersonGruppeID] DESC;`;

const personStackSql = [
  'SELECT * FROM dbo.[Person] WHERE [PersonID] = @personId;',
  `SELECT * FROM dbo.[PersonAdresse] WHERE [PersonAdresseID] = ${currentAddressId};`,
  `SELECT TOP 1 * FROM dbo.[PersonAdresseAM] WHERE [PersonAdresseID] = ${currentAddressId} ORDER BY [PersonAdresseAMID] DESC;`,
  `SELECT * FROM dbo.[PersonEmail] WHERE [PersonEmailID] = ${currentEmailId};`,
  currentPhone(phoneTypeIds.phone),
  currentPhone(phoneTypeIds.mobile),
  currentPhone(phoneTypeIds.fax),
  currentGroup(groupIds.donationDeductionOptOut),
  currentGroup(groupIds.donationReceipt),
  `SELECT TOP 1 * FROM dbo.[PersonEmailGruppe] WHERE [PersonEmailID] = ${currentEmailId} AND [zGruppeDetailID] = ${groupIds.newsletter} AND ${validToday} ORDER BY [PersonEmailGruppeID] DESC;`,
  // The stack's dates are maxima over all of the person's rows, current or not: a row that a user
  // ended (and that thereby left the stack) is a change of the stack too.
  ...['PersonAdresse', 'PersonAdresseAM', 'PersonEmail', 'PersonTelefon', 'PersonGruppe'].map((table) =>
    `SELECT MAX([write_date]) AS [write_date], MAX([sosync_write_date]) AS [sosync_write_date] FROM dbo.[${table}] WHERE [PersonID] = @personId;`),
  `SELECT MAX([write_date]) AS [write_date], MAX([sosync_write_date]) AS [sosync_write_date] FROM dbo.[PersonEmailGruppe] WHERE [PersonEmailID] IN (SELECT [PersonEmailID] FROM dbo.[PersonEmail] WHERE [PersonID] = @personId);`,
].join('\n');

/** The composed number of a PersonTelefon row (SPEC 6.2). */
export function composePhoneNumber(row: Pick<PersonTelefonRow, 'Landkennzeichen' | 'Vorwahl' | 'Rufnummer'> | null): string {
  if (!row) return '';
  return [row.Landkennzeichen, row.Vorwahl, row.Rufnummer]
    .map((p) => (p ?? '').trim())
    .filter((p) => p !== '')
    .join(' ');
}

// ---------------------------------------------------------------------------------------------

type Runner = (text: string, params?: Param[]) => Promise<Record<string, unknown>[][]>;

const connectionCodes = new Set(['ESOCKET', 'ETIMEOUT', 'ECONNCLOSED', 'ELOGIN', 'EINSTLOOKUP', 'ENOTOPEN', 'ENOCONN', 'ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT']);

export function createStudioClient(options: StudioClientOptions, logger: Logger): StudioClient {
  const port = options.port ?? 1433;
  const address = `${options.host}:${port}`;
  const log = logger.child({ component: 'studio', host: address, database: options.database });
  guardTokenStreams(log);
  const config: sql.config = {
    server: options.host,
    port,
    database: options.database,
    user: options.user,
    password: options.password,
    connectionTimeout: options.connectTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    pool: { max: options.poolMax ?? 5, min: 0, idleTimeoutMillis: 30_000 },
    options: {
      encrypt: options.encrypt,
      trustServerCertificate: options.trustServerCertificate,
      useUTC: true,
      appName: 'sosync',
    },
  };

  let poolPromise: Promise<sql.ConnectionPool> | null = null;
  let closed = false;

  const toStudioError = (err: unknown): StudioError => {
    if (err instanceof StudioError) return err;
    const e = err as { code?: string; number?: number; message?: string; originalError?: { info?: { number?: number } } };
    const message = e?.message ?? String(err);
    const number = typeof e?.number === 'number' ? e.number : e?.originalError?.info?.number;
    if (err instanceof sql.RequestError && typeof number === 'number' && e.code === 'EREQUEST') {
      return new StudioQueryError(address, message, number, { cause: err });
    }
    if (err instanceof sql.ConnectionError || (e?.code && connectionCodes.has(e.code))) {
      return new StudioUnavailableError(address, message, e.code, { cause: err });
    }
    if (typeof number === 'number') return new StudioQueryError(address, message, number, { cause: err });
    if (err instanceof sql.TransactionError) return new StudioUnavailableError(address, message, e.code, { cause: err });
    return new StudioQueryError(address, message, 0, { cause: err });
  };

  function getPool(): Promise<sql.ConnectionPool> {
    if (closed) return Promise.reject(new StudioUnavailableError(address, 'the client is closed'));
    if (!poolPromise) {
      const pool = new sql.ConnectionPool(config);
      pool.on('error', (err) => log.warn({ err: (err as Error).message }, 'FS connection pool error'));
      poolPromise = pool.connect().then(
        (p) => {
          log.debug('connected to FS');
          return p;
        },
        (err) => {
          // A failed connect leaves the pool unusable: start over on the next call.
          poolPromise = null;
          pool.close().catch(() => undefined);
          throw err;
        },
      );
    }
    return poolPromise;
  }

  const runnerFor = (target: () => Promise<sql.ConnectionPool | sql.Transaction>): Runner => async (text, params = []) => {
    const request = new sql.Request((await target()) as sql.ConnectionPool);
    for (const p of params) request.input(p.name, mssqlType(p.type), paramValue(p));
    const result = await request.query(text);
    return (result.recordsets as unknown as Record<string, unknown>[][]) ?? [];
  };

  const run: Runner = async (text, params) => {
    try {
      return await runnerFor(getPool)(text, params);
    } catch (err) {
      throw toStudioError(err);
    }
  };

  async function inTransaction<T>(work: (q: Runner, written: WrittenRow[]) => Promise<T>): Promise<T> {
    const written: WrittenRow[] = [];
    let transaction: sql.Transaction | null = null;
    try {
      const pool = await getPool();
      transaction = new sql.Transaction(pool);
      await transaction.begin();
      const tx = transaction;
      const result = await work(runnerFor(async () => tx), written);
      await transaction.commit();
      return result;
    } catch (err) {
      if (transaction) {
        // The server may have ended the transaction already; the rollback is then a no-op.
        await transaction.rollback().catch(() => undefined);
      }
      const e = toStudioError(err);
      e.request = written;
      e.answer = e.message;
      throw e;
    }
  }

  const checkId = (what: string, id: number) => {
    if (!Number.isInteger(id) || id <= 0 || id > 2_147_483_647) throw new StudioInputError(`${what}: ${String(id)} is not a valid id`);
  };

  function checkColumns(table: string, values: Record<string, unknown>) {
    const allowed = writableColumns[table];
    for (const k of Object.keys(values)) {
      if (!allowed.includes(k) && !syncColumnNames.includes(k)) {
        throw new StudioInputError(`dbo.${table} has no writable column ${k}`);
      }
    }
  }

  const syncValues = (meta: WriteMeta): Record<string, unknown> => {
    const v: Record<string, unknown> = { sosync_write_date: meta.sosyncWriteDate, noSyncJobSwitch: true };
    if (meta.sosyncFsoId !== undefined) v.sosync_fso_id = meta.sosyncFsoId;
    return v;
  };

  const definedOnly = (values: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined));

  async function insertRow<T>(q: Runner, written: WrittenRow[], table: string, values: Record<string, unknown>): Promise<T> {
    values = definedOnly(values);
    checkColumns(table, values);
    const cols = Object.keys(values);
    const params = cols.map((c, i) => ({ name: `v${i}`, type: columnType(c), value: values[c] }));
    const text = `INSERT INTO dbo.[${table}] (${cols.map((c) => `[${c}]`).join(', ')}) OUTPUT INSERTED.* VALUES (${params.map((p) => `@${p.name}`).join(', ')});`;
    const [rows] = await q(text, params);
    const row = normalizeRow<Record<string, unknown>>(rows?.[0]);
    if (!row) throw new StudioQueryError(address, `INSERT into dbo.${table} returned no row`, 0);
    written.push({ table: `dbo.${table}`, action: 'insert', id: Number(row[keyColumns[table]]), values });
    return row as T;
  }

  async function updateRow<T>(q: Runner, written: WrittenRow[], table: string, id: number, values: Record<string, unknown>): Promise<T | null> {
    values = definedOnly(values);
    checkColumns(table, values);
    const cols = Object.keys(values);
    const params: Param[] = cols.map((c, i) => ({ name: `v${i}`, type: columnType(c), value: values[c] }));
    params.push({ name: 'id', type: 'int', value: id });
    const text = `UPDATE dbo.[${table}] SET ${cols.map((c, i) => `[${c}] = @v${i}`).join(', ')} OUTPUT INSERTED.* WHERE [${keyColumns[table]}] = @id;`;
    const [rows] = await q(text, params);
    const row = normalizeRow<T>(rows?.[0]);
    if (row) written.push({ table: `dbo.${table}`, action: 'update', id, values });
    return row;
  }

  async function deleteRows(q: Runner, written: WrittenRow[], table: string, where: string, params: Param[]): Promise<number[]> {
    const key = keyColumns[table];
    const [rows] = await q(`DELETE FROM dbo.[${table}] OUTPUT DELETED.[${key}] WHERE ${where};`, params);
    const ids = (rows ?? []).map((r) => Number(r[key]));
    for (const id of ids) written.push({ table: `dbo.${table}`, action: 'delete', id, values: {} });
    return ids;
  }

  /** Runs deletes with FS's loop guard for deletes (the session context the triggers read). */
  async function withoutAnnouncement<T>(q: Runner, work: () => Promise<T>): Promise<T> {
    await q("EXEC sp_set_session_context N'noSyncJobSwitch', 1;");
    const result = await work();
    await q("EXEC sp_set_session_context N'noSyncJobSwitch', 0;");
    return result;
  }

  async function readStack(q: Runner, personId: number, today: IsoDate): Promise<PersonStack | null> {
    const sets = await q(personStackSql, [
      { name: 'personId', type: 'int', value: personId },
      { name: 'today', type: 'date', value: today },
    ]);
    const first = <T>(i: number) => normalizeRow<T>(sets[i]?.[0]);
    const person = first<PersonRow>(0);
    if (!person) return null;
    const stack = {
      personId,
      person,
      address: first<PersonAdresseRow>(1),
      addressAm: first<PersonAdresseAMRow>(2),
      email: first<PersonEmailRow>(3),
      phone: first<PersonTelefonRow>(4),
      mobile: first<PersonTelefonRow>(5),
      fax: first<PersonTelefonRow>(6),
      donationDeductionOptOut: first<PersonGruppeRow>(7),
      donationReceipt: first<PersonGruppeRow>(8),
      newsletter: first<PersonEmailGruppeRow>(9),
    };
    const rows = stackRows(stack);
    const maxima = sets.slice(10).map((set) => set?.[0] as { write_date: Date | null; sosync_write_date: Date | null } | undefined)
      .filter((r): r is { write_date: Date | null; sosync_write_date: Date | null } => r !== undefined);
    const maxDate = (pick: (r: { write_date: Date | null; sosync_write_date: Date | null }) => Date | null) =>
      [...rows, ...maxima].reduce<Date | null>((max, r) => {
        const d = pick(r);
        return d && (!max || d > max) ? d : max;
      }, null);
    return {
      ...stack,
      writeDate: maxDate((r) => r.write_date)!,
      sosyncWriteDate: maxDate((r) => r.sosync_write_date),
      sosyncFsoId: person.sosync_fso_id ?? rows.find((r) => r.sosync_fso_id !== null)?.sosync_fso_id ?? null,
    };
  }

  async function typenDefaults(q: Runner): Promise<Map<number, string | null>> {
    const [rows] = await q('SELECT [TypenID], [Formularwert] FROM dbo.[Typen] WHERE [TypenID] IN (@a, @b, @c);', [
      { name: 'a', type: 'int', value: typenIds.addressSalutation },
      { name: 'b', type: 'int', value: typenIds.emailSalutation },
      { name: 'c', type: 'int', value: typenIds.defaultCountry },
    ]);
    return new Map((rows ?? []).map((r) => [Number(r.TypenID), r.Formularwert == null ? null : String(r.Formularwert)]));
  }

  const intOrNull = (v: string | null | undefined) => (v == null || v.trim() === '' || !/^-?\d+$/.test(v.trim()) ? null : Number(v));

  async function writeStack(q: Runner, written: WrittenRow[], input: PersonStackWrite): Promise<PersonStackWriteResult> {
    const today = input.today ?? utcToday();
    dateParam(today, 'today');
    const yesterday = dayBefore(today);
    const meta = { sosyncWriteDate: input.sosyncWriteDate };
    if (!(input.sosyncWriteDate instanceof Date) || Number.isNaN(input.sosyncWriteDate.getTime())) {
      throw new StudioInputError('sosyncWriteDate must be a valid Date');
    }
    const defaults = await typenDefaults(q);
    const defaultCountry = intOrNull(defaults.get(typenIds.defaultCountry));
    const sync = syncValues(meta);

    let personId = input.personId;
    let created = false;
    let before: PersonStack | null = null;
    if (personId === null) {
      const person = await insertRow<PersonRow>(q, written, 'Person', {
        PersontypID: 101,
        NationalitätID: defaultCountry,
        Anlagedatum: new Date(),
        ...input.person,
        ...sync,
      });
      personId = person.PersonID;
      created = true;
    } else {
      checkId('PersonID', personId);
      before = await readStack(q, personId, today);
      if (!before) throw new StudioInputError(`dbo.Person ${personId} does not exist`);
      if (input.person && Object.keys(definedOnly(input.person)).length > 0) {
        await updateRow(q, written, 'Person', personId, { ...input.person, ...sync });
      }
    }
    const fsoId = input.sosyncFsoId !== undefined ? input.sosyncFsoId : (before?.sosyncFsoId ?? null);
    const validFromToday = { GültigMonatArray: fullYear, GültigVon: today, GültigBis: openEnd };
    const endValidity = { GültigBis: yesterday, sosync_fso_id: null, ...sync };

    // Address
    if (input.address !== undefined) {
      const current = before?.address ?? null;
      if (input.address === null) {
        if (current) await updateRow(q, written, 'PersonAdresse', current.PersonAdresseID, endValidity);
      } else {
        const values: Record<string, unknown> = { ...input.address };
        if (values.IndividuelleAnrede != null && String(values.IndividuelleAnrede).trim() !== '' && values.AnredeformtypID === undefined) {
          values.AnredeformtypID = individualSalutationTypeId;
        }
        if (current) {
          await updateRow(q, written, 'PersonAdresse', current.PersonAdresseID, { ...values, ...sync });
        } else {
          await insertRow(q, written, 'PersonAdresse', {
            PersonID: personId,
            AdresstypID: 311,
            AnredeformtypID: intOrNull(defaults.get(typenIds.addressSalutation)),
            LandID: defaultCountry,
            ...validFromToday,
            ...values,
            ...sync,
          });
        }
      }
    }

    // E-mail
    if (input.email !== undefined) {
      const current = before?.email ?? null;
      if (input.email === null) {
        if (current) await updateRow(q, written, 'PersonEmail', current.PersonEmailID, endValidity);
      } else if (current) {
        await updateRow(q, written, 'PersonEmail', current.PersonEmailID, { ...input.email, ...sync });
      } else {
        await insertRow(q, written, 'PersonEmail', {
          PersonID: personId,
          AnredeformtypID: intOrNull(defaults.get(typenIds.emailSalutation)),
          ...validFromToday,
          ...input.email,
          ...sync,
        });
      }
    }

    // Phone, mobile, fax
    for (const kind of ['phone', 'mobile', 'fax'] as const) {
      const wanted = input[kind];
      if (wanted === undefined) continue;
      const current = before?.[kind] ?? null;
      const number = (wanted ?? '').trim();
      if (number === '') {
        if (current) await updateRow(q, written, 'PersonTelefon', current.PersonTelefonID, endValidity);
      } else if (current) {
        if (composePhoneNumber(current) !== number) {
          await updateRow(q, written, 'PersonTelefon', current.PersonTelefonID, {
            Landkennzeichen: null, Vorwahl: null, Rufnummer: number, ...sync,
          });
        }
      } else {
        await insertRow(q, written, 'PersonTelefon', {
          PersonID: personId, TelefontypID: phoneTypeIds[kind], Rufnummer: number, ...validFromToday, ...sync,
        });
      }
    }

    // Person groups
    const todayParams = (extra: Param[]) => [{ name: 'today', type: 'date' as const, value: today }, ...extra];
    for (const flag of ['donationDeductionOptOut', 'donationReceipt'] as const) {
      const wanted = input[flag];
      if (wanted === undefined) continue;
      const current = before?.[flag] ?? null;
      if (wanted && !current) {
        await insertRow(q, written, 'PersonGruppe', {
          PersonID: personId, zGruppeDetailID: groupIds[flag], Steuerung: true, GültigVon: today, GültigBis: openEnd, ...sync,
        });
      } else if (!wanted && current) {
        const [rows] = await q(
          `SELECT [PersonGruppeID] FROM dbo.[PersonGruppe] WHERE [PersonID] = @personId AND [zGruppeDetailID] = @group AND ${validToday};`,
          todayParams([{ name: 'personId', type: 'int', value: personId }, { name: 'group', type: 'int', value: groupIds[flag] }]),
        );
        for (const r of rows ?? []) await updateRow(q, written, 'PersonGruppe', Number(r.PersonGruppeID), endValidity);
      }
    }

    // Newsletter: a group of the current e-mail, so it is decided after the e-mail is written.
    if (input.newsletter !== undefined) {
      const [emailRows] = await q(`${currentEmailId.slice(1, -1)};`, [
        { name: 'personId', type: 'int', value: personId },
        { name: 'today', type: 'date', value: today },
      ]);
      const emailId = emailRows?.[0] ? Number(emailRows[0].PersonEmailID) : null;
      const [groupRows] = emailId === null ? [[]] : await q(
        `SELECT [PersonEmailGruppeID] FROM dbo.[PersonEmailGruppe] WHERE [PersonEmailID] = @emailId AND [zGruppeDetailID] = @group AND ${validToday};`,
        todayParams([{ name: 'emailId', type: 'int', value: emailId }, { name: 'group', type: 'int', value: groupIds.newsletter }]),
      );
      if (input.newsletter && (groupRows ?? []).length === 0) {
        if (emailId === null) throw new StudioInputError(`dbo.Person ${personId}: the newsletter flag needs a current e-mail address`);
        await insertRow(q, written, 'PersonEmailGruppe', {
          PersonEmailID: emailId, zGruppeDetailID: groupIds.newsletter, Steuerung: true, GültigVon: today, GültigBis: openEnd, ...sync,
        });
      } else if (!input.newsletter) {
        for (const r of groupRows ?? []) await updateRow(q, written, 'PersonEmailGruppe', Number(r.PersonEmailGruppeID), endValidity);
      }
    }

    // Every current row carries the FSO id and this write's sosync_write_date; former ones lose the id.
    const after = await readStack(q, personId, today);
    if (!after) throw new StudioQueryError(address, `dbo.Person ${personId} vanished during the write`, 0);
    const current = currentRowIds(after);
    const touched = new Set(written.filter((w) => w.action !== 'delete').map((w) => `${w.table}#${w.id}`));
    for (const [table, ids] of Object.entries(current)) {
      for (const id of ids) {
        const row = findRow(after, table, id);
        const upToDate = touched.has(`dbo.${table}#${id}`) && row?.sosync_fso_id === fsoId;
        if (!upToDate) await updateRow(q, written, table, id, { sosync_fso_id: fsoId, ...sync });
      }
    }
    for (const table of Object.keys(current)) {
      const ids = current[table];
      const key = keyColumns[table];
      const owner = table === 'PersonEmailGruppe'
        ? '[PersonEmailID] IN (SELECT [PersonEmailID] FROM dbo.[PersonEmail] WHERE [PersonID] = @personId)'
        : '[PersonID] = @personId';
      const exclude = ids.length ? ` AND [${key}] NOT IN (${ids.map((id) => Number(id)).join(', ')})` : '';
      const [rows] = await q(`SELECT [${key}] FROM dbo.[${table}] WHERE ${owner} AND [sosync_fso_id] IS NOT NULL${exclude};`, [
        { name: 'personId', type: 'int', value: personId },
      ]);
      for (const r of rows ?? []) await updateRow(q, written, table, Number(r[key]), { sosync_fso_id: null, ...sync });
    }
    return { personId, created, request: written, answer: 'success' };
  }

  const client: StudioClient = {
    address,

    async readPersonStack(personId, today = utcToday()) {
      checkId('PersonID', personId);
      dateParam(today, 'today');
      return readStack(run, personId, today);
    },

    async findPersonIdByFsoId(fsoId) {
      checkId('sosync_fso_id', fsoId);
      const [rows] = await run('SELECT TOP 1 [PersonID] FROM dbo.[Person] WHERE [sosync_fso_id] = @fsoId ORDER BY [PersonID];', [
        { name: 'fsoId', type: 'int', value: fsoId },
      ]);
      return rows?.[0] ? Number(rows[0].PersonID) : null;
    },

    writePersonStack(input) {
      return inTransaction((q, written) => writeStack(q, written, input));
    },

    deletePersonStack(personId) {
      checkId('PersonID', personId);
      return inTransaction(async (q, written) => {
        const p: Param[] = [{ name: 'personId', type: 'int', value: personId }];
        const deleted = await withoutAnnouncement(q, async () => {
          await deleteRows(q, written, 'PersonEmailGruppe',
            '[PersonEmailID] IN (SELECT [PersonEmailID] FROM dbo.[PersonEmail] WHERE [PersonID] = @personId)', p);
          for (const table of ['PersonAdresseAM', 'PersonAdresse', 'PersonEmail', 'PersonTelefon', 'PersonGruppe', 'PersonBPK']) {
            await deleteRows(q, written, table, '[PersonID] = @personId', p);
          }
          return (await deleteRows(q, written, 'Person', '[PersonID] = @personId', p)).length > 0;
        });
        return { deleted, request: written, answer: 'success' as const };
      });
    },

    async readXBPKAccount(id) {
      checkId('xBPKAccountID', id);
      const [rows] = await run('SELECT * FROM dbo.[xBPKAccount] WHERE [xBPKAccountID] = @id;', [{ name: 'id', type: 'int', value: id }]);
      return normalizeRow<XBPKAccountRow>(rows?.[0]);
    },

    async findXBPKAccountIdByFsoId(fsoId) {
      checkId('sosync_fso_id', fsoId);
      const [rows] = await run('SELECT TOP 1 [xBPKAccountID] FROM dbo.[xBPKAccount] WHERE [sosync_fso_id] = @fsoId ORDER BY [xBPKAccountID];', [
        { name: 'fsoId', type: 'int', value: fsoId },
      ]);
      return rows?.[0] ? Number(rows[0].xBPKAccountID) : null;
    },

    createXBPKAccount(values, meta) {
      return inTransaction(async (q, written) => {
        const row = await insertRow<XBPKAccountRow>(q, written, 'xBPKAccount', { ...values, ...syncValues(meta) });
        return { id: row.xBPKAccountID, request: written, answer: 'success' as const };
      });
    },

    updateXBPKAccount(id, values, meta) {
      checkId('xBPKAccountID', id);
      return inTransaction(async (q, written) => {
        const row = await updateRow<XBPKAccountRow>(q, written, 'xBPKAccount', id, { ...values, ...syncValues(meta) });
        if (!row) throw new StudioInputError(`dbo.xBPKAccount ${id} does not exist`);
        return { id, request: written, answer: 'success' as const };
      });
    },

    deleteXBPKAccount(id) {
      checkId('xBPKAccountID', id);
      return inTransaction(async (q, written) => {
        const ids = await withoutAnnouncement(q, () =>
          deleteRows(q, written, 'xBPKAccount', '[xBPKAccountID] = @id', [{ name: 'id', type: 'int', value: id }]));
        return { deleted: ids.length > 0, request: written, answer: 'success' as const };
      });
    },

    async readPersonBPK(id) {
      checkId('PersonBPKID', id);
      const [rows] = await run('SELECT * FROM dbo.[PersonBPK] WHERE [PersonBPKID] = @id;', [{ name: 'id', type: 'int', value: id }]);
      return normalizeRow<PersonBPKRow>(rows?.[0]);
    },

    async findPersonBPKIdByFsoId(fsoId) {
      checkId('sosync_fso_id', fsoId);
      const [rows] = await run('SELECT TOP 1 [PersonBPKID] FROM dbo.[PersonBPK] WHERE [sosync_fso_id] = @fsoId ORDER BY [PersonBPKID];', [
        { name: 'fsoId', type: 'int', value: fsoId },
      ]);
      return rows?.[0] ? Number(rows[0].PersonBPKID) : null;
    },

    createPersonBPK(values, meta) {
      return inTransaction(async (q, written) => {
        const row = await insertRow<PersonBPKRow>(q, written, 'PersonBPK', { ...values, ...syncValues(meta) });
        return { id: row.PersonBPKID, request: written, answer: 'success' as const };
      });
    },

    updatePersonBPK(id, values, meta) {
      checkId('PersonBPKID', id);
      return inTransaction(async (q, written) => {
        const row = await updateRow<PersonBPKRow>(q, written, 'PersonBPK', id, { ...values, ...syncValues(meta) });
        if (!row) throw new StudioInputError(`dbo.PersonBPK ${id} does not exist`);
        return { id, request: written, answer: 'success' as const };
      });
    },

    deletePersonBPK(id) {
      checkId('PersonBPKID', id);
      return inTransaction(async (q, written) => {
        const ids = await withoutAnnouncement(q, () =>
          deleteRows(q, written, 'PersonBPK', '[PersonBPKID] = @id', [{ name: 'id', type: 'int', value: id }]));
        return { deleted: ids.length > 0, request: written, answer: 'success' as const };
      });
    },

    async typenDefault(typenId) {
      checkId('TypenID', typenId);
      const [rows] = await run('SELECT [Formularwert] FROM dbo.[Typen] WHERE [TypenID] = @id;', [{ name: 'id', type: 'int', value: typenId }]);
      const v = rows?.[0]?.Formularwert;
      return v == null ? null : String(v);
    },

    async landIdToIso(landId) {
      const [rows] = await run('SELECT sosync.LandID_to_IsoCountryCode2(@landId) AS [code];', [{ name: 'landId', type: 'int', value: landId }]);
      const v = rows?.[0]?.code;
      return v == null ? null : String(v).trim();
    },

    async isoToLandId(isoCode) {
      const [rows] = await run('SELECT sosync.IsoCountryCode2_to_LandID(@code) AS [landId];', [{ name: 'code', type: 'nvarchar', value: isoCode }]);
      const v = rows?.[0]?.landId;
      return v == null ? null : Number(v);
    },

    async serverTimeUtc() {
      const [rows] = await run('SELECT SYSUTCDATETIME() AS [now];');
      const v = rows?.[0]?.now;
      if (!(v instanceof Date)) throw new StudioQueryError(address, 'SYSUTCDATETIME() returned no date', 0);
      return v;
    },

    async clockOffsetMs() {
      await getPool().catch((err) => { throw toStudioError(err); });
      const sent = Date.now();
      const server = await client.serverTimeUtc();
      const received = Date.now();
      return server.getTime() - (sent + received) / 2;
    },

    async close() {
      closed = true;
      const p = poolPromise;
      poolPromise = null;
      if (p) await p.then((pool) => pool.close()).catch(() => undefined);
    },
  };
  nameCallsInErrors(client);
  return client;
}

/** Every failure of a client method names that method, so a job's error text says which FS call failed. */
function nameCallsInErrors(client: StudioClient): void {
  const methods = client as unknown as Record<string, unknown>;
  for (const [name, method] of Object.entries(methods)) {
    if (typeof method !== 'function' || name === 'close') continue;
    methods[name] = async (...args: unknown[]) => {
      try {
        return await (method as (...a: unknown[]) => Promise<unknown>).apply(client, args);
      } catch (err) {
        if (err instanceof StudioError && err.call === undefined) {
          err.call = name;
          err.message = `${err.message} (in FS call ${name})`;
          if (err.answer !== undefined) err.answer = err.message;
        }
        throw err;
      }
    };
  }
}

type StackRow = { write_date: Date; sosync_write_date: Date | null; sosync_fso_id: number | null };

function stackRows(stack: Omit<PersonStack, 'writeDate' | 'sosyncWriteDate' | 'sosyncFsoId'>): StackRow[] {
  return [
    stack.person, stack.address, stack.addressAm, stack.email, stack.phone, stack.mobile, stack.fax,
    stack.donationDeductionOptOut, stack.donationReceipt, stack.newsletter,
  ].filter((r): r is NonNullable<typeof r> => r !== null);
}

function currentRowIds(stack: PersonStack): Record<string, number[]> {
  const ids = (rows: Array<Record<string, unknown> | null>, key: string) =>
    rows.filter((r): r is Record<string, unknown> => r !== null).map((r) => Number(r[key]));
  const s = stack as unknown as Record<string, Record<string, unknown> | null>;
  return {
    Person: [stack.personId],
    PersonAdresse: ids([s.address], 'PersonAdresseID'),
    PersonAdresseAM: ids([s.addressAm], 'PersonAdresseAMID'),
    PersonEmail: ids([s.email], 'PersonEmailID'),
    PersonTelefon: ids([s.phone, s.mobile, s.fax], 'PersonTelefonID'),
    PersonGruppe: ids([s.donationDeductionOptOut, s.donationReceipt], 'PersonGruppeID'),
    PersonEmailGruppe: ids([s.newsletter], 'PersonEmailGruppeID'),
  };
}

function findRow(stack: PersonStack, table: string, id: number): StackRow | null {
  const candidates: Record<string, Array<Record<string, unknown> | null>> = {
    Person: [stack.person as unknown as Record<string, unknown>],
    PersonAdresse: [stack.address as unknown as Record<string, unknown> | null],
    PersonAdresseAM: [stack.addressAm as unknown as Record<string, unknown> | null],
    PersonEmail: [stack.email as unknown as Record<string, unknown> | null],
    PersonTelefon: [stack.phone, stack.mobile, stack.fax] as unknown as Array<Record<string, unknown> | null>,
    PersonGruppe: [stack.donationDeductionOptOut, stack.donationReceipt] as unknown as Array<Record<string, unknown> | null>,
    PersonEmailGruppe: [stack.newsletter as unknown as Record<string, unknown> | null],
  };
  const key = keyColumns[table];
  const row = (candidates[table] ?? []).find((r) => r !== null && Number(r[key]) === id);
  return (row ?? null) as StackRow | null;
}
