/**
 * Company (SPEC §6.1): FS `dbo.xBPKAccount` ↔ FSO `res.company`, both directions, `Name` ↔ `name`.
 */
import type { Flow, SyncDirection, SyncEvidence } from './flow.ts';
import { FlowError } from './flow.ts';
import { formatSosyncWriteDate, OnlineModel, writeToOnline } from './onlineModel.ts';
import { tableSide, writeToStudio } from './studioSide.ts';
import { sideBySide, sidesOfFlow, sourceRecord, syncDate, type FlowClients } from './support.ts';

export const COMPANY_FS_MODEL = 'dbo.xBPKAccount';
export const COMPANY_FSO_MODEL = 'res.company';

export function createCompanyFlow({ studio, online }: FlowClients): Flow {
  const fso = new OnlineModel(online, COMPANY_FSO_MODEL, false, ['name']);
  const fs = tableSide(studio.xBPKAccount);

  return {
    ...sidesOfFlow('company', fso, fs),
    syncsFrom: ['fs', 'fso'],
    childJobModels: [],

    async compareFields(fsId, fsoId) {
      const row = fsId !== null ? await studio.xBPKAccount.read(fsId) : null;
      const record = fsoId !== null ? await fso.read(fsoId, ['name']) : null;
      return sideBySide([{ fs_field: 'Name', fso_field: 'name', fs_value: row?.Name ?? null, fso_value: record?.name ?? null }]);
    },

    async childJobs() {
      return [];
    },

    async write(direction: SyncDirection): Promise<SyncEvidence> {
      const stamp = syncDate(direction.source.info);
      if (direction.source.system === 'fs') {
        const row = await sourceRecord(direction, () => fs.read(direction.source.recordId));
        if (!row) throw new FlowError(`${COMPANY_FS_MODEL} ${direction.source.recordId} vanished`);
        const values = { name: row.Name ?? '', sosync_write_date: formatSosyncWriteDate(stamp) };
        return writeToOnline(fso, direction, row.xBPKAccountID, row, values, ['name'], async (result) => {
          if (result.created || row.sosync_fso_id !== result.id) {
            await fs.update(row.xBPKAccountID, {}, { sosyncWriteDate: stamp, sosyncFsoId: result.id });
          }
        });
      }
      const record = await sourceRecord(direction, () => fso.read(direction.source.recordId, fso.fields));
      if (!record) throw new FlowError(`${COMPANY_FSO_MODEL} ${direction.source.recordId} vanished`);
      return writeToStudio(fso, fs, direction, stamp, record, async () => ({ Name: typeof record.name === 'string' ? record.name : null }));
    },
  };
}
