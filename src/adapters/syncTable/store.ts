/**
 * sync_table: every query sosync runs against it, in one place. Rows use the column names of
 * SPEC §3 (they are also the API's field names).
 */
import { createHash } from 'node:crypto';
import { systemNow } from '../clock/now.ts';
import { toUtcTimestamp, type SqlDatabase } from './database.ts';
import { syncTableColumns } from './migrations.ts';
import { GroupCommit } from './groupCommit.ts';
import { OPEN_STATES_SQL, PICK_ORDER, type JobState } from './pickOrder.ts';

export { jobStates, openStates, OPEN_STATES_SQL, PICK_ORDER, type JobState } from './pickOrder.ts';
export type SystemName = 'fs' | 'fso';
export const jobErrorCodes = ['timeout', 'run_counter', 'sync_source', 'child_job', 'transformation', 'cleanup', 'unknown'] as const;
export type JobErrorCode = (typeof jobErrorCodes)[number];

export { INT32_MAX } from '../ids.ts';

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

/** One job of a tree to create: the job and, nested, its children. */
export interface NewJobTree {
  job: NewJob;
  children: NewJobTree[];
}

/** The ids a created tree got, in the shape of the tree. */
export interface CreatedJobTree {
  job_id: number;
  child_jobs: CreatedJobTree[];
}

/** A job row with its child jobs, recursively. */
export type JobTreeRow = JobRow & { child_jobs: JobTreeRow[] };

export interface RetryFilter {
  model?: string;
  errorCode?: JobErrorCode;
  /** job_date at or after */
  since?: Date;
  /** job_date before */
  until?: Date;
  ids?: number[];
}

/** A statement with its parameters, kept apart so a test can EXPLAIN exactly what runs. */
export interface SqlStatement {
  sql: string;
  params: unknown[];
}

export interface JobStatistics {
  by_model_and_state: Array<{ model: string | null; state: JobState; count: number }>;
  oldest_open_job: Pick<JobRow, 'job_id' | 'job_state' | 'job_date' | 'job_fetched' | 'job_source_model' | 'job_source_record_id'> | null;
  finished_per_hour: Array<{ hour: Date; state: JobState; count: number }>;
  errors_by_code: Array<{ code: JobErrorCode | null; count: number }>;
}

/** Deepest tree /job/tree follows (a guard against a parent_job_id cycle). */
export const MAX_TREE_DEPTH = 50;

type Queryable = Pick<SqlDatabase, 'query'>;

const PICK_NEXT_JOB = `SELECT * FROM (
    (SELECT * FROM sync_table
      WHERE parent_job_id IS NULL AND job_state IN ${OPEN_STATES_SQL}
      ORDER BY ${PICK_ORDER} LIMIT 1)
    UNION ALL
    (SELECT * FROM sync_table
      WHERE parent_job_id IS NULL AND job_state = 'error_retry' AND job_retry_at <= $1
      ORDER BY job_retry_at LIMIT 100)
  ) AS candidates
  ORDER BY ${PICK_ORDER} LIMIT 1`;

/** The columns of a job closed as skipped by job $1 at $7 with the log `log` (superseded, or an orphaned child). */
const skippedBy = (log: string) => `job_state = 'skipped', job_closed_by_job_id = $1, job_log = ${log},
              job_start = coalesce(job_start, $7), job_end = $7, job_last_change = $7, job_to_fso_can_sync = true`;

/**
 * The statements that must be served by an index on a production-sized table, as the store runs
 * them; the EXPLAIN tests run these very texts.
 */
export const syncTableStatements = {
  /**
   * SPEC §4.1: inprogress before new, higher priority first, newest announcement first, job_id; a
   * root job in error_retry whose next attempt is due ($1 = now) competes as if it were new. Each
   * branch is served by its own partial index (sync_table_pick_next, sync_table_retry_due).
   */
  pickNextJob: PICK_NEXT_JOB,
  /**
   * The pick and SPEC §4.2 step 1 in one statement, for a single worker whose drift gate is known
   * to pass: the job the pick would return ($1 = now), marked inprogress with job_start = $1.
   */
  pickAndStartJob: `UPDATE sync_table
      SET job_state = 'inprogress', job_start = $1, job_end = NULL, job_run_count = job_run_count + 1, job_last_change = $1
    WHERE job_id = (SELECT job_id FROM (${PICK_NEXT_JOB}) AS picked)
    RETURNING *`,
  /**
   * SPEC §4.2 step 4 in one statement: the child job of parent $1 for record $2/$3/$4, or a new one
   * (job_date $5, priority $6, now $7) when there is none; `created` says which.
   */
  findOrCreateChildJob: `WITH found AS (
        SELECT * FROM sync_table
         WHERE parent_job_id = $1 AND job_source_system = $2 AND job_source_model = $3 AND job_source_record_id = $4
         ORDER BY job_id LIMIT 1
      ), created AS (
        INSERT INTO sync_table (job_date, job_priority, job_source_system, job_source_model, job_source_record_id,
               job_source_type, job_fetched, job_run_count, job_state, job_last_change, parent_job_id)
        SELECT $5::timestamp, $6::integer, $2, $3, $4, '', $7::timestamp, 0, 'new', $7::timestamp, $1 WHERE NOT EXISTS (SELECT 1 FROM found)
        RETURNING *
      )
      SELECT *, false AS created FROM found UNION ALL SELECT *, true AS created FROM created`,
  countOpenRootJobs: `SELECT count(*) AS n FROM sync_table WHERE parent_job_id IS NULL AND job_state IN ${OPEN_STATES_SQL}`,
  /**
   * SPEC §4.2 steps 7–9 in one statement: the job's outcome columns (`outcomeSets`, parameters from
   * $8 on) with job_to_fso_can_sync, and the jobs it supersedes closed as skipped (step 8) — all or
   * nothing, one commit. $1 the finishing job, $2 its record id, $3 model, $4 system, $5 its
   * job_source_sosync_write_date (null closes nothing), $6 the skipped jobs' log line, $7 now.
   *
   * A job that ends done or error also closes its own child jobs still open: a child waits in
   * error_retry (or new) only for its parent's next attempt, and a parent that ends needs no more
   * of them — say its rerun found the record up to date. Left open, such a child would never run
   * (only root jobs are picked) and would count as open for ever. A parent in error_retry keeps them.
   */
  finishJob: (outcomeSets: string) => `WITH finished AS (
        UPDATE sync_table SET ${outcomeSets}, job_last_change = $7, job_to_fso_can_sync = true
         WHERE job_id = $1 RETURNING *
      ), closed AS (
        UPDATE sync_table SET ${skippedBy('$6')}
         WHERE job_source_record_id = $2 AND job_source_model = $3 AND job_source_system = $4
           AND job_state IN ('new', 'error', 'error_retry') AND job_id <> $1
           AND job_source_sosync_write_date < $5 AND EXISTS (SELECT 1 FROM finished)
        RETURNING job_id
      ), orphaned AS (
        UPDATE sync_table
           SET ${skippedBy(`concat_ws(E'\n', job_log, 'Skipped: its parent job ' || $1::integer::text || ' ended without running it again')`)}
         WHERE parent_job_id = $1 AND job_state IN ('new', 'inprogress', 'error_retry')
           AND (SELECT job_state FROM finished) IN ('done', 'error')
        RETURNING job_id
      )
      SELECT finished.*, ARRAY(SELECT job_id FROM closed UNION ALL SELECT job_id FROM orphaned ORDER BY job_id) AS closed_job_ids FROM finished`,
} as const;

/**
 * Many announcements in one multi-row insert, the arrays unnested in their given order ($11 = now).
 * The serial is drawn in insertion order, which follows the ORDER BY, so the rows sorted by job_id
 * are in the order of the arrays.
 */
function insertJobsStatement(returning: '*' | 'job_id'): string {
  return `INSERT INTO sync_table (job_date, job_priority, job_source_system, job_source_model, job_source_record_id,
       job_source_target_record_id, job_source_sosync_write_date, job_source_fields, job_source_type,
       parent_job_id, job_fetched, job_run_count, job_state, job_last_change)
     SELECT j.job_date, j.job_priority, j.job_source_system, j.job_source_model, j.job_source_record_id,
            j.job_source_target_record_id, j.job_source_sosync_write_date, j.job_source_fields, j.job_source_type,
            j.parent_job_id, $11, 0, 'new', $11
       FROM unnest($1::timestamp[], $2::integer[], $3::varchar[], $4::varchar[], $5::integer[], $6::integer[],
                   $7::timestamp[], $8::text[], $9::varchar[], $10::integer[])
            WITH ORDINALITY AS j(job_date, job_priority, job_source_system, job_source_model, job_source_record_id,
                 job_source_target_record_id, job_source_sosync_write_date, job_source_fields, job_source_type,
                 parent_job_id, position)
      ORDER BY j.position
     RETURNING ${returning}`;
}

/** A patch's columns and values, job_id and job_last_change left out (the store sets those); an unknown column throws. */
function checkedPatch(patch: JobPatch): Array<[string, unknown]> {
  const entries = Object.entries(patch).filter(([k]) => k !== 'job_id' && k !== 'job_last_change');
  for (const [key] of entries) {
    if (!(jobColumns as readonly string[]).includes(key)) throw new Error(`sync_table has no column ${key}`);
  }
  return entries;
}

/**
 * finishJob's statement is prepared under a name of its column list: a handful of shapes (done,
 * error, retry; with or without a direction or a write), each named once.
 */
const finishStatementNames = new Map<string, string>();
function finishStatementName(sets: string): string {
  let name = finishStatementNames.get(sets);
  if (!name) {
    name = `sosync_finish_${createHash('sha1').update(sets).digest('hex').slice(0, 16)}`;
    finishStatementNames.set(sets, name);
  }
  return name;
}

/** One row copied to FSO's sosync.job: its id there and the job_last_change the copy was made of. */
export interface ProtocolCopy {
  jobId: number;
  fsoId: number;
  copiedLastChange: Date | null;
}

export class SyncTableStore {
  constructor(readonly db: SqlDatabase, private readonly now: () => Date = systemNow) {}

  /**
   * Groups the inserts of concurrent createJob calls into one statement and commit (groupCommit.ts);
   * a lone call is the single prepared INSERT.
   */
  private readonly createGroups = new GroupCommit<NewJob, JobRow>({
    one: (job) => this.insertJob(job),
    many: (jobs) => this.insertJobRows(jobs),
    bytes: (job) => 256 + job.job_source_model.length + (job.job_source_fields?.length ?? 0),
  });

  /** Stores one announcement; resolves with its row once it is committed. */
  createJob(job: NewJob): Promise<JobRow> {
    return this.createGroups.add(job);
  }

  private async insertJob(job: NewJob): Promise<JobRow> {
    const now = this.now();
    const result = await this.db.queryPrepared<JobRow>('sosync_create_job',
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

  /** Many jobs in one prepared statement (the text does not depend on their number); rows in the jobs' order. */
  private async insertJobRows(jobs: NewJob[]): Promise<JobRow[]> {
    const result = await this.db.queryPrepared<JobRow>('sosync_create_jobs', insertJobsStatement('*'), this.insertJobsParams(jobs));
    return result.rows.sort((a, b) => a.job_id - b.job_id);
  }

  async getJob(jobId: number): Promise<JobRow | null> {
    const result = await this.db.query<JobRow>(`SELECT * FROM sync_table WHERE job_id = $1`, [jobId]);
    return result.rows[0] ?? null;
  }

  /** The next root job to run, in SPEC §4.1 order (see syncTableStatements.pickNextJob). */
  async pickNextJob(at: Date = this.now()): Promise<JobRow | null> {
    const result = await this.db.queryPrepared<JobRow>('sosync_pick_next_job', syncTableStatements.pickNextJob, [at]);
    return result.rows[0] ?? null;
  }

  /**
   * The next root job, already started (inprogress, job_start, run count + 1): pickNextJob and
   * startJob in one round trip. Only for a single worker that runs the job at once (the drift gate
   * is known to pass); null when no job is open.
   */
  async pickAndStartJob(at: Date = this.now()): Promise<JobRow | null> {
    const result = await this.db.queryPrepared<JobRow>('sosync_pick_and_start_job', syncTableStatements.pickAndStartJob, [at]);
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
    const result = await this.db.query<{ n: string | number }>(syncTableStatements.countOpenRootJobs);
    return Number(result.rows[0].n);
  }

  /** Throws unless the table answers a query (the health check). */
  async checkReachable(): Promise<void> {
    await this.db.query('SELECT 1 FROM sync_table LIMIT 1');
  }

  /**
   * Jobs in the open states by state and model, and the oldest open root job's job_fetched. Both
   * read only open rows through the partial and state indexes, never the finished history.
   */
  async openJobStatistics(): Promise<{ counts: Array<{ state: JobState; model: string; n: number }>; oldestOpenFetched: Date | null }> {
    const [counts, oldest] = await Promise.all([
      this.db.query<{ state: JobState; model: string; n: string | number }>(
        `SELECT job_state AS state, job_source_model AS model, count(*) AS n FROM sync_table
          WHERE job_state IN ('new', 'inprogress', 'error_retry') GROUP BY job_state, job_source_model`,
      ),
      this.db.query<{ fetched: Date | null }>(
        `SELECT min(job_fetched) AS fetched FROM sync_table WHERE parent_job_id IS NULL AND job_state IN ('new', 'inprogress')`,
      ),
    ]);
    return {
      counts: counts.rows.map((r) => ({ state: r.state, model: r.model, n: Number(r.n) })),
      oldestOpenFetched: oldest.rows[0]?.fetched ?? null,
    };
  }

  /** Writes the given columns and job_last_change; returns the row as stored. */
  async updateJob(jobId: number, patch: JobPatch): Promise<JobRow> {
    const entries = checkedPatch(patch);
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
    const result = await this.db.queryPrepared<JobRow>('sosync_start_job',
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
    const result = await this.db.queryPrepared<JobRow & { created: boolean }>('sosync_open_child', syncTableStatements.findOrCreateChildJob,
      [parentId, system, model, recordId, jobDate, DEFAULT_PRIORITY, this.now()]);
    const { created, ...job } = result.rows[0];
    return { job: job as JobRow, created };
  }

  /**
   * SPEC §4.2 steps 7–9 as one statement and commit: writes `outcome` (the outcome columns, job_end
   * among them) with job_to_fso_can_sync, and closes the jobs `job` supersedes (step 8; a job
   * without job_source_sosync_write_date closes none) and, when it ends done or error, its child
   * jobs still open (see syncTableStatements.finishJob). Either all of it is stored or nothing is:
   * a failure leaves the row as it was, in progress. Returns the row as stored and the closed ids.
   */
  async finishJob(job: Pick<JobRow, 'job_id' | 'job_source_system' | 'job_source_model' | 'job_source_record_id' | 'job_source_sosync_write_date'>, outcome: JobPatch): Promise<{ job: JobRow; closedJobs: number[] }> {
    const entries = checkedPatch(outcome).filter(([key]) => key !== 'job_to_fso_can_sync');
    const FIRST_OUTCOME_PARAM = 8;
    const sets = entries.map(([key], i) => `${key} = $${i + FIRST_OUTCOME_PARAM}`).join(', ');
    const name = finishStatementName(sets);
    const result = await this.db.queryPrepared<JobRow & { closed_job_ids: number[] }>(name, syncTableStatements.finishJob(sets), [
      job.job_id, job.job_source_record_id, job.job_source_model, job.job_source_system,
      job.job_source_sosync_write_date, `Skipped due to job_id = ${job.job_id}`, this.now(),
      ...entries.map(([, value]) => value),
    ]);
    if (result.rows.length === 0) throw new Error(`sync_table has no job ${job.job_id}`);
    const { closed_job_ids: closed, ...row } = result.rows[0];
    return { job: row as JobRow, closedJobs: closed.map(Number) };
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
   * Records protocol copies, all in one statement, without making a row pending again. A row that
   * changed after it was read (its `copiedLastChange` is stale) keeps a sync date older than the
   * change, so it is copied again on the next pass; its FSO id is kept either way.
   */
  async markProtocolSynced(copies: readonly ProtocolCopy[], at: Date): Promise<void> {
    if (copies.length === 0) return;
    await this.db.query(
      `UPDATE sync_table AS t
          SET job_fso_id = c.fso_id,
              job_to_fso_sync_date = CASE
                WHEN t.job_last_change IS NOT DISTINCT FROM c.copied_last_change THEN greatest($4, coalesce(t.job_last_change, $4))
                ELSE c.copied_last_change END
         FROM unnest($1::bigint[], $2::integer[], $3::timestamp[]) AS c(job_id, fso_id, copied_last_change)
        WHERE t.job_id = c.job_id`,
      [
        copies.map((c) => c.jobId),
        copies.map((c) => c.fsoId),
        copies.map((c) => (c.copiedLastChange ? toUtcTimestamp(c.copiedLastChange) : null)),
        at,
      ],
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

  // --- operator routes: bulk and tree creation, retries, trees, statistics, cleanup ---

  /**
   * Stores many announcements with one multi-row insert (arrays unnested in their given order);
   * returns the new ids in that order. `on` runs it inside a caller's transaction.
   */
  async createJobs(jobs: NewJob[], on: Queryable = this.db): Promise<number[]> {
    if (jobs.length === 0) return [];
    const result = await on.query<{ job_id: number }>(insertJobsStatement('job_id'), this.insertJobsParams(jobs));
    return result.rows.map((r) => Number(r.job_id)).sort((a, b) => a - b);
  }

  /** The parameters of insertJobsStatement: one array per column, and now. */
  private insertJobsParams(jobs: NewJob[]): unknown[] {
    const column = <T,>(pick: (job: NewJob) => T) => jobs.map(pick);
    const stamp = (d: Date | null | undefined) => (d ? toUtcTimestamp(d) : null);
    return [
      column((j) => stamp(j.job_date)), column((j) => j.job_priority ?? DEFAULT_PRIORITY), column((j) => j.job_source_system),
      column((j) => j.job_source_model), column((j) => j.job_source_record_id), column((j) => j.job_source_target_record_id ?? null),
      column((j) => stamp(j.job_source_sosync_write_date)), column((j) => j.job_source_fields ?? null),
      column((j) => j.job_source_type ?? ''), column((j) => j.parent_job_id ?? null), this.now(),
    ];
  }

  /** Stores a job and its children (nested) in one transaction, one insert per tree level. */
  async createJobTree(tree: NewJobTree): Promise<CreatedJobTree> {
    return await this.db.transaction(async (tx) => {
      const root: CreatedJobTree = { job_id: 0, child_jobs: [] };
      let level: Array<{ node: NewJobTree; created: CreatedJobTree; parentId: number | null }> = [{ node: tree, created: root, parentId: null }];
      while (level.length > 0) {
        const ids = await this.createJobs(level.map(({ node, parentId }) => ({ ...node.job, parent_job_id: parentId })), tx);
        const next: typeof level = [];
        level.forEach((entry, i) => {
          entry.created.job_id = ids[i];
          for (const child of entry.node.children) {
            const created: CreatedJobTree = { job_id: 0, child_jobs: [] };
            entry.created.child_jobs.push(created);
            next.push({ node: child, created, parentId: ids[i] });
          }
        });
        level = next;
      }
      return root;
    });
  }

  /**
   * Failed jobs (error, error_retry) matching the filter go back to 'new' with the run count
   * reset; `logLine` is appended to job_log with the state and code they had. Returns their ids.
   */
  async retryFailedJobs(filter: RetryFilter, logLine: string): Promise<number[]> {
    const where = [`job_state IN ('error', 'error_retry')`];
    const params: unknown[] = [this.now(), logLine];
    const add = (sql: string, value: unknown) => {
      params.push(value);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (filter.model) add(`job_source_model = ?`, filter.model);
    if (filter.errorCode) add(`job_error_code = ?`, filter.errorCode);
    if (filter.since) add(`job_date >= ?`, filter.since);
    if (filter.until) add(`job_date < ?`, filter.until);
    if (filter.ids) add(`job_id = ANY(?::integer[])`, filter.ids);
    const result = await this.db.query<{ job_id: number }>(
      `UPDATE sync_table
          SET job_log = concat_ws(E'\n', job_log, $2::text || ' (was ' || job_state || coalesce(' ' || job_error_code, '') || ')'),
              job_state = 'new', job_run_count = 0, job_error_code = NULL, job_error_text = NULL, job_end = NULL,
              job_last_change = $1
        WHERE ${where.join(' AND ')}
        RETURNING job_id`,
      params,
    );
    return result.rows.map((r) => r.job_id).sort((a, b) => a - b);
  }

  /** A job with its child jobs, recursively (served by sync_table_children); null when unknown. */
  async jobTree(jobId: number): Promise<JobTreeRow | null> {
    const result = await this.db.query<JobRow & { tree_depth: number }>(
      `WITH RECURSIVE tree AS (
         SELECT s.*, 0 AS tree_depth, ARRAY[s.job_id] AS tree_path FROM sync_table s WHERE s.job_id = $1
         UNION ALL
         SELECT c.*, t.tree_depth + 1, t.tree_path || c.job_id
           FROM sync_table c JOIN tree t ON c.parent_job_id = t.job_id
          WHERE t.tree_depth < $2 AND NOT c.job_id = ANY(t.tree_path)
       )
       SELECT * FROM tree ORDER BY tree_depth, job_id`,
      [jobId, MAX_TREE_DEPTH],
    );
    const byId = new Map<number, JobTreeRow>();
    for (const { tree_depth: _depth, tree_path: _path, ...row } of result.rows as Array<JobRow & { tree_depth: number; tree_path: unknown }>) {
      const node: JobTreeRow = { ...row, child_jobs: [] };
      if (!byId.has(node.job_id)) byId.set(node.job_id, node);
      if (node.parent_job_id !== null && node.job_id !== jobId) byId.get(node.parent_job_id)?.child_jobs.push(node);
    }
    return byId.get(jobId) ?? null;
  }

  /** The statements of /statistic/jobs; each is served by an index (see migration 4). */
  statisticStatements(hoursBack = 24): Record<keyof JobStatistics, SqlStatement> {
    const now = this.now();
    const since = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), now.getUTCHours() - hoursBack + 1));
    return {
      by_model_and_state: {
        sql: `SELECT job_source_model AS model, job_state AS state, count(*)::integer AS count
                FROM sync_table GROUP BY job_source_model, job_state ORDER BY job_source_model, job_state`,
        params: [],
      },
      // the lowest open job_id per state, each one step down sync_table_state
      oldest_open_job: {
        sql: `SELECT job_id, job_state, job_date, job_fetched, job_source_model, job_source_record_id FROM sync_table
               WHERE job_id = least((SELECT min(job_id) FROM sync_table WHERE job_state = 'new'),
                                    (SELECT min(job_id) FROM sync_table WHERE job_state = 'inprogress'))`,
        params: [],
      },
      finished_per_hour: {
        sql: `SELECT date_trunc('hour', job_end) AS hour, job_state AS state, count(*)::integer AS count
                FROM sync_table WHERE job_end >= $1 AND job_state IN ('done', 'error', 'error_retry', 'skipped')
               GROUP BY 1, 2 ORDER BY 1, 2`,
        params: [since],
      },
      errors_by_code: {
        sql: `SELECT job_error_code AS code, count(*)::integer AS count
                FROM sync_table WHERE job_state IN ('error', 'error_retry') GROUP BY job_error_code ORDER BY job_error_code`,
        params: [],
      },
    };
  }

  /** Counts for /statistic/jobs, all computed by the database from its indexes. */
  async jobStatistics(hoursBack = 24): Promise<JobStatistics> {
    const statements = this.statisticStatements(hoursBack);
    const run = async <Row,>(s: SqlStatement) => (await this.db.query<Row>(s.sql, s.params)).rows;
    return {
      by_model_and_state: await run(statements.by_model_and_state),
      oldest_open_job: (await run<JobStatistics['oldest_open_job']>(statements.oldest_open_job))[0] ?? null,
      finished_per_hour: await run(statements.finished_per_hour),
      errors_by_code: await run(statements.errors_by_code),
    };
  }

  /**
   * One small batch of the cleanup: up to `batchSize` done/skipped root jobs that ended before
   * `cutoff` and wait for no protocol copy, with all their descendants, in one short statement.
   * Rows another session holds are skipped, never waited for.
   */
  finishedJobsBatchStatement(cutoff: Date, batchSize: number): SqlStatement {
    return {
      sql: `WITH RECURSIVE roots AS (
              SELECT job_id FROM sync_table
               WHERE parent_job_id IS NULL AND job_state IN ('done', 'skipped') AND job_end < $1
                 AND NOT (job_to_fso_can_sync AND (job_to_fso_sync_date IS NULL OR job_to_fso_sync_date < job_last_change))
               ORDER BY job_end LIMIT $2
               FOR UPDATE SKIP LOCKED
            ), tree AS (
              SELECT job_id FROM roots
              UNION
              SELECT c.job_id FROM sync_table c JOIN tree t ON c.parent_job_id = t.job_id
            )
            DELETE FROM sync_table WHERE job_id = ANY(ARRAY(SELECT job_id FROM tree))`,
      params: [cutoff, batchSize],
    };
  }

  /** Runs one cleanup batch; returns the rows removed. */
  async deleteFinishedJobsBatch(cutoff: Date, batchSize: number): Promise<number> {
    const statement = this.finishedJobsBatchStatement(cutoff, batchSize);
    return (await this.db.query(statement.sql, statement.params)).rowCount;
  }
}
