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
 * - When the job ends the slot lets every record go (`pg_advisory_unlock_all`): in the round trip
 *   of its next claim when it claims at once, else on its own (releaseSoon).
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
import { OPEN_STATES_SQL, PICK_ORDER } from './pickOrder.ts';
import type { JobRow, SystemName } from './store.ts';

/** the first key of every record lock (the worker lock is 5051, migrations 5050) */
export const RECORD_LOCK_CLASS = 5052;
const RECORD_LOCK_CLASS_SQL = String(RECORD_LOCK_CLASS);
/** jobs one claim looks at before it gives up for now (their records held by other slots) */
const MAX_CLAIM_ROUNDS = 200;
const HEARTBEAT_MS = 1000;
/**
 * How long a slot waits for a record before PostgreSQL looks for a deadlock. Two jobs that each
 * hold one side of a pair and wait for the other (the pair changed on both sides at once) hold two
 * slots until then; the server's deadlock_timeout is 1 s by default. The setting is the slot
 * sessions' own: only their waits for a record are checked this early, each once. Setting it needs a
 * superuser or, from PostgreSQL 15, `GRANT SET ON PARAMETER deadlock_timeout TO <role>`; without,
 * the server's value holds and nothing else changes.
 */
export const DEADLOCK_CHECK_MS = 20;

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
 * The head of the pick a claim looks at, given the jobs it passes over (`passed`) and the time due
 * retries are due by (`due`): the head of each branch of the pick — open jobs in SPEC §4.1 order,
 * jobs in error_retry whose next attempt is due — read `FOR UPDATE SKIP LOCKED` (a row another
 * session is claiming right now is passed over, never waited for), and of the two the one SPEC §4.1
 * picks first (a due retry competes as if it were new). Each branch is served by its own partial
 * index (sync_table_pick_next, sync_table_retry_due); the EXPLAIN test runs this text.
 */
export const claimHeadSql = (passed: string, due: string, into = '') => `WITH open AS (
      SELECT * FROM sync_table
       WHERE parent_job_id IS NULL AND job_state IN ${OPEN_STATES_SQL} AND job_id <> ALL(${passed})
       ORDER BY ${PICK_ORDER} LIMIT 1
       FOR UPDATE SKIP LOCKED
    ), due AS (
      SELECT * FROM sync_table
       WHERE parent_job_id IS NULL AND job_state = 'error_retry' AND job_retry_at <= ${due} AND job_id <> ALL(${passed})
       ORDER BY job_retry_at LIMIT 1
       FOR UPDATE SKIP LOCKED
    )
    SELECT *${into} FROM (SELECT * FROM open UNION ALL SELECT * FROM due) AS heads ORDER BY ${PICK_ORDER} LIMIT 1`;

/** the record lock of a job's source record, as SQL on a sync_table row named `row` (the key is recordKeyText's, as lock() takes it) */
const sourceLockKeySql = (row: string) =>
  `${RECORD_LOCK_CLASS_SQL}, hashtext(${row}.job_source_system || ':' || ${row}.job_source_model || ':' || ${row}.job_source_record_id)`;

/**
 * The claim as a function on the server (created by migration 8), so that a claim is one round
 * trip however many jobs it looks at:
 * 1. It lets go of every record the session holds (`pg_advisory_unlock_all`): the slot's previous
 *    job has ended, and its records go in the same round trip that claims the next one.
 * 2. It reads the head of the pick (claimHeadSql), passing over `passed` (the jobs this process's
 *    other slots run) and the jobs it already looked at.
 * 3. It takes the head if it can lock the head's source record at once (`pg_try_advisory_lock`);
 *    else it looks at the next head, up to `max_rounds` heads. A job whose record another slot
 *    holds waits in the queue, so the jobs of one record run one after the other, in order.
 * It returns the claimed job, or no row when no open job may run now. The rows it looked at stay
 * locked (FOR UPDATE) until it returns: one statement, one transaction. The job is not started
 * here: its start (SPEC §4.2 step 1) writes job_start at a moment after the claim took the record,
 * so that no job's recorded run can overlap that of a job of the same record that ended before.
 */
export const claimFunctionSql = `CREATE OR REPLACE FUNCTION sosync_claim_job(passed bigint[], due_at timestamp without time zone, max_rounds integer)
  RETURNS SETOF sync_table LANGUAGE plpgsql AS $claim$
DECLARE
  looked_at bigint[] := passed;
  candidate sync_table;
BEGIN
  PERFORM pg_advisory_unlock_all();
  FOR round IN 1..max_rounds LOOP
    ${claimHeadSql('looked_at', 'due_at', ' INTO candidate')};
    IF NOT FOUND THEN
      RETURN;
    END IF;
    IF pg_try_advisory_lock(${sourceLockKeySql('candidate')}) THEN
      RETURN NEXT candidate;
      RETURN;
    END IF;
    looked_at := looked_at || candidate.job_id;
  END LOOP;
END
$claim$`;

export const claimStatements = {
  /** lets the previous job's records go and claims the next job (claimFunctionSql), in one round trip */
  claim: `SELECT * FROM sosync_claim_job($1::bigint[], $2::timestamp without time zone, ${MAX_CLAIM_ROUNDS})`,
  /** the head a claim looks at ($1 passed over, $2 = now), for the EXPLAIN test */
  head: claimHeadSql('$1::bigint[]', '$2::timestamp without time zone'),
};

interface PendingRelease {
  timer: NodeJS.Immediate;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class ClaimSession {
  private client: pg.Client | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private closed = false;
  /** calls of this session under way (the heartbeat only pings an idle session) */
  private inFlight = 0;
  /** the release releaseSoon put off until the current turn of the event loop is over */
  private pendingRelease: PendingRelease | null = null;
  /** false once the prepared claim failed for a change of the table's columns */
  private prepareClaim = true;
  /** the session's deadlock check in ms as PostgreSQL reports it: DEADLOCK_CHECK_MS when the role may set it; null before a session */
  deadlockCheckMs: number | null = null;

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
    try {
      this.deadlockCheckMs = await shortenDeadlockCheck(client);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
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
   * until it commits. A claim sent while another slot's claim was still on its way cannot name
   * that job yet; it may lock the row, for no longer than its own statement.
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
    // the previous job's records, if still held, go with this claim
    const pending = this.cancelRelease();
    let client: pg.Client;
    try {
      client = await this.session();
    } catch (err) {
      // no session: whatever it held went with it
      pending?.resolve();
      throw err;
    }
    try {
      const { rows: [job] } = await this.claimQuery(client, [runningHere, toUtcTimestamp(at)]);
      pending?.resolve();
      return job ?? null;
    } catch (err) {
      // a lock the failed statement took is not undone with it (advisory locks are not
      // transactional); between jobs the slot holds no record, so it lets every one go
      await client.query('SELECT pg_advisory_unlock_all()').then(() => pending?.resolve(), (e: Error) => pending?.reject(e));
      throw err;
    }
  }

  /**
   * The claim statement, prepared on the session; when the table's columns changed under it (0A000
   * "cached plan must not change result type": a newer version's migration while this process
   * runs) it runs unprepared from then on.
   */
  private async claimQuery(client: pg.Client, values: unknown[]): Promise<pg.QueryResult<JobRow>> {
    if (!this.prepareClaim) return client.query({ text: claimStatements.claim, values });
    try {
      return await client.query({ name: 'sosync_claim', text: claimStatements.claim, values });
    } catch (err) {
      if ((err as { code?: string }).code !== '0A000') throw err;
      this.prepareClaim = false;
      return client.query({ text: claimStatements.claim, values });
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

  /** Lets every record of the ended job go, now. */
  async releaseAll(): Promise<void> {
    const pending = this.cancelRelease();
    try {
      await this.unlockAll();
      pending?.resolve();
    } catch (err) {
      pending?.reject(err as Error);
      throw err;
    }
  }

  private async unlockAll(): Promise<void> {
    const client = this.client;
    if (!client) return;
    await this.busy(() => client.query(`SELECT pg_advisory_unlock_all()`));
  }

  /**
   * Lets every record of the ended job go once the current turn of the event loop is over, unless
   * the slot claims its next job before: the claim lets them go in its own round trip (step 1 of
   * claimFunctionSql). A slot that goes on at once saves a round trip per job; one that does not
   * (it throttles, stops, pauses for an outage) holds nothing while it waits. Resolves once the
   * records are let go, whichever way; rejects when that failed (the session is renewed then).
   */
  releaseSoon(): Promise<void> {
    this.cancelRelease()?.resolve();
    return new Promise<void>((resolve, reject) => {
      const pending: PendingRelease = {
        resolve, reject,
        timer: setImmediate(() => {
          if (this.pendingRelease !== pending) return;
          this.pendingRelease = null;
          this.releaseAll().then(resolve, reject);
        }),
      };
      this.pendingRelease = pending;
    });
  }

  /** the release releaseSoon put off, taken over by the caller (a claim) */
  private cancelRelease(): PendingRelease | null {
    const pending = this.pendingRelease;
    if (!pending) return null;
    clearImmediate(pending.timer);
    this.pendingRelease = null;
    return pending;
  }

  async close(): Promise<void> {
    this.closed = true;
    // the session ends below, and every record with it
    this.cancelRelease()?.resolve();
    const client = this.client;
    this.client = null;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    if (!client) return;
    await client.query(`SELECT pg_advisory_unlock_all()`).catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}

/**
 * Sets DEADLOCK_CHECK_MS for this session when the role may, and returns the session's deadlock
 * check in ms as PostgreSQL reports it (the server's value when the role may not).
 */
async function shortenDeadlockCheck(client: pg.Client): Promise<number | null> {
  try {
    await client.query(`SET deadlock_timeout = '${DEADLOCK_CHECK_MS}ms'`);
  } catch (err) {
    if ((err as { code?: string }).code !== '42501') throw err;
  }
  const { rows: [row] } = await client.query<{ deadlock_timeout: string }>('SHOW deadlock_timeout');
  return durationMs(row.deadlock_timeout);
}

/** PostgreSQL's display of a duration ("100ms", "1s", "2min") in ms; null for any other form */
function durationMs(text: string): number | null {
  const m = /^(\d+)\s*(ms|s|min|h)$/.exec(text.trim());
  if (!m) return null;
  const unit = { ms: 1, s: 1000, min: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'min' | 'h'];
  return Number(m[1]) * unit;
}
