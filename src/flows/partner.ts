/**
 * Partner (SPEC §6.2): the FS person stack ↔ FSO `res.partner`, both directions.
 */
import type { PersonStack } from '../adapters/studio/index.ts';
import { typenIds } from '../adapters/studio/index.ts';
import type { OnlineClient, OnlineRecord } from '../adapters/online/index.ts';
import { FlowError, type Flow, type ModelInfo, type SyncDirection, type SyncEvidence } from './flow.ts';
import { formatSosyncWriteDate, OnlineModel } from './onlineModel.ts';
import { partnerFieldSources, partnerFields, partnerToStack, stackToPartner } from './partnerMapping.ts';
import { counterpartDeleter, deleteActions, many2oneId, modelInfoReaders, keepEvidence, sideBySide, studioEvidence, syncDate, type FlowClients, type StudioSide } from './support.ts';

export const PARTNER_FS_MODEL = 'dbo.Person';
export const PARTNER_FSO_MODEL = 'res.partner';

function stackInfo(stack: PersonStack): ModelInfo {
  return { id: stack.personId, foreignId: stack.sosyncFsoId, sosyncWriteDate: stack.sosyncWriteDate, writeDate: stack.writeDate };
}

/** ISO code → res.country id and back, cached (countries do not change while sosync runs). */
class Countries {
  private byCode = new Map<string, number | null>();
  constructor(private readonly online: OnlineClient) {}

  async idOf(code: string): Promise<number | null> {
    const key = code.trim().toUpperCase();
    if (!this.byCode.has(key)) {
      const ids = await this.online.search('res.country', [['code', '=', key]], { limit: 1 });
      this.byCode.set(key, ids[0] ?? null);
    }
    return this.byCode.get(key)!;
  }

  async codeOf(countryId: number): Promise<string | null> {
    const record = await this.online.readOne('res.country', countryId, ['code']);
    return typeof record?.code === 'string' ? record.code : null;
  }
}

export function createPartnerFlow({ studio, online }: FlowClients): Flow {
  const fso = new OnlineModel(online, PARTNER_FSO_MODEL, true);
  const fs: StudioSide<PersonStack> = {
    model: PARTNER_FS_MODEL,
    read: (id) => studio.readPersonStack(id),
    info: stackInfo,
    findIdByFsoId: (fsoId) => studio.findPersonIdByFsoId(fsoId),
    delete: (id) => studio.deletePersonStack(id),
  };
  const countries = new Countries(online);

  async function partnerValues(stack: PersonStack, stamp: Date): Promise<Record<string, unknown>> {
    const { values, landId } = stackToPartner(stack);
    let countryId: number | null = null;
    if (landId !== null) {
      const code = await studio.landIdToIso(landId);
      if (code) countryId = await countries.idOf(code);
    }
    return { ...values, country_id: countryId ?? false, sosync_write_date: formatSosyncWriteDate(stamp) };
  }

  async function landIdOf(partner: OnlineRecord): Promise<number | null> {
    const id = many2oneId(partner.country_id);
    if (id === null) return null;
    const code = await countries.codeOf(id);
    if (!code) return null;
    const landId = await studio.isoToLandId(code);
    if (landId === null) throw new FlowError(`FS knows no LandID for the country code ${code}`);
    return landId;
  }

  async function toOnline(direction: SyncDirection, stamp: Date): Promise<SyncEvidence> {
    const stack = await studio.readPersonStack(direction.source.recordId);
    if (!stack) throw new FlowError(`${PARTNER_FS_MODEL} ${direction.source.recordId} vanished`);
    const values = await partnerValues(stack, stamp);
    const result = await keepEvidence(online, () => fso.upsert(direction.target.recordId, stack.personId, values, [...partnerFields]));
    // a row that became current since the last sync (e.g. a new address) lacks the FSO id
    const currentRows = [stack.person, stack.address, stack.addressAm, stack.email, stack.phone, stack.mobile, stack.fax,
      stack.donationDeductionOptOut, stack.donationReceipt, stack.newsletter];
    // a value FSO had and the stack no longer gives: its row ended and still carries the FSO id
    const isSet = (v: unknown) => v !== false && v !== null && v !== undefined && v !== '';
    const emptied = result.before !== undefined && partnerFields.some((f) => isSet(result.before![f]) && !isSet(values[f]));
    if (result.created || emptied || currentRows.some((row) => row !== null && row.sosync_fso_id !== result.id)) {
      // every current row of the stack learns the FSO id (rows no longer current lose it)
      await keepEvidence(online, () => studio.writePersonStack({ personId: stack.personId, sosyncWriteDate: stamp, sosyncFsoId: result.id }));
    }
    return {
      targetRecordId: result.id,
      sourceData: stack,
      targetDataBefore: result.before,
      targetRequest: result.request,
      targetAnswer: result.answer,
      summary: `${result.created ? 'created' : 'updated'} ${PARTNER_FSO_MODEL} ${result.id}`,
    };
  }

  async function toStudio(direction: SyncDirection, stamp: Date): Promise<SyncEvidence> {
    const partner = await fso.read(direction.source.recordId, [...partnerFields]);
    if (!partner) throw new FlowError(`${PARTNER_FSO_MODEL} ${direction.source.recordId} vanished`);
    const targetId = direction.target.recordId ?? (await studio.findPersonIdByFsoId(partner.id));
    const current = targetId !== null ? await studio.readPersonStack(targetId) : null;
    const defaultSalutation = await studio.typenDefault(typenIds.addressSalutation);
    const wanted = partnerToStack(partner, {
      current,
      landId: await landIdOf(partner),
      defaultSalutationTypeId: defaultSalutation !== null && /^\d+$/.test(defaultSalutation) ? Number(defaultSalutation) : null,
    });
    const result = await keepEvidence(online, () => studio.writePersonStack({
      ...wanted,
      personId: current ? current.personId : null,
      sosyncWriteDate: stamp,
      sosyncFsoId: partner.id,
    }));
    if (partner.sosync_fs_id !== result.personId) await keepEvidence(online, () => fso.writeBackFsId(partner.id, result.personId));
    return studioEvidence(result, partner, current, `${result.created ? 'created' : 'updated'} ${PARTNER_FS_MODEL} ${result.personId}`);
  }

  return {
    name: 'partner',
    models: { fs: PARTNER_FS_MODEL, fso: PARTNER_FSO_MODEL },
    syncsFrom: ['fs', 'fso'],
    childJobModels: [],
    deletes: deleteActions(fso),

    async compareFields(fsId, fsoId) {
      const stack = fsId !== null ? await studio.readPersonStack(fsId) : null;
      const partner = fsoId !== null ? await fso.read(fsoId, [...partnerFields]) : null;
      const fromStack = stack ? stackToPartner(stack) : null;
      // the country compares as its ISO code, the key both systems share
      const fsCountry = fromStack?.landId != null ? await studio.landIdToIso(fromStack.landId) : null;
      const fsoCountryId = partner ? many2oneId(partner.country_id) : null;
      const fsoCountry = fsoCountryId !== null ? await countries.codeOf(fsoCountryId) : null;
      return sideBySide(partnerFields.map((field) => ({
        fs_field: partnerFieldSources[field],
        fso_field: field,
        fs_value: field === 'country_id' ? fsCountry : fromStack?.values[field] ?? null,
        fso_value: field === 'country_id' ? fsoCountry : partner?.[field] ?? null,
      })));
    },

    ...modelInfoReaders(fso, fs),

    async childJobs() {
      return [];
    },

    async write(direction) {
      const stamp = syncDate(direction.source.info);
      return direction.source.system === 'fs' ? toOnline(direction, stamp) : toStudio(direction, stamp);
    },

    deleteCounterpart: counterpartDeleter(online, fso, fs),
  };
}
