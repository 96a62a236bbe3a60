/**
 * Claims for parallel job workers (`job_workers` > 1, PostgreSQL only). Each worker slot has a
 * session of its own; on it the slot claims a job and locks the records the job touches, so that
 * a record is never in two running jobs at once, in this process or any other:
 *
 * - The claim reads the next open root job in SPEC §4.1 order `FOR UPDATE SKIP LOCKED` (a job
 *   another slot is claiming right now is passed over, never waited for) and takes it if it can lock
 *   its source record at once (`pg_try_advisory_lock`), else looks at the next one. A job whose record another
 *   slot holds waits in the queue, so the jobs of one record run one after the other, in order.
 * - While the job runs it locks its counterpart on the other system, and its child jobs' records,
 *   waiting for a slot that holds one. Two jobs that each wait for the other's record are a
 *   deadlock PostgreSQL detects: one of them fails transiently (error_retry) and runs again later.
 * - When the job ends the slot lets every record go (`pg_advisory_unlock_all`).
 *
 * The locks are session-level: when a process dies or its session is cut (the same keepalive and
 * idle settings as the worker lock; the slot pings its session every second) PostgreSQL releases
 * them, and a job left inprogress is claimed again by whoever runs the workers next. A session lost
 * while its job runs (ended by an administrator, say) takes the job's locks along: the job still
 * ends, and the slot's next claim opens a new session.
 */
import pg from 'pg';
import type { FailingSystem } from '../failure.ts';
import { HEARTBEAT_TIMEOUT_MS, lockSessionClient } from './leadership.ts';
import { toUtcTimestamp, type PostgresOptions } from './database.ts';
import { OPEN_STATES_SQL, PICK_ORDER, type JobRow, type SystemName } from './store.ts';

/** the first key of every record lock (the worker lock is 5051, migrations 5050) */
export const RECORD_LOCK_CLASS = 5052;
/** jobs one claim looks at before it gives up for now (their records held by other slots) */
const MAX_CLAIM_ROUNDS = 200;
const HEARTBEAT_MS = 1000;

/** A record as the locks know it: one system's model and id. */
export interface RecordKey {
  system: SystemName;
  model: string;
  id: number;
}

export const recordKeyText = (r: RecordKey) => `${r.system}:${r.model}:${r.id}`;

/** A record could not be locked (another job waits for this one's record, or the session failed). */
export class RecordLockError extends Error {
  readonly transient = true;
  readonly unavailable = false;
  readonly timeout = false;
  constructor(message: string, readonly system: FailingSystem, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RecordLockError';
  }
}

/**
 * Claim SQL: the head of each branch of the pick (open jobs in SPEC §4.1 order; jobs in
 * error_retry whose next attempt is due, $2 = now), passing over jobs already looked at ($1) and
 * rows another session is claiming (SKIP LOCKED). The row is locked only until the claim commits.
 */
export const claimStatements = {
  open: `SELECT * FROM sync_table
    WHERE parent_job_id IS NULL AND job_state IN ${OPEN_STATES_SQL} AND job_id <> ALL($1::bigint[])
    ORDER BY ${PICK_ORDER} LIMIT 1
    FOR UPDATE SKIP LOCKED`,
  retryDue: `SELECT * FROM sync_table
    WHERE parent_job_id IS NULL AND job_state = 'error_retry' AND job_retry_at <= $2 AND job_id <> ALL($1::bigint[])
    ORDER BY job_retry_at LIMIT 1
    FOR UPDATE SKIP LOCKED`,
};

/** SPEC §4.1's order between two heads: inprogress first, then priority, newest, job_id (due retries count as new). */
function picksFirst(a: JobRow, b: JobRow): boolean {
  // as in PostgreSQL, a job without job_date sorts first under DESC
  const rank = (j: JobRow) => [j.job_state === 'inprogress' ? 1 : 0, j.job_priority, j.job_date?.getTime() ?? Infinity, -j.job_id];
  const [x, y] = [rank(a), rank(b)];
  for (let i = 0; i < x.length; i += 1) if (x[i] !== y[i]) return x[i] > y[i];
  return true;
}

export class ClaimSession {
  private client: pg.Client | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private closed = false;
  /** calls of this session under way (the heartbeat only pings an idle session) */
  private inFlight = 0;

  constructor(private readonly options: PostgresOptions, private readonly name: string) {}

  private async session(): Promise<pg.Client> {
    if (this.closed) throw new Error(`${this.name}: the claim session is closed`);
    if (this.client) return this.client;
    const client = lockSessionClient(this.options, this.name);
    // a session that failed is dropped; its locks are gone with it, the next call opens another
    const drop = () => {
      if (this.client !== client) return;
      this.client = null;
      if (this.heartbeat) clearInterval(this.heartbeat);
      this.heartbeat = null;
      client.end().catch(() => undefined);
    };
    client.on('error', drop);
    client.on('end', drop);
    await client.connect();
    this.client = client;
    // an idle session is pinged (idle_session_timeout would end it); one waiting for a lock is not idle
    this.heartbeat = setInterval(() => {
      if (this.inFlight > 0) return;
      client.query({ text: 'SELECT 1', query_timeout: HEARTBEAT_TIMEOUT_MS } as pg.QueryConfig).catch(drop);
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
    return client;
  }

  private async tryLock(client: pg.Client, key: RecordKey): Promise<boolean> {
    const r = await client.query<{ locked: boolean }>(`SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked`, [RECORD_LOCK_CLASS, recordKeyText(key)]);
    return r.rows[0].locked;
  }

  /**
   * The next open root job whose record this slot could lock, or null when every open job is
   * claimed by another slot or waits behind a running job of its record. `runningHere` are the
   * jobs this process's other slots run: they are passed over unread, for a claim that locked
   * their rows (inprogress jobs come first in the pick order) would hold up their own writes
   * until it commits.
   */
  claim(at: Date, runningHere: readonly number[] = []): Promise<JobRow | null> {
    return this.busy(() => this.claimNext(at, runningHere));
  }

  private async busy<T>(work: () => Promise<T>): Promise<T> {
    this.inFlight += 1;
    try {
      return await work();
    } finally {
      this.inFlight -= 1;
    }
  }

  private async claimNext(at: Date, runningHere: readonly number[]): Promise<JobRow | null> {
    const client = await this.session();
    await client.query('BEGIN');
    try {
      // job ids whose record another slot holds: looked at once, then passed over
      const passed: number[] = [...runningHere];
      for (let round = 0; round < MAX_CLAIM_ROUNDS; round += 1) {
        const [open, due] = await Promise.all([
          client.query<JobRow>(claimStatements.open, [passed]),
          client.query<JobRow>(claimStatements.retryDue, [passed, toUtcTimestamp(at)]),
        ]);
        const heads = [...open.rows, ...due.rows];
        if (heads.length === 0) break;
        const job = heads.length === 2 && !picksFirst(heads[0], heads[1]) ? heads[1] : heads[0];
        if (await this.tryLock(client, { system: job.job_source_system, model: job.job_source_model, id: job.job_source_record_id })) {
          await client.query('COMMIT');
          return job;
        }
        passed.push(job.job_id);
      }
      await client.query('COMMIT');
      return null;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  /**
   * Locks a record for the running job, waiting while another slot holds it. Returns whether it
   * had to wait (what the job read of the record before may be stale then).
   */
  lock(key: RecordKey): Promise<{ waited: boolean }> {
    return this.busy(() => this.lockRecord(key));
  }

  private async lockRecord(key: RecordKey): Promise<{ waited: boolean }> {
    let client: pg.Client;
    try {
      client = await this.session();
      if (await this.tryLock(client, key)) return { waited: false };
      await client.query(`SELECT pg_advisory_lock($1, hashtext($2))`, [RECORD_LOCK_CLASS, recordKeyText(key)]);
      return { waited: true };
    } catch (err) {
      const code = (err as { code?: string }).code;
      const why = code === '40P01'
        ? `another worker holds ${recordKeyText(key)} and waits for a record of this job (deadlock)`
        : `locking ${recordKeyText(key)} failed: ${(err as Error).message}`;
      throw new RecordLockError(`${why}; the job runs again later`, key.system, { cause: err });
    }
  }

  /** Lets every record of the ended job go. */
  async releaseAll(): Promise<void> {
    const client = this.client;
    if (!client) return;
    await this.busy(() => client.query(`SELECT pg_advisory_unlock_all()`));
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client;
    this.client = null;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    if (!client) return;
    await client.query(`SELECT pg_advisory_unlock_all()`).catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}
