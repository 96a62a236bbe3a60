/**
 * The evidence a write leaves on the job row (SPEC §4.2 step 6), kept the same way by every flow:
 * what was sent to the target and what it answered — FS's written rows and "success", or FSO's
 * raw XML-RPC exchange — also when the write fails.
 */
import { OnlineError } from '../adapters/online/index.ts';
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
 * errors the exchange of the very call that failed (never another caller's: the client is shared
 * with the protocol worker).
 */
export async function keepEvidence<T>(write: () => Promise<T>): Promise<T> {
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
