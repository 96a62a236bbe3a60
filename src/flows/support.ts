/**
 * What the flows share besides their two sides: the clients they are made with, the stamp a write
 * carries, and what a flow is made of its two sides alone (model-info reads, counterpart deletion).
 */
import type { OnlineClient } from '../adapters/online/index.ts';
import type { StudioClient } from '../adapters/studio/index.ts';
import { keepEvidence, syncEvidence } from './evidence.ts';
import { FlowError, type DeleteAction, type FieldComparison, type Flow, type ModelInfo, type SyncDirection, type SystemName } from './flow.ts';
import type { OnlineModel } from './onlineModel.ts';
import type { StudioSide } from './studioSide.ts';

export interface FlowClients {
  studio: StudioClient;
  online: OnlineClient;
}

/**
 * The `sosync_write_date` the target gets: the source's, so both sides compare equal afterwards
 * (its write_date when the source never had one).
 */
export function syncDate(info: ModelInfo): Date {
  const date = info.sosyncWriteDate ?? info.writeDate;
  if (!date) throw new FlowError(`record ${info.id} has neither sosync_write_date nor write_date`);
  return date;
}

/**
 * The source record the write transforms: as the consistency step has just re-read it (SPEC §4.2
 * step 5; ModelInfo.record), else read now (`read`: e.g. an engine that passes no record).
 */
export async function sourceRecord<T>(direction: SyncDirection, read: () => Promise<T | null>): Promise<T | null> {
  return (direction.source.info.record as T | undefined) ?? read();
}

/**
 * What a flow gets from its two sides alone: its models, the model-info readers and the deletion
 * of a counterpart. The flow adds its child jobs and its write.
 */
export function sidesOfFlow<Row>(
  name: string, fso: OnlineModel, fs: StudioSide<Row, unknown>,
): Pick<Flow, 'name' | 'models' | 'deletes' | 'readModelInfo' | 'findByForeignId' | 'deleteCounterpart'> {
  return {
    name,
    models: { fs: fs.model, fso: fso.model },
    deletes: deleteActions(fso),
    ...modelInfoReaders(fso, fs),
    deleteCounterpart: counterpartDeleter(fso, fs),
  };
}

function modelInfoReaders<Row>(fso: OnlineModel, fs: StudioSide<Row, unknown>): Pick<Flow, 'readModelInfo' | 'findByForeignId'> {
  const readFs = async (id: number) => {
    const row = await fs.read(id);
    return row ? fs.info(row) : null;
  };
  return {
    readModelInfo: (system, id) => (system === 'fso' ? fso.readInfo(id) : readFs(id)),
    async findByForeignId(system, foreignId) {
      if (system === 'fso') return fso.findInfoByFsId(foreignId);
      const id = await fs.findIdByFsoId(foreignId);
      return id === null ? null : readFs(id);
    },
  };
}

/**
 * SPEC §6.4 for any flow: the counterpart of a deleted record is deleted (FS) or deactivated /
 * unlinked (FSO). Nothing is created; a missing counterpart means nothing to do (null).
 */
function counterpartDeleter<Row>(fso: OnlineModel, fs: StudioSide<Row, unknown>): Flow['deleteCounterpart'] {
  return async (sourceSystem, sourceRecordId, targetRecordId) => {
    if (sourceSystem === 'fs') {
      const id = targetRecordId ?? (await fso.findIdByFsId(sourceRecordId));
      if (id === null || !(await fso.readInfo(id))) return null;
      const removed = await keepEvidence(() => fso.remove(id));
      return syncEvidence(id, removed, null, null, removed.summary);
    }
    const id = targetRecordId ?? (await fs.findIdByFsoId(sourceRecordId));
    if (id === null) return null;
    const result = await keepEvidence(() => fs.delete(id));
    if (!result.deleted) return null;
    return syncEvidence(id, result, null, null, `deleted ${fs.model} ${id}`);
  };
}

/** How a flow's counterparts are removed: FS rows are deleted, FSO records deactivated or unlinked. */
function deleteActions(fso: OnlineModel): Record<SystemName, DeleteAction> {
  return { fs: 'delete', fso: fso.hasActive ? 'deactivate' : 'unlink' };
}

const dayPattern = /^\d{4}-\d{2}-\d{2}$/;

/** A value as compared: empty (false, '', null) is null, instants are ISO text. */
function comparable(value: unknown, other: unknown): unknown {
  if (value === undefined || value === null || value === false || value === '') return null;
  if (value instanceof Date) {
    // a date column read as midnight UTC compares with FSO's "YYYY-MM-DD"
    return typeof other === 'string' && dayPattern.test(other) ? value.toISOString().slice(0, 10) : value.toISOString();
  }
  return value;
}

/** Pairs of mapped values with their differences marked. */
export function sideBySide(pairs: Array<Omit<FieldComparison, 'differs'>>): FieldComparison[] {
  return pairs.map((pair) => {
    const fs = comparable(pair.fs_value, pair.fso_value);
    const fso = comparable(pair.fso_value, pair.fs_value);
    return { ...pair, fs_value: fs, fso_value: fso, differs: JSON.stringify(fs) !== JSON.stringify(fso) };
  });
}

/** The id of a many2one value (`[id, name]` arrives as { id, name }, or a bare id). */
export function many2oneId(value: unknown): number | null {
  if (typeof value === 'number') return value;
  if (value && typeof value === 'object' && 'id' in value) return (value as { id: number }).id;
  return null;
}
