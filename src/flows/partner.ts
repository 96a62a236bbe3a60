/**
 * Partner (SPEC §6.2): the FS person stack ↔ FSO `res.partner`, both directions.
 */
import { typenIds, type PersonStack, type PersonStackWrite, type WriteMeta } from '../adapters/studio/index.ts';
import type { OnlineClient, OnlineRecord } from '../adapters/online/index.ts';
import { FlowError, type Flow, type ModelInfo, type SyncDirection, type SyncEvidence } from './flow.ts';
import { formatSosyncWriteDate, OnlineModel, writeToOnline } from './onlineModel.ts';
import { clearsIndividualSalutation, genderToOnline, genderToStudio, partnerFieldSources, partnerFields, partnerToStack, stackToPartner } from './partnerMapping.ts';
import { writeToStudio, type StudioSide } from './studioSide.ts';
import { many2oneId, sideBySide, sidesOfFlow, sourceRecord, syncDate, type FlowClients } from './support.ts';

export const PARTNER_FS_MODEL = 'dbo.Person';
export const PARTNER_FSO_MODEL = 'res.partner';

function stackInfo(stack: PersonStack): ModelInfo {
  return { id: stack.personId, foreignId: stack.sosyncFsoId, sosyncWriteDate: stack.sosyncWriteDate, writeDate: stack.writeDate, record: stack };
}

/** FSO's gender as it reads back after a sync: an empty gender is stored as 0 in FS, which reads as `other` (SPEC §6.2). */
const onlineGender = (gender: unknown) => genderToOnline(genderToStudio(gender, null));

/**
 * Countries: ISO code ↔ res.country id (FSO) and FS LandID ↔ ISO code, cached — reference data
 * that does not change while sosync runs, so a job pays no round trip for it after the first.
 * Only answers are kept: a code FS does not know yet is asked again next time.
 */
class Countries {
  private byCode = new Map<string, number | null>();
  private codeById = new Map<number, string | null>();
  private isoByLandId = new Map<number, string>();
  private landIdByIso = new Map<string, number>();
  constructor(private readonly online: OnlineClient, private readonly studio: FlowClients['studio']) {}

  async idOf(code: string): Promise<number | null> {
    const key = code.trim().toUpperCase();
    if (!this.byCode.has(key)) {
      const ids = await this.online.search('res.country', [['code', '=', key]], { limit: 1 });
      this.byCode.set(key, ids[0] ?? null);
    }
    return this.byCode.get(key)!;
  }

  async codeOf(countryId: number): Promise<string | null> {
    if (!this.codeById.has(countryId)) {
      const record = await this.online.readOne('res.country', countryId, ['code']);
      this.codeById.set(countryId, typeof record?.code === 'string' ? record.code : null);
    }
    return this.codeById.get(countryId)!;
  }

  async isoOfLandId(landId: number): Promise<string | null> {
    const known = this.isoByLandId.get(landId);
    if (known !== undefined) return known;
    const code = await this.studio.landIdToIso(landId);
    if (code) this.isoByLandId.set(landId, code);
    return code;
  }

  async landIdOfIso(code: string): Promise<number | null> {
    const known = this.landIdByIso.get(code);
    if (known !== undefined) return known;
    const landId = await this.studio.isoToLandId(code);
    if (landId !== null) this.landIdByIso.set(code, landId);
    return landId;
  }
}

/** What the flow writes to a stack: everything but the person id and the stamp. */
type StackValues = Omit<PersonStackWrite, 'personId' | 'sosyncWriteDate' | 'sosyncFsoId'>;

export function createPartnerFlow({ studio, online }: FlowClients): Flow {
  const fso = new OnlineModel(online, PARTNER_FSO_MODEL, true, partnerFields);
  const writeStack = async (personId: number | null, values: StackValues, meta: WriteMeta) => {
    const result = await studio.writePersonStack({ ...values, personId, sosyncWriteDate: meta.sosyncWriteDate, sosyncFsoId: meta.sosyncFsoId });
    return { ...result, id: result.personId };
  };
  const fs: StudioSide<PersonStack, StackValues> = {
    model: PARTNER_FS_MODEL,
    read: (id) => studio.readPersonStack(id),
    info: stackInfo,
    findIdByFsoId: (fsoId) => studio.findPersonIdByFsoId(fsoId),
    insert: (values, meta) => writeStack(null, values, meta),
    update: (id, values, meta) => writeStack(id, values, meta),
    delete: (id) => studio.deletePersonStack(id),
  };
  const countries = new Countries(online, studio);

  async function partnerValues(stack: PersonStack, stamp: Date): Promise<Record<string, unknown>> {
    const { values, landId } = stackToPartner(stack);
    let countryId: number | null = null;
    if (landId !== null) {
      const code = await countries.isoOfLandId(landId);
      if (code) countryId = await countries.idOf(code);
    }
    return { ...values, country_id: countryId ?? false, sosync_write_date: formatSosyncWriteDate(stamp) };
  }

  async function landIdOf(partner: OnlineRecord): Promise<number | null> {
    const id = many2oneId(partner.country_id);
    if (id === null) return null;
    const code = await countries.codeOf(id);
    if (!code) return null;
    const landId = await countries.landIdOfIso(code);
    if (landId === null) throw new FlowError(`FS knows no LandID for the country code ${code}`);
    return landId;
  }

  async function toOnline(direction: SyncDirection, stamp: Date): Promise<SyncEvidence> {
    const stack = await sourceRecord(direction, () => studio.readPersonStack(direction.source.recordId));
    if (!stack) throw new FlowError(`${PARTNER_FS_MODEL} ${direction.source.recordId} vanished`);
    const values = await partnerValues(stack, stamp);
    return writeToOnline(fso, direction, stack.personId, stack, values, [...partnerFields], async (result) => {
      // a row that became current since the last sync (e.g. a new address) lacks the FSO id
      const currentRows = [stack.person, stack.address, stack.addressAm, stack.email, stack.phone, stack.mobile, stack.fax,
        stack.donationDeductionOptOut, stack.donationReceipt, stack.newsletter];
      // a value FSO had and the stack no longer gives: its row ended and still carries the FSO id
      const isSet = (v: unknown) => v !== false && v !== null && v !== undefined && v !== '';
      const emptied = result.before !== undefined && partnerFields.some((f) => isSet(result.before![f]) && !isSet(values[f]));
      if (result.created || emptied || currentRows.some((row) => row !== null && row.sosync_fso_id !== result.id)) {
        // every current row of the stack learns the FSO id (rows no longer current lose it)
        await writeStack(stack.personId, {}, { sosyncWriteDate: stamp, sosyncFsoId: result.id });
      }
    });
  }

  function toStudio(direction: SyncDirection, stamp: Date, partner: OnlineRecord): Promise<SyncEvidence> {
    return writeToStudio(fso, fs, direction, stamp, partner, async (current) => {
      // FS's default salutation matters only when the individual one is cleared: one round trip less otherwise
      const defaultSalutation = clearsIndividualSalutation(partner, current) ? await studio.typenDefault(typenIds.addressSalutation) : null;
      return partnerToStack(partner, {
        current,
        landId: await landIdOf(partner),
        defaultSalutationTypeId: defaultSalutation !== null && /^\d+$/.test(defaultSalutation) ? Number(defaultSalutation) : null,
      });
    });
  }

  return {
    ...sidesOfFlow('partner', fso, fs),
    syncsFrom: ['fs', 'fso'],
    childJobModels: [],

    async compareFields(fsId, fsoId) {
      const stack = fsId !== null ? await studio.readPersonStack(fsId) : null;
      const partner = fsoId !== null ? await fso.read(fsoId, [...partnerFields]) : null;
      const fromStack = stack ? stackToPartner(stack) : null;
      // the country compares as its ISO code, the key both systems share
      const fsCountry = fromStack?.landId != null ? await countries.isoOfLandId(fromStack.landId) : null;
      const fsoCountryId = partner ? many2oneId(partner.country_id) : null;
      const fsoCountry = fsoCountryId !== null ? await countries.codeOf(fsoCountryId) : null;
      return sideBySide(partnerFields.map((field) => ({
        fs_field: partnerFieldSources[field],
        fso_field: field,
        fs_value: field === 'country_id' ? fsCountry : fromStack?.values[field] ?? null,
        fso_value: field === 'country_id' ? fsoCountry : field === 'gender' && partner ? onlineGender(partner.gender) : partner?.[field] ?? null,
      })));
    },

    async childJobs() {
      return [];
    },

    async write(direction) {
      const stamp = syncDate(direction.source.info);
      if (direction.source.system === 'fs') return toOnline(direction, stamp);
      const partner = await sourceRecord(direction, () => fso.read(direction.source.recordId, partnerFields));
      if (!partner) throw new FlowError(`${PARTNER_FSO_MODEL} ${direction.source.recordId} vanished`);
      return toStudio(direction, stamp, partner);
    },
  };
}
