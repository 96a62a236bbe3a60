/**
 * What the flows share: their clients, the stamp a write carries, and FS evidence.
 */
import { OnlineError, type OnlineClient } from '../adapters/online/index.ts';
import type { StudioClient, StudioWriteEvidence } from '../adapters/studio/index.ts';
import type { Logger } from '../log.ts';
import { FlowError, type Flow, type ModelInfo, type SyncEvidence } from './flow.ts';
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
 * errors the exchange of the very call that failed. (`_online` stays in the signature the flows
 * call; the evidence no longer comes from the shared client.)
 */
export async function keepEvidence<T>(_online: OnlineClient, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (err instanceof FlowError) throw err;
    const e = err as Error & { request?: unknown; answer?: unknown };
    if (e.request !== undefined) {
      throw new FlowError(e.message, { targetRequest: JSON.stringify(e.request), targetAnswer: String(e.answer ?? e.message) });
    }
    if (err instanceof OnlineError && err.exchange) {
      throw new FlowError(e.message, { targetRequest: err.exchange.request, targetAnswer: err.exchange.response || e.message });
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
