/**
 * sync_table: every query sosync runs against it, in one place. Rows use the column names of
 * SPEC §3 (they are also the API's field names).
 */
import type { SqlDatabase } from './database.ts';
import { syncTableColumns } from './migrations.ts';

export type SystemName = 'fs' | 'fso';
export type JobState = 'new' | 'inprogress' | 'done' | 'error' | 'error_retry' | 'skipped';
export type JobErrorCode = 'timeout' | 'run_counter' | 'sync_source' | 'child_job' | 'transformation' | 'cleanup' | 'unknown';

export const openStates: readonly JobState[] = ['new', 'inprogress'];

export interface JobRow {
  job_id: number;
  job_date: Date | null;
  job_priority: number;
  job_source_system: SystemName;
  job_source_model: string;
  job_source_record_id: number;
  job_source_target_record_id: number | null;
  job_source_sosync_write_date: Date | null;
  job_source_fields: string | null;
  job_source_type: string;
  job_fetched: Date | null;
  job_start: Date | null;
  job_end: Date | null;
  job_run_count: number;
  job_state: JobState;
  job_error_code: JobErrorCode | null;
  job_error_text: string | null;
  job_log: string | null;
  job_last_change: Date | null;
  job_closed_by_job_id: number | null;
  parent_job_id: number | null;
  child_job_start: Date | null;
  child_job_end: Date | null;
  sync_source_system: SystemName | null;
  sync_source_model: string | null;
  sync_source_record_id: number | null;
  sync_target_system: SystemName | null;
  sync_target_model: string | null;
  sync_target_record_id: number | null;
  sync_source_data: string | null;
  sync_target_data_before: string | null;
  sync_target_request: string | null;
  sync_target_answer: string | null;
  sync_start: Date | null;
  sync_end: Date | null;
  job_fso_id: number | null;
  job_to_fso_can_sync: boolean;
  job_to_fso_sync_date: Date | null;
  /** error_retry: when the next attempt is due */
  job_retry_at: Date | null;
  /** attempts that ended in a transient failure so far */
  job_retry_count: number;
}

export const jobColumns = syncTableColumns.map(([name]) => name) as ReadonlyArray<keyof JobRow>;

/** What an announcement (/job/create) or a parent job stores. */
export interface NewJob {
  job_date: Date;
  job_source_system: SystemName;
  job_source_model: string;
  job_source_record_id: number;
  job_source_target_record_id?: number | null;
  job_source_sosync_write_date?: Date | null;
  job_source_fields?: string | null;
  job_source_type?: string;
  job_priority?: number;
  parent_job_id?: number | null;
}

export type JobPatch = Partial<Omit<JobRow, 'job_id'>>;

export interface JobListFilter {
  state?: JobState[];
  model?: string;
  system?: SystemName;
  /** job_date at or after */
  since?: Date;
  /** job_date before */
  until?: Date;
  parentJobId?: number | null;
  /** continue after this job_id (keyset paging) */
  cursor?: number;
  offset?: number;
  limit: number;
  order: 'asc' | 'desc';
}

const DEFAULT_PRIORITY = 1000;

/** SPEC §4.1's order, used by both branches of the pick and the choice between them. */
const PICK_ORDER = 'job_priority, job_date, job_id';

/** pickNextJob's statement ($1: now); exported so a test can EXPLAIN exactly what runs. */
export function pickNextJobSql(): string {
  return `SELECT * FROM (
      (SELECT * FROM sync_table
        WHERE parent_job_id IS NULL AND job_state IN ('new', 'inprogress')
        ORDER BY ${PICK_ORDER} LIMIT 1)
      UNION ALL
      (SELECT * FROM sync_table
        WHERE parent_job_id IS NULL AND job_state = 'error_retry' AND job_retry_at <= $1
        ORDER BY job_retry_at LIMIT 100)
    ) AS candidates
    ORDER BY ${PICK_ORDER} LIMIT 1`;
}

export class SyncTableStore {
  constructor(readonly db: SqlDatabase, private readonly now: () => Date = () => new Date()) {}

  async createJob(job: NewJob): Promise<JobRow> {
    const now = this.now();
    const result = await this.db.query<JobRow>(
      `INSERT INTO sync_table (job_date, job_priority, job_source_system, job_source_model, job_source_record_id,
         job_source_target_record_id, job_source_sosync_write_date, job_source_fields, job_source_type,
         job_fetched, job_run_count, job_state, job_last_change, parent_job_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, 'new', $10, $11)
       RETURNING *`,
      [
        job.job_date, job.job_priority ?? DEFAULT_PRIORITY, job.job_source_system, job.job_source_model,
        job.job_source_record_id, job.job_source_target_record_id ?? null, job.job_source_sosync_write_date ?? null,
        job.job_source_fields ?? null, job.job_source_type ?? '', now, job.parent_job_id ?? null,
      ],
    );
    return result.rows[0];
  }

  async getJob(jobId: number): Promise<JobRow | null> {
    const result = await this.db.query<JobRow>(`SELECT * FROM sync_table WHERE job_id = $1`, [jobId]);
    return result.rows[0] ?? null;
  }

  /**
   * The next open root job in SPEC §4.1 order; a root job in error_retry whose next attempt is due
   * competes with the open ones as if it were new. Each branch is served by its own partial index
   * (sync_table_open_root_jobs, sync_table_retry_due), so neither scans the table.
   */
  async pickNextJob(at: Date = this.now()): Promise<JobRow | null> {
    const result = await this.db.query<JobRow>(pickNextJobSql(), [at]);
    return result.rows[0] ?? null;
  }

  /** The earliest next attempt of a root job waiting in error_retry (the worker wakes then). */
  async nextRetryAt(): Promise<Date | null> {
    const result = await this.db.query<{ next: Date | null }>(
      `SELECT min(job_retry_at) AS next FROM sync_table WHERE parent_job_id IS NULL AND job_state = 'error_retry'`,
    );
    return result.rows[0]?.next ?? null;
  }

  async countOpenRootJobs(): Promise<number> {
    const result = await this.db.query<{ n: string | number }>(
      `SELECT count(*) AS n FROM sync_table WHERE parent_job_id IS NULL AND job_state IN ('new', 'inprogress')`,
    );
    return Number(result.rows[0].n);
  }

  /** Writes the given columns and job_last_change; returns the row as stored. */
  async updateJob(jobId: number, patch: JobPatch): Promise<JobRow> {
    const entries = Object.entries(patch).filter(([k]) => k !== 'job_id' && k !== 'job_last_change');
    for (const [key] of entries) {
      if (!(jobColumns as readonly string[]).includes(key)) throw new Error(`sync_table has no column ${key}`);
    }
    const sets = entries.map(([key], i) => `${key} = $${i + 2}`);
    sets.push(`job_last_change = $${entries.length + 2}`);
    const result = await this.db.query<JobRow>(
      `UPDATE sync_table SET ${sets.join(', ')} WHERE job_id = $1 RETURNING *`,
      [jobId, ...entries.map(([, v]) => v), this.now()],
    );
    if (result.rows.length === 0) throw new Error(`sync_table has no job ${jobId}`);
    return result.rows[0];
  }

  /** Marks a job started: state inprogress, job_start, run count + 1 (SPEC §4.2 step 1). */
  async startJob(jobId: number): Promise<JobRow> {
    const now = this.now();
    const result = await this.db.query<JobRow>(
      `UPDATE sync_table
          SET job_state = 'inprogress', job_start = $2, job_end = NULL, job_run_count = job_run_count + 1,
              job_last_change = $2
        WHERE job_id = $1 RETURNING *`,
      [jobId, now],
    );
    if (result.rows.length === 0) throw new Error(`sync_table has no job ${jobId}`);
    return result.rows[0];
  }

  /** The child job of `parentId` for one record, created when there is none yet. */
  async findOrCreateChildJob(parentId: number, system: SystemName, model: string, recordId: number, jobDate: Date): Promise<{ job: JobRow; created: boolean }> {
    return await this.db.transaction(async (tx) => {
      const found = await tx.query<JobRow>(
        `SELECT * FROM sync_table
          WHERE parent_job_id = $1 AND job_source_system = $2 AND job_source_model = $3 AND job_source_record_id = $4
          ORDER BY job_id LIMIT 1`,
        [parentId, system, model, recordId],
      );
      if (found.rows[0]) return { job: found.rows[0], created: false };
      const now = this.now();
      const created = await tx.query<JobRow>(
        `INSERT INTO sync_table (job_date, job_priority, job_source_system, job_source_model, job_source_record_id,
           job_source_type, job_fetched, job_run_count, job_state, job_last_change, parent_job_id)
         VALUES ($1, $2, $3, $4, $5, '', $6, 0, 'new', $6, $7) RETURNING *`,
        [jobDate, DEFAULT_PRIORITY, system, model, recordId, now, parentId],
      );
      return { job: created.rows[0], created: true };
    });
  }

  /**
   * SPEC §4.2 step 8: open jobs ('new') for the same source record with an older
   * job_source_sosync_write_date are closed as skipped by `job`. Returns the closed ids.
   */
  async closeSupersededJobs(job: Pick<JobRow, 'job_id' | 'job_source_system' | 'job_source_model' | 'job_source_record_id' | 'job_source_sosync_write_date'>): Promise<number[]> {
    if (job.job_source_sosync_write_date === null) return [];
    const now = this.now();
    const result = await this.db.query<{ job_id: number }>(
      `UPDATE sync_table
          SET job_state = 'skipped', job_closed_by_job_id = $1, job_log = $6, job_end = $7, job_last_change = $7,
              job_to_fso_can_sync = true
        WHERE job_source_record_id = $2 AND job_source_model = $3 AND job_source_system = $4
          AND job_state = 'new' AND job_id <> $1
          AND job_source_sosync_write_date < $5
        RETURNING job_id`,
      [job.job_id, job.job_source_record_id, job.job_source_model, job.job_source_system,
        job.job_source_sosync_write_date, `Skipped due to job_id = ${job.job_id}`, now],
    );
    return result.rows.map((r) => r.job_id).sort((a, b) => a - b);
  }

  /** Open jobs of one source record (duplicates, supersede checks). */
  async openJobsOfRecord(system: SystemName, model: string, recordId: number): Promise<JobRow[]> {
    const result = await this.db.query<JobRow>(
      `SELECT * FROM sync_table
        WHERE job_source_record_id = $1 AND job_source_model = $2 AND job_source_system = $3
          AND job_state IN ('new', 'inprogress')
        ORDER BY job_id`,
      [recordId, model, system],
    );
    return result.rows;
  }

  /** Jobs the protocol worker still has to copy to FSO, oldest first. */
  async protocolPending(limit: number): Promise<JobRow[]> {
    const result = await this.db.query<JobRow>(
      `SELECT * FROM sync_table
        WHERE job_to_fso_can_sync AND (job_to_fso_sync_date IS NULL OR job_to_fso_sync_date < job_last_change)
        ORDER BY job_id LIMIT $1`,
      [limit],
    );
    return result.rows;
  }

  async countProtocolPending(): Promise<number> {
    const result = await this.db.query<{ n: string | number }>(
      `SELECT count(*) AS n FROM sync_table
        WHERE job_to_fso_can_sync AND (job_to_fso_sync_date IS NULL OR job_to_fso_sync_date < job_last_change)`,
    );
    return Number(result.rows[0].n);
  }

  /**
   * Records a protocol copy without making the row pending again. When the row changed after it
   * was read (`copiedLastChange` is stale), the sync date stays older than the change, so the row
   * is copied again on the next pass.
   */
  async markProtocolSynced(jobId: number, fsoId: number, at: Date, copiedLastChange: Date | null): Promise<void> {
    await this.db.query(
      `UPDATE sync_table
          SET job_fso_id = $2,
              job_to_fso_sync_date = CASE
                WHEN job_last_change IS NOT DISTINCT FROM $4 THEN greatest($3, coalesce(job_last_change, $3))
                ELSE $4 END
        WHERE job_id = $1`,
      [jobId, fsoId, at, copiedLastChange],
    );
  }

  /**
   * Streams matching rows in batches (keyset paging on job_id), so a list of any length never
   * sits in memory whole.
   */
  async *listJobs(filter: JobListFilter, batchSize = 500): AsyncGenerator<JobRow> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, value: unknown) => {
      params.push(value);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (filter.state?.length) add(`job_state = ANY(?)`, filter.state);
    if (filter.model) add(`job_source_model = ?`, filter.model);
    if (filter.system) add(`job_source_system = ?`, filter.system);
    if (filter.since) add(`job_date >= ?`, filter.since);
    if (filter.until) add(`job_date < ?`, filter.until);
    if (filter.parentJobId === null) where.push(`parent_job_id IS NULL`);
    else if (filter.parentJobId !== undefined) add(`parent_job_id = ?`, filter.parentJobId);
    const direction = filter.order === 'asc' ? 'ASC' : 'DESC';
    const comparison = filter.order === 'asc' ? '>' : '<';
    let cursor = filter.cursor;
    let skip = filter.offset ?? 0;
    let remaining = filter.limit;
    while (remaining > 0) {
      const take = Math.min(batchSize, remaining);
      const batchParams = [...params];
      const batchWhere = [...where];
      if (cursor !== undefined) {
        batchParams.push(cursor);
        batchWhere.push(`job_id ${comparison} $${batchParams.length}`);
      }
      batchParams.push(take, skip);
      const sql = `SELECT * FROM sync_table ${batchWhere.length ? `WHERE ${batchWhere.join(' AND ')}` : ''}
        ORDER BY job_id ${direction} LIMIT $${batchParams.length - 1} OFFSET $${batchParams.length}`;
      const result = await this.db.query<JobRow>(sql, batchParams);
      for (const row of result.rows) yield row;
      if (result.rows.length < take) return;
      remaining -= result.rows.length;
      cursor = result.rows[result.rows.length - 1].job_id;
      skip = 0;
    }
  }
}
