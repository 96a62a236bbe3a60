/**
 * The protocol worker's outside world (SPEC §5): pending sync_table rows copied to FSO's
 * `sosync.job` — updated by job_fso_id when known, else found by job_id or created.
 */
import type { JobRow, SyncTableStore } from '../syncTable/index.ts';
import type { Logger } from '../../log.ts';
import type { OnlineClient } from './client.ts';
import { OnlineFaultError, OnlineUnavailableError } from './errors.ts';
import { sosyncJobFields, sosyncJobStates, type SosyncJobField, type SosyncJobFieldType } from './sosyncJobFields.ts';
import { formatOdooDatetime } from './values.ts';

/** What one protocol batch did. */
export interface BatchResult {
  copied: number;
  failed: number;
  /** rows still pending after this batch */
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
          if (err instanceof OnlineFaultError && err.missingModel === SOSYNC_JOB_MODEL) {
            const remaining = await store.countProtocolPending();
            return { copied, failed: rows.length - copied, remaining, modelMissing: true,
              lastError: `FSO has no model ${SOSYNC_JOB_MODEL}: job rows are not copied until /service/processprotocol` };
          }
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
