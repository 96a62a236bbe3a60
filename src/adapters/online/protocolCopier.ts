/**
 * The protocol worker's outside world (SPEC §5): pending sync_table rows copied to FSO's
 * `sosync.job` — updated by job_fso_id when known, else found by job_id or created.
 */
import type { JobRow, SyncTableStore } from '../syncTable/index.ts';
import type { Logger } from '../../log.ts';
import type { OnlineClient } from './client.ts';
import { OnlineFaultError, OnlineUnavailableError } from './errors.ts';
import { sosyncJobFields, type SyncTableColumn } from './sosyncJobFields.ts';

/** What one protocol batch did. */
export interface BatchResult {
  copied: number;
  failed: number;
  /** rows still pending after this batch */
  remaining: number;
  lastError?: string;
}

/** The protocol worker's one job: copy the next batch of pending rows. */
export interface ProtocolCopier {
  copyBatch(): Promise<BatchResult>;
}

export const SOSYNC_JOB_MODEL = 'sosync.job';

/** Columns that describe the copy itself and are not copied. */
const notCopied = new Set<string>(['job_fso_id', 'job_to_fso_can_sync', 'job_to_fso_sync_date']);

export function sosyncJobValues(row: JobRow): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [column, [field]] of Object.entries(sosyncJobFields)) {
    if (notCopied.has(column)) continue;
    values[field] = row[column as SyncTableColumn & keyof JobRow] ?? null;
  }
  return values;
}

export interface ProtocolCopierOptions {
  store: SyncTableStore;
  online: OnlineClient;
  batchSize: number;
  now: () => Date;
  logger: Logger;
}

export function createProtocolCopier(options: ProtocolCopierOptions): ProtocolCopier {
  const { store, online, logger } = options;

  async function copyOne(row: JobRow): Promise<number> {
    const values = sosyncJobValues(row);
    if (row.job_fso_id !== null) {
      try {
        await online.write(SOSYNC_JOB_MODEL, row.job_fso_id, values);
        return row.job_fso_id;
      } catch (err) {
        // deleted in FSO: fall through to find-or-create
        if (!(err instanceof OnlineFaultError)) throw err;
      }
    }
    const found = await online.search(SOSYNC_JOB_MODEL, [['job_id', '=', row.job_id]], { limit: 1 });
    if (found.length > 0) {
      await online.write(SOSYNC_JOB_MODEL, found[0], values);
      return found[0];
    }
    return online.create(SOSYNC_JOB_MODEL, values);
  }

  return {
    async copyBatch(): Promise<BatchResult> {
      const rows = await store.protocolPending(options.batchSize);
      let copied = 0;
      let failed = 0;
      let lastError: string | undefined;
      for (const row of rows) {
        try {
          const fsoId = await copyOne(row);
          await store.markProtocolSynced(row.job_id, fsoId, options.now(), row.job_last_change);
          copied++;
        } catch (err) {
          failed++;
          lastError = `job ${row.job_id}: ${(err as Error).message}`;
          // FSO is down: the rest of the batch would fail the same way
          if (err instanceof OnlineUnavailableError) {
            failed += rows.length - copied - failed;
            break;
          }
          logger.warn({ job_id: row.job_id, error: (err as Error).message }, 'protocol copy failed; the row stays pending');
        }
      }
      const remaining = await store.countProtocolPending();
      return { copied, failed, remaining, lastError };
    },
  };
}
