/**
 * One active worker across every sosync process sharing a PostgreSQL sync table (SPEC: one job
 * worker). The active process holds a session-level advisory lock on a connection of its own;
 * PostgreSQL releases it when that session ends — the process exits or is killed (the socket
 * closes), or the session is cut by the server's TCP keepalives (network gone, machine gone) or
 * by idle_session_timeout (process frozen). Standbys try the lock again about once a second.
 *
 * The active process writes who it is to sosync_active_worker; a reader only believes the row
 * while the backend named in it still holds the lock (pg_locks), so a stale row never shows.
 * Standbys wake the active process with NOTIFY on WAKE_CHANNEL; it LISTENs on its lock session.
 */
import { systemNow } from '../clock/now.ts';
import pg from 'pg';
import { toUtcTimestamp, utcTimestampTypes, type PostgresOptions, type SqlDatabase } from './database.ts';

/** the advisory lock key of the job worker (5050 serialises migrations) */
export const WORKER_LOCK_KEY = 5051;
export const WAKE_CHANNEL = 'sosync_wake';

/**
 * Session settings of the lock connection. The server probes an unanswering client after 2 s,
 * every 1 s, 3 times; a session idle for 6 s is ended (the active pings every second).
 * With a 3 s query timeout on the heartbeat, a cut-off active process notices before the server
 * lets the lock go (about 5 s), so it has stopped its worker by the time a standby takes over.
 */
export const LOCK_SESSION_SETTINGS = {
  tcp_keepalives_idle: 2,
  tcp_keepalives_interval: 1,
  tcp_keepalives_count: 3,
  idle_session_timeout: '6s',
} as const;
export const HEARTBEAT_TIMEOUT_MS = 3000;

/**
 * A session of its own for session-level advisory locks (the worker lock, a worker slot's record
 * locks): TCP keepalives on both ends and LOCK_SESSION_SETTINGS, so a cut-off or frozen process
 * loses its locks; timestamps read as UTC. Not connected yet.
 */
export function lockSessionClient(options: PostgresOptions, applicationName: string, extra: Partial<pg.ClientConfig> = {}): pg.Client {
  const settings = Object.entries(LOCK_SESSION_SETTINGS).map(([k, v]) => `-c ${k}=${v}`).join(' ');
  return new pg.Client({
    host: options.host,
    port: options.port,
    database: options.database,
    user: options.user,
    password: options.password,
    keepAlive: true,
    keepAliveInitialDelayMillis: 1000,
    application_name: `sosync ${applicationName}`.slice(0, 63),
    options: `-c TimeZone=UTC ${settings}`,
    types: utcTimestampTypes,
    ...extra,
  });
}

export interface ProcessIdentity {
  host: string;
  pid: number;
}

export interface ActiveProcess extends ProcessIdentity {
  since: Date;
}

export const activeWorkerTableSql = `CREATE TABLE IF NOT EXISTS sosync_active_worker (
  singleton boolean primary key default true check (singleton),
  host text not null,
  pid integer not null,
  backend_pid integer not null,
  since timestamp without time zone not null)`;

/** The process holding the worker lock now, or null when none does. */
export async function readActiveProcess(db: Pick<SqlDatabase, 'query'>): Promise<ActiveProcess | null> {
  const result = await db.query<ActiveProcess>(
    `SELECT w.host, w.pid, w.since
       FROM sosync_active_worker w
       JOIN pg_locks l ON l.pid = w.backend_pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = $1 AND l.objsubid = 1
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [WORKER_LOCK_KEY],
  );
  return result.rows[0] ?? null;
}

/** Wakes the active process's job worker (from a standby that stored or was asked to run jobs). */
export async function wakeActiveProcess(db: Pick<SqlDatabase, 'query'>): Promise<void> {
  await db.query(`SELECT pg_notify($1, '')`, [WAKE_CHANNEL]);
}

export interface WorkerLockEvents {
  /** the lock session ended or stopped answering while this process held the lock */
  lost(reason: string): void;
  /** another process sent a wake-up */
  wake(): void;
}

/**
 * The lock session of one process. `tryAcquire` connects when needed and tries the lock;
 * `heartbeat` proves the session (and so the lock) is still there.
 */
export class WorkerLock {
  private client: pg.Client | null = null;
  private held = false;

  constructor(
    private readonly options: PostgresOptions,
    private readonly me: ProcessIdentity,
    private readonly events: WorkerLockEvents,
    private readonly now: () => Date = systemNow,
  ) {}

  get isHeld(): boolean {
    return this.held;
  }

  private async connect(): Promise<pg.Client> {
    const client = lockSessionClient(this.options, `${this.me.host} ${this.me.pid}`, { query_timeout: HEARTBEAT_TIMEOUT_MS });
    client.on('error', (err) => this.dropSession(client, err.message));
    client.on('end', () => this.dropSession(client, 'the lock session ended'));
    client.on('notification', (n) => {
      if (n.channel === WAKE_CHANNEL && this.held) this.events.wake();
    });
    await client.connect();
    this.client = client;
    return client;
  }

  /** true when this process holds the lock now (it may have held it already) */
  async tryAcquire(): Promise<boolean> {
    if (this.held) return true;
    const client = this.client ?? await this.connect();
    const got = await client.query<{ locked: boolean }>(`SELECT pg_try_advisory_lock($1) AS locked`, [WORKER_LOCK_KEY]);
    if (!got.rows[0].locked) return false;
    await client.query(
      `INSERT INTO sosync_active_worker (singleton, host, pid, backend_pid, since)
       VALUES (true, $1, $2, pg_backend_pid(), $3)
       ON CONFLICT (singleton) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, backend_pid = EXCLUDED.backend_pid, since = EXCLUDED.since`,
      [this.me.host, this.me.pid, toUtcTimestamp(this.now())],
    );
    await client.query(`LISTEN ${WAKE_CHANNEL}`);
    this.held = true;
    return true;
  }

  /** Proves the lock session answers; on failure the session is dropped and `lost` is told. */
  async heartbeat(): Promise<boolean> {
    const client = this.client;
    if (!client || !this.held) return false;
    try {
      await client.query('SELECT 1');
      return true;
    } catch (err) {
      this.dropSession(client, `heartbeat failed: ${(err as Error).message}`);
      return false;
    }
  }

  /** A session that failed is closed; if it held the lock, the lock is gone with it. */
  private dropSession(client: pg.Client, reason: string): void {
    if (this.client !== client) return;
    this.client = null;
    client.end().catch(() => undefined);
    if (this.held) {
      this.held = false;
      this.events.lost(reason);
    }
  }

  /** Lets the lock go (clean shutdown) and closes the session. */
  async release(): Promise<void> {
    const client = this.client;
    this.client = null;
    this.held = false;
    if (!client) return;
    await client.query(`SELECT pg_advisory_unlock_all()`).catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}
