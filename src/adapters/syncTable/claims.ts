/**
 * Claims for parallel job workers (`job_workers` > 1, PostgreSQL only). Each worker slot has a
 * session of its own; on it the slot claims a job and locks the records the job touches, so that
 * a record is never in two running jobs at once, in this process or any other:
 *
 * - The claim reads the next open root jobs in SPEC §4.1 order `FOR UPDATE SKIP LOCKED` (a job
 *   another slot is claiming right now is passed over, never waited for) and takes the first one
 *   whose source record it can lock at once (`pg_try_advisory_lock`). A job whose record another
 *   slot holds waits in the queue, so the jobs of one record run one after the other, in order.
 * - While the job runs it locks its counterpart on the other system, and its child jobs' records,
 *   waiting for a slot that holds one. Two jobs that each wait for the other's record are a
 *   deadlock PostgreSQL detects: one of them fails transiently (error_retry) and runs again later.
 * - When the job ends the slot lets every record go (`pg_advisory_unlock_all`).
 *
 * The locks are session-level: when a process dies or its session is cut (the same keepalive and
 * idle settings as the worker lock; the slot pings its session every second) PostgreSQL releases
 * them, and a job left inprogress is claimed again by whoever runs the workers next.
 */
import pg from 'pg';
import type { FailingSystem } from '../failure.ts';
import { HEARTBEAT_TIMEOUT_MS, LOCK_SESSION_SETTINGS } from './leadership.ts';
import { toUtcTimestamp, utcTimestampTypes, type PostgresOptions } from './database.ts';
import { OPEN_STATES_SQL, PICK_ORDER, type JobRow, type SystemName } from './store.ts';

/** the first key of every record lock (the worker lock is 5051, migrations 5050) */
export const RECORD_LOCK_CLASS = 5052;
/** how many jobs in pick order one claim looks at per round */
export const CLAIM_BATCH = 16;
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

/** Claim SQL: candidates in pick order (open, or in error_retry and due), locked or skipped. */
export const claimStatement = `SELECT * FROM sync_table WHERE job_id IN (
    SELECT job_id FROM (
      (SELECT job_id, job_state, job_priority, job_date FROM sync_table
        WHERE parent_job_id IS NULL AND job_state IN ${OPEN_STATES_SQL}
        ORDER BY ${PICK_ORDER} LIMIT $2::int + $3::int)
      UNION ALL
      (SELECT job_id, job_state, job_priority, job_date FROM sync_table
        WHERE parent_job_id IS NULL AND job_state = 'error_retry' AND job_retry_at <= $1
        ORDER BY job_retry_at LIMIT $2::int + $3::int)
    ) AS candidates
    ORDER BY ${PICK_ORDER} LIMIT $2::int OFFSET $3::int)
  ORDER BY ${PICK_ORDER}
  FOR UPDATE SKIP LOCKED`;

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
    const settings = Object.entries(LOCK_SESSION_SETTINGS).map(([k, v]) => `-c ${k}=${v}`).join(' ');
    const client = new pg.Client({
      host: this.options.host,
      port: this.options.port,
      database: this.options.database,
      user: this.options.user,
      password: this.options.password,
      keepAlive: true,
      keepAliveInitialDelayMillis: 1000,
      application_name: `sosync ${this.name}`.slice(0, 63),
      options: `-c TimeZone=UTC ${settings}`,
      types: utcTimestampTypes,
    });
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
   * claimed by another slot or waits behind a running job of its record.
   */
  claim(at: Date): Promise<JobRow | null> {
    return this.busy(() => this.claimNext(at));
  }

  private async busy<T>(work: () => Promise<T>): Promise<T> {
    this.inFlight += 1;
    try {
      return await work();
    } finally {
      this.inFlight -= 1;
    }
  }

  private async claimNext(at: Date): Promise<JobRow | null> {
    const client = await this.session();
    for (let offset = 0; ; offset += CLAIM_BATCH) {
      await client.query('BEGIN');
      try {
        const candidates = await client.query<JobRow>(claimStatement, [toUtcTimestamp(at), CLAIM_BATCH, offset]);
        for (const job of candidates.rows) {
          if (await this.tryLock(client, { system: job.job_source_system, model: job.job_source_model, id: job.job_source_record_id })) {
            await client.query('COMMIT');
            return job;
          }
        }
        await client.query('COMMIT');
        if (candidates.rows.length < CLAIM_BATCH) return null;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
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
