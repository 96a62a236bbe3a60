/**
 * The evidence a write leaves on the job row (SPEC §4.2 step 6), kept the same way by every flow:
 * what was sent to the target and what it answered — FS's written rows and "success", or FSO's
 * raw XML-RPC exchange — also when the write fails.
 */
import type { OnlineClient } from '../adapters/online/index.ts';
import type { WrittenRow } from '../adapters/studio/index.ts';
import { FlowError, type SyncEvidence } from './flow.ts';

/** What a target write sent and got back. */
export interface TargetExchange {
  /** FS: the rows written; FSO: the raw XML-RPC request */
  request: WrittenRow[] | string;
  answer: string;
}

export function syncEvidence(
  targetRecordId: number, exchange: TargetExchange, sourceData: unknown, before: unknown, summary: string,
): SyncEvidence {
  return {
    targetRecordId,
    sourceData,
    targetDataBefore: before ?? undefined,
    targetRequest: typeof exchange.request === 'string' ? exchange.request : JSON.stringify(exchange.request),
    targetAnswer: exchange.answer,
    summary,
  };
}

/**
 * Runs a write to either system and, when it fails, keeps what was sent and answered on the error,
 * so the job row shows the failed request: FS errors carry the rows they tried to write, FSO
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
