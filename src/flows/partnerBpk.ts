/**
 * Partner bPK (SPEC §6.3): FSO `res.partner.bpk` → FS `dbo.PersonBPK`, FSO → FS only. Its company
 * and partner are synced first as child jobs; the FS row references them through their ids.
 */
import type { PersonBPKRow, PersonBPKValues } from '../adapters/studio/index.ts';
import type { OnlineRecord } from '../adapters/online/index.ts';
import { FlowError, type Flow } from './flow.ts';
import { COMPANY_FSO_MODEL } from './company.ts';
import { OnlineModel } from './onlineModel.ts';
import { PARTNER_FSO_MODEL } from './partner.ts';
import { tableSide, writeToStudio } from './studioSide.ts';
import { many2oneId, sideBySide, sidesOfFlow, sourceRecord, syncDate, type FlowClients } from './support.ts';

export const BPK_FS_MODEL = 'dbo.PersonBPK';
export const BPK_FSO_MODEL = 'res.partner.bpk';

/** res.partner.bpk field → dbo.PersonBPK column, copied one to one. */
const fieldToColumn = {
  create_date: 'Anlagedatum',
  BPKPrivate: 'BPKPrivat',
  BPKPublic: 'BPKOeffentlich',
  BPKRequestFirstname: 'Vorname',
  BPKRequestLastname: 'Nachname',
  BPKRequestBirthdate: 'Geburtsdatum',
  BPKRequestDate: 'PositivAmUm',
  BPKResponseData: 'PositivDaten',
  BPKErrorRequestDate: 'FehlerAmUm',
  BPKErrorRequestData: 'FehlerDaten',
  BPKErrorResponseData: 'FehlerAntwortDaten',
  BPKErrorRequestFirstname: 'FehlerVorname',
  BPKErrorRequestLastname: 'FehlerNachname',
  BPKErrorRequestBirthdate: 'FehlerGeburtsdatum',
  BPKErrorCode: 'FehlerCode',
  BPKErrorText: 'FehlerText',
} as const satisfies Record<string, keyof PersonBPKRow>;

const bpkFields = [...Object.keys(fieldToColumn), 'BPKRequestPartnerID', 'BPKRequestCompanyID'];

export function bpkToStudio(record: OnlineRecord): PersonBPKValues {
  const values: Record<string, unknown> = {};
  for (const [field, column] of Object.entries(fieldToColumn)) {
    const v = record[field];
    values[column] = v === undefined || v === false || v === '' ? null : v;
  }
  return values as PersonBPKValues;
}

export function createPartnerBpkFlow({ studio, online }: FlowClients): Flow {
  const fso = new OnlineModel(online, BPK_FSO_MODEL, false, bpkFields);
  const fs = tableSide(studio.personBPK);

  async function references(record: OnlineRecord): Promise<{ partnerId: number; companyId: number }> {
    const partnerId = many2oneId(record.BPKRequestPartnerID);
    const companyId = many2oneId(record.BPKRequestCompanyID);
    if (partnerId === null || companyId === null) {
      throw new FlowError(`${BPK_FSO_MODEL} ${record.id} lacks BPKRequestPartnerID or BPKRequestCompanyID`);
    }
    return { partnerId, companyId };
  }

  return {
    ...sidesOfFlow('partner bPK', fso, fs),
    syncsFrom: ['fso'],
    childJobModels: [{ system: 'fso', model: COMPANY_FSO_MODEL }, { system: 'fso', model: PARTNER_FSO_MODEL }],

    async compareFields(fsId, fsoId) {
      const row = fsId !== null ? await studio.personBPK.read(fsId) : null;
      const record = fsoId !== null ? await fso.read(fsoId, Object.keys(fieldToColumn)) : null;
      return sideBySide(Object.entries(fieldToColumn).map(([field, column]) => ({
        fs_field: column, fso_field: field, fs_value: row?.[column as keyof typeof row] ?? null, fso_value: record?.[field] ?? null,
      })));
    },

    async childJobs(direction) {
      // FS → FSO is refused in write(); no point syncing children for it
      if (direction.source.system !== 'fso') return [];
      // the direction step read the bPK with its fields (ModelInfo.record): its references are there
      const record = await sourceRecord(direction, () => fso.read(direction.source.recordId, bpkFields));
      if (!record) throw new FlowError(`${BPK_FSO_MODEL} ${direction.source.recordId} vanished`);
      const { partnerId, companyId } = await references(record);
      return [
        { system: 'fso', model: COMPANY_FSO_MODEL, recordId: companyId },
        { system: 'fso', model: PARTNER_FSO_MODEL, recordId: partnerId },
      ];
    },

    async write(direction) {
      if (direction.source.system !== 'fso') {
        throw new FlowError(`${BPK_FS_MODEL} ${direction.source.recordId} is newer in FS, but partner bPKs sync from FSO to FS only; change the bPK in FSO`);
      }
      const stamp = syncDate(direction.source.info);
      const record = await sourceRecord(direction, () => fso.read(direction.source.recordId, bpkFields));
      if (!record) throw new FlowError(`${BPK_FSO_MODEL} ${direction.source.recordId} vanished`);
      const { partnerId, companyId } = await references(record);
      const { personId, accountId } = await studio.findBpkOwnersByFsoIds(partnerId, companyId);
      if (personId === null) throw new FlowError(`${PARTNER_FSO_MODEL} ${partnerId} has no FS person yet (its child job did not create one)`);
      if (accountId === null) throw new FlowError(`${COMPANY_FSO_MODEL} ${companyId} has no FS xBPKAccount yet (its child job did not create one)`);
      return writeToStudio(fso, fs, direction, stamp, record, async () => ({ ...bpkToStudio(record), PersonID: personId, xBPKAccountID: accountId }));
    },
  };
}
