/**
 * What the flows share: their clients, the stamp a write carries, and FS evidence.
 */
import type { OnlineClient } from '../adapters/online/index.ts';
import type { StudioClient, StudioWriteEvidence } from '../adapters/studio/index.ts';
import type { Logger } from '../log.ts';
import { FlowError, type DeleteAction, type FieldComparison, type Flow, type ModelInfo, type SyncEvidence, type SystemName } from './flow.ts';
import type { OnlineModel } from './onlineModel.ts';

export interface FlowClients {
  studio: StudioClient;
  online: OnlineClient;
  now: () => Date;
  logger: Logger;
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

/** FS evidence: the written rows as the request, "success" as the answer. */
export function studioEvidence(result: StudioWriteEvidence & { id?: number; personId?: number }, source: unknown, before: unknown, summary: string): SyncEvidence {
  return {
    targetRecordId: result.id ?? result.personId ?? null,
    sourceData: source,
    targetDataBefore: before ?? undefined,
    targetRequest: JSON.stringify(result.request),
    targetAnswer: result.answer,
    summary,
  };
}

/**
 * Runs a write and, when it fails, keeps what was sent and answered on the error, so the job row
 * shows the failed request (SPEC §4.2 step 6): FS errors carry the rows they tried to write, FSO
 * errors the last XML-RPC exchange.
 */
export async function keepEvidence<T>(online: OnlineClient, write: () => Promise<T>): Promise<T> {
  const before = online.lastExchange();
  try {
    return await write();
  } catch (err) {
    if (err instanceof FlowError) throw err;
    const e = err as Error & { request?: unknown; answer?: unknown };
    if (e.request !== undefined) {
      throw new FlowError(e.message, { targetRequest: JSON.stringify(e.request), targetAnswer: String(e.answer ?? e.message) });
    }
    const last = online.lastExchange();
    if (last && last !== before) {
      throw new FlowError(e.message, { targetRequest: last.request, targetAnswer: last.response || e.message });
    }
    throw err;
  }
}

/** How a flow reaches its FS record: read it, find it by FSO id, delete it. */
export interface StudioSide<Row> {
  model: string;
  read(id: number): Promise<Row | null>;
  info(row: Row): ModelInfo;
  findIdByFsoId(fsoId: number): Promise<number | null>;
  delete(id: number): Promise<StudioWriteEvidence & { deleted: boolean }>;
}

/** The two model-info readers every flow needs, from its FSO model and its FS side. */
export function modelInfoReaders<Row>(fso: OnlineModel, fs: StudioSide<Row>): Pick<Flow, 'readModelInfo' | 'findByForeignId'> {
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
export function counterpartDeleter<Row>(online: OnlineClient, fso: OnlineModel, fs: StudioSide<Row>): Flow['deleteCounterpart'] {
  return async (sourceSystem, sourceRecordId, targetRecordId) => {
    if (sourceSystem === 'fs') {
      const id = targetRecordId ?? (await fso.findIdByFsId(sourceRecordId));
      if (id === null || !(await fso.readInfo(id))) return null;
      const removed = await keepEvidence(online, () => fso.remove(id));
      return { targetRecordId: id, sourceData: null, targetRequest: removed.request, targetAnswer: removed.answer, summary: removed.summary };
    }
    const id = targetRecordId ?? (await fs.findIdByFsoId(sourceRecordId));
    if (id === null) return null;
    const result = await keepEvidence(online, () => fs.delete(id));
    if (!result.deleted) return null;
    return studioEvidence({ ...result, id }, null, null, `deleted ${fs.model} ${id}`);
  };
}

/** How a flow's counterparts are removed: FS rows are deleted, FSO records deactivated or unlinked. */
export function deleteActions(fso: OnlineModel): Record<SystemName, DeleteAction> {
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
