/**
 * Company (SPEC §6.1): FS `dbo.xBPKAccount` ↔ FSO `res.company`, both directions, `Name` ↔ `name`.
 */
import type { XBPKAccountRow } from '../adapters/studio/index.ts';
import type { Flow, ModelInfo, SyncDirection, SyncEvidence } from './flow.ts';
import { FlowError } from './flow.ts';
import { formatSosyncWriteDate, OnlineModel } from './onlineModel.ts';
import { counterpartDeleter, deleteActions, modelInfoReaders, keepEvidence, sideBySide, studioEvidence, syncDate, type FlowClients, type StudioSide } from './support.ts';

export const COMPANY_FS_MODEL = 'dbo.xBPKAccount';
export const COMPANY_FSO_MODEL = 'res.company';

function studioInfo(row: XBPKAccountRow): ModelInfo {
  return { id: row.xBPKAccountID, foreignId: row.sosync_fso_id, sosyncWriteDate: row.sosync_write_date, writeDate: row.write_date };
}

export function createCompanyFlow({ studio, online }: FlowClients): Flow {
  const fso = new OnlineModel(online, COMPANY_FSO_MODEL, false);
  const fs: StudioSide<XBPKAccountRow> = {
    model: COMPANY_FS_MODEL,
    read: (id) => studio.readXBPKAccount(id),
    info: studioInfo,
    findIdByFsoId: (fsoId) => studio.findXBPKAccountIdByFsoId(fsoId),
    delete: (id) => studio.deleteXBPKAccount(id),
  };

  return {
    name: 'company',
    models: { fs: COMPANY_FS_MODEL, fso: COMPANY_FSO_MODEL },
    syncsFrom: ['fs', 'fso'],
    childJobModels: [],
    deletes: deleteActions(fso),

    async compareFields(fsId, fsoId) {
      const row = fsId !== null ? await studio.readXBPKAccount(fsId) : null;
      const record = fsoId !== null ? await fso.read(fsoId, ['name']) : null;
      return sideBySide([{ fs_field: 'Name', fso_field: 'name', fs_value: row?.Name ?? null, fso_value: record?.name ?? null }]);
    },

    ...modelInfoReaders(fso, fs),

    async childJobs() {
      return [];
    },

    async write(direction: SyncDirection): Promise<SyncEvidence> {
      const stamp = syncDate(direction.source.info);
      if (direction.source.system === 'fs') {
        const row = await studio.readXBPKAccount(direction.source.recordId);
        if (!row) throw new FlowError(`${COMPANY_FS_MODEL} ${direction.source.recordId} vanished`);
        const values = { name: row.Name ?? '', sosync_write_date: formatSosyncWriteDate(stamp) };
        const result = await keepEvidence(online, () => fso.upsert(direction.target.recordId, row.xBPKAccountID, values, ['name']));
        if (result.created || row.sosync_fso_id !== result.id) {
          await studio.updateXBPKAccount(row.xBPKAccountID, {}, { sosyncWriteDate: stamp, sosyncFsoId: result.id });
        }
        return {
          targetRecordId: result.id,
          sourceData: row,
          targetDataBefore: result.before,
          targetRequest: result.request,
          targetAnswer: result.answer,
          summary: `${result.created ? 'created' : 'updated'} ${COMPANY_FSO_MODEL} ${result.id}`,
        };
      }
      const record = await fso.read(direction.source.recordId, ['name']);
      if (!record) throw new FlowError(`${COMPANY_FSO_MODEL} ${direction.source.recordId} vanished`);
      const values = { Name: typeof record.name === 'string' ? record.name : null };
      const meta = { sosyncWriteDate: stamp, sosyncFsoId: record.id };
      const targetId = direction.target.recordId ?? (await studio.findXBPKAccountIdByFsoId(record.id));
      const before = targetId !== null ? await studio.readXBPKAccount(targetId) : null;
      const result = await keepEvidence(online, () => (targetId !== null && before
        ? studio.updateXBPKAccount(targetId, values, meta)
        : studio.createXBPKAccount(values, meta)));
      if (record.sosync_fs_id !== result.id) await fso.writeBackFsId(record.id, result.id);
      return studioEvidence(result, record, before, `${before ? 'updated' : 'created'} ${COMPANY_FS_MODEL} ${result.id}`);
    },

    deleteCounterpart: counterpartDeleter(online, fso, fs),
  };
}
