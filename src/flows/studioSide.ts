/**
 * The FS side of a flow: how it reads, finds, writes and deletes its FS record, and the FSO → FS
 * create-or-update every flow shares.
 */
import type { OnlineRecord } from '../adapters/online/index.ts';
import type {
  DeleteResult, RecordWriteResult, SyncColumns, TableAccessor, WriteMeta,
} from '../adapters/studio/index.ts';
import { keepEvidence, syncEvidence } from './evidence.ts';
import type { ModelInfo, SyncDirection, SyncEvidence } from './flow.ts';
import type { OnlineModel } from './onlineModel.ts';

export interface StudioSide<Row, Values> {
  /** e.g. `dbo.xBPKAccount` */
  model: string;
  read(id: number): Promise<Row | null>;
  info(row: Row): ModelInfo;
  /** the FS record an earlier (maybe interrupted) sync of FSO record `fsoId` wrote */
  findIdByFsoId(fsoId: number): Promise<number | null>;
  insert(values: Values, meta: WriteMeta): Promise<RecordWriteResult>;
  update(id: number, values: Values, meta: WriteMeta): Promise<RecordWriteResult>;
  delete(id: number): Promise<DeleteResult>;
}

/** The side of a record kept in one FS row. */
export function tableSide<Row extends SyncColumns, Values, NewValues extends Values>(
  rows: TableAccessor<Row, Values, NewValues>,
): StudioSide<Row, NewValues> {
  const { key, model } = rows.table;
  return {
    model,
    read: (id) => rows.read(id),
    info: (row) => ({ id: Number(row[key]), foreignId: row.sosync_fso_id, sosyncWriteDate: row.sosync_write_date, writeDate: row.write_date, record: row }),
    findIdByFsoId: (fsoId) => rows.findIdByFsoId(fsoId),
    insert: (values, meta) => rows.insert(values, meta),
    update: (id, values, meta) => rows.update(id, values, meta),
    delete: (id) => rows.delete(id),
  };
}

/**
 * FSO → FS: updates the FS record when it exists — announced as the target, or found by its
 * sosync_fso_id after an interrupted run — and creates it otherwise (never twice); then FSO learns
 * the FS id. `valuesFor` gets the FS record as it is (null when it will be created).
 */
export async function writeToStudio<Row, Values>(
  fso: OnlineModel, fs: StudioSide<Row, Values>, direction: SyncDirection, stamp: Date, record: OnlineRecord,
  valuesFor: (before: Row | null) => Promise<Values>,
): Promise<SyncEvidence> {
  const meta = { sosyncWriteDate: stamp, sosyncFsoId: record.id };
  const targetId = direction.target.recordId ?? (await fs.findIdByFsoId(record.id));
  // the target the direction step read (ModelInfo.record) is not read again
  const known = targetId !== null && targetId === direction.target.recordId ? direction.target.info?.record as Row | undefined : undefined;
  const before = known ?? (targetId !== null ? await fs.read(targetId) : null);
  const values = await valuesFor(before);
  const result = await keepEvidence(() => (targetId !== null && before
    ? fs.update(targetId, values, meta)
    : fs.insert(values, meta)));
  if (record.sosync_fs_id !== result.id) await keepEvidence(() => fso.writeBackFsId(record.id, result.id));
  return syncEvidence(result.id, result, record, before, `${before ? 'updated' : 'created'} ${fs.model} ${result.id}`);
}
