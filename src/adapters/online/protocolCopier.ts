/**
 * The protocol worker's outside world (SPEC §5): pending sync_table rows copied to FSO's
 * `sosync.job` — updated by job_fso_id when known, else found by job_id or created.
 */
import type { JobRow, ProtocolCopy, SyncTableStore } from '../syncTable/index.ts';
import type { Logger } from '../../log.ts';
import type { OnlineClient } from './client.ts';
import { OnlineFaultError, OnlineUnavailableError } from './errors.ts';
import { sosyncJobFields, sosyncJobStates, type SosyncJobField, type SosyncJobFieldType } from './sosyncJobFields.ts';
import { formatOdooDatetime } from './values.ts';

/** What one protocol batch did. */
export interface BatchResult {
  copied: number;
  failed: number;
  /** rows still pending after this batch (counted only after a full batch) */
  remaining: number;
  lastError?: string;
  /** FSO has no `sosync.job` model: copying is pointless until someone asks again */
  modelMissing?: boolean;
}

/** The protocol worker's one job: copy the next batch of pending rows. */
export interface ProtocolCopier {
  copyBatch(): Promise<BatchResult>;
}

export const SOSYNC_JOB_MODEL = 'sosync.job';

const sentStates = new Set<string>(sosyncJobStates);

/** A timestamp for a char field: ISO 8601 with milliseconds, as sosync writes it everywhere. */
function charDate(value: unknown): unknown {
  return value instanceof Date ? value.toISOString() : value;
}

/**
 * One sync_table row as FSO's `sosync.job` takes it: only its fields, Datetimes as Odoo's
 * 'YYYY-MM-DD HH:MM:SS' (UTC), char dates as ISO text, empty values as false. A state FSO's
 * selection lacks is sent as `error`, and the copied log says so.
 */
export function sosyncJobValues(row: JobRow): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [field, type] of Object.entries(sosyncJobFields) as [SosyncJobField, SosyncJobFieldType][]) {
    // sync_target_data_after has no sync_table column: it goes as empty
    const value = (row as unknown as Record<string, unknown>)[field];
    if (value === null || value === undefined || value === '') values[field] = false;
    else if (type === 'datetime') values[field] = value instanceof Date ? formatOdooDatetime(value) : value;
    else if (type === 'char') values[field] = charDate(value);
    else values[field] = value;
  }
  if (!sentStates.has(row.job_state)) {
    values.job_state = 'error';
    const note = `job_state ${row.job_state} is sent to FSO as error (FSO's selection has no ${row.job_state})`;
    values.job_log = row.job_log ? `${row.job_log}\n${note}` : note;
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

/** Why the rest of a batch is not worth trying. */
type Stop = 'unavailable' | 'modelMissing';

/**
 * Copies a batch with as few FSO calls as SPEC §5 allows: a row whose FSO id is known is written
 * (one call each: their values differ); the rest are looked up in one search_read by job_id, found
 * ones written, absent ones created in one create of all of them (Odoo creates a list in one call).
 * A create FSO refuses is retried row by row, so one bad row leaves only itself pending. The copies
 * are recorded in the sync table in one statement at the end of the batch; a crash before that
 * loses nothing: the next pass finds the records by job_id and writes them.
 */
export function createProtocolCopier(options: ProtocolCopierOptions): ProtocolCopier {
  const { store, online, logger } = options;

  return {
    async copyBatch(): Promise<BatchResult> {
      const rows = await store.protocolPending(options.batchSize);
      const copies: ProtocolCopy[] = [];
      let failed = 0;
      let lastError: string | undefined;
      let stop: Stop | null = null;

      const copiedTo = (row: JobRow, fsoId: number) => copies.push({ jobId: row.job_id, fsoId, copiedLastChange: row.job_last_change });
      /** a failed call for `failing` rows: counted, and the batch stops when FSO is down or lacks the model */
      const failure = (failing: readonly JobRow[], err: unknown): void => {
        failed += failing.length;
        const ids = failing.map((r) => r.job_id).join(', ');
        lastError = `job${failing.length > 1 ? 's' : ''} ${ids}: ${(err as Error).message}`;
        if (err instanceof OnlineFaultError && err.missingModel === SOSYNC_JOB_MODEL) stop = 'modelMissing';
        else if (err instanceof OnlineUnavailableError) stop = 'unavailable';
        else logger.warn({ job_ids: failing.map((r) => r.job_id), error: (err as Error).message }, 'protocol copy failed; the row stays pending');
      };
      /** runs `work` for `failing` unless the batch has stopped; false when it did not run or failed */
      const attempt = async (failing: readonly JobRow[], work: () => Promise<void>): Promise<boolean> => {
        if (stop) return false;
        try {
          await work();
          return true;
        } catch (err) {
          failure(failing, err);
          return false;
        }
      };

      // 1. update by job_fso_id when known; a record deleted in FSO is found or created below
      const toFind: JobRow[] = [];
      for (const row of rows) {
        if (row.job_fso_id === null) {
          toFind.push(row);
          continue;
        }
        const fsoId = row.job_fso_id;
        await attempt([row], async () => {
          try {
            await online.write(SOSYNC_JOB_MODEL, fsoId, sosyncJobValues(row));
            copiedTo(row, fsoId);
          } catch (err) {
            if (!(err instanceof OnlineFaultError) || err.missingModel === SOSYNC_JOB_MODEL) throw err;
            toFind.push(row);
          }
        });
      }

      // 2. the rest by job_id, all in one search
      const found = new Map<number, number>();
      if (toFind.length > 0) {
        const searched = await attempt(toFind, async () => {
          const records = await online.searchRead(SOSYNC_JOB_MODEL, [['job_id', 'in', toFind.map((r) => r.job_id)]], {
            fields: ['job_id'], order: 'id',
          });
          for (const record of records) {
            const jobId = Number(record.job_id);
            if (!found.has(jobId)) found.set(jobId, record.id);
          }
        });
        // the search failed: none of these rows can be copied now
        if (!searched) toFind.length = 0;
      }

      // 3. found: write; absent: create, all at once
      const absent: JobRow[] = [];
      for (const row of toFind) {
        const fsoId = found.get(row.job_id);
        if (fsoId === undefined) {
          absent.push(row);
          continue;
        }
        await attempt([row], async () => {
          await online.write(SOSYNC_JOB_MODEL, fsoId, sosyncJobValues(row));
          copiedTo(row, fsoId);
        });
      }
      if (absent.length > 1) {
        const created = await attempt(absent, async () => {
          try {
            const ids = await online.createMany(SOSYNC_JOB_MODEL, absent.map(sosyncJobValues));
            absent.forEach((row, i) => copiedTo(row, ids[i]));
            absent.length = 0;
          } catch (err) {
            // FSO refused the list (nothing of it was created): try each row on its own below
            if (!(err instanceof OnlineFaultError) || err.missingModel === SOSYNC_JOB_MODEL) throw err;
          }
        });
        if (!created) absent.length = 0;
      }
      for (const row of absent) {
        await attempt([row], async () => {
          copiedTo(row, await online.create(SOSYNC_JOB_MODEL, sosyncJobValues(row)));
        });
      }

      // 4. the sync table learns every copy at once
      if (copies.length > 0) {
        try {
          await store.markProtocolSynced(copies, options.now());
        } catch (err) {
          // FSO has the records; the next pass finds them by job_id and writes them again
          failed += copies.length;
          lastError = `recording ${copies.length} copies in the sync table: ${(err as Error).message}`;
          logger.warn({ error: (err as Error).message }, 'protocol copies not recorded; the rows stay pending');
          copies.length = 0;
        }
      }

      const copied = copies.length;
      // a batch that was not full took every pending row: what remains is what failed of it (a row
      // that becomes pending meanwhile comes with a wake-up of its own: a job that ends wakes the worker)
      const remaining = rows.length < options.batchSize ? rows.length - copied : await store.countProtocolPending();
      if (stop === 'modelMissing') {
        return { copied, failed: rows.length - copied, remaining, modelMissing: true,
          lastError: `FSO has no model ${SOSYNC_JOB_MODEL}: job rows are not copied until /service/processprotocol` };
      }
      // FSO is down: the rest of the batch was not tried and counts as failed
      if (stop === 'unavailable') failed = rows.length - copied;
      return { copied, failed, remaining, lastError };
    },
  };
}
