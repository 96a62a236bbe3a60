/**
 * One small query interface over the two PostgreSQL engines sosync can use for sync_table:
 * a server reached through `pg`, or the embedded PGlite. The same SQL runs on both.
 * Timestamps are `timestamp without time zone` holding UTC: both sides read them as UTC and
 * Dates are written as UTC strings, whatever the process or session time zone is.
 */
import pg from 'pg';
import fs from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { connectionLock } from './pgliteLock.ts';

export interface QueryResult<Row> {
  rows: Row[];
  rowCount: number;
}

export interface SqlDatabase {
  readonly kind: 'postgres' | 'pglite';
  query<Row = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<Row>>;
  /**
   * The same as query for a fixed statement run often (the pick): on a PostgreSQL server it is
   * prepared once per connection under `name`, so it is not planned again on every call.
   */
  queryPrepared<Row = Record<string, unknown>>(name: string, sql: string, params?: unknown[]): Promise<QueryResult<Row>>;
  /** runs fn in one transaction on one connection */
  transaction<T>(fn: (tx: Pick<SqlDatabase, 'query'>) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

const TIMESTAMP_OID = 1114;

/** A Date as PostgreSQL `timestamp` text in UTC. */
export function toUtcTimestamp(date: Date): string {
  return date.toISOString().replace('Z', '');
}

function parseUtcTimestamp(text: string): Date {
  return new Date(`${text.replace(' ', 'T')}Z`);
}

/** `pg` type parsing that reads `timestamp` columns as UTC (every session of sosync's). */
export const utcTimestampTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === TIMESTAMP_OID ? parseUtcTimestamp : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

function prepareParams(params: unknown[] | undefined): unknown[] | undefined {
  return params?.map((p) => (p instanceof Date ? toUtcTimestamp(p) : p));
}

export interface PostgresOptions {
  host: string;
  port: number;
  database: string;
  user: string;
  password?: string;
  max?: number;
  /** give up connecting after this long (default 10 000) */
  connectTimeoutMs?: number;
  /** the server cancels a statement running longer (default 30 000) */
  statementTimeoutMs?: number;
}

export class DatabaseUnavailableError extends Error {
  constructor(readonly where: string, cause: unknown) {
    super(`sync table database ${where} is unavailable: ${(cause as Error).message}`);
    this.name = 'DatabaseUnavailableError';
  }
}

export async function openPostgres(options: PostgresOptions): Promise<SqlDatabase> {
  const pool = new pg.Pool({
    host: options.host,
    port: options.port,
    database: options.database,
    user: options.user,
    password: options.password,
    max: options.max ?? 5,
    options: '-c TimeZone=UTC',
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    statement_timeout: options.statementTimeoutMs ?? 30_000,
    // a server that went silent (no RST, e.g. a cut network) is noticed by the client too
    query_timeout: (options.statementTimeoutMs ?? 30_000) + 5_000,
    keepAlive: true,
    types: utcTimestampTypes,
  });
  // an idle client losing its connection must not crash the process; the next query reports it
  pool.on('error', () => undefined);
  try {
    const client = await pool.connect();
    client.release();
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new DatabaseUnavailableError(`${options.host}:${options.port}/${options.database}`, err);
  }
  const query = async <Row,>(sql: string, params?: unknown[]): Promise<QueryResult<Row>> => {
    const result = await pool.query(sql, prepareParams(params));
    return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
  };
  /** names whose prepared statement no longer fits the table: run unprepared from then on */
  const unprepared = new Set<string>();
  const queryPrepared = async <Row,>(name: string, sql: string, params?: unknown[]): Promise<QueryResult<Row>> => {
    if (unprepared.has(name)) return query<Row>(sql, params);
    try {
      const result = await pool.query({ name, text: sql, values: prepareParams(params) });
      return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
    } catch (err) {
      // 0A000 "cached plan must not change result type": the table changed under a prepared
      // `SELECT *` (a newer version's migration while this process runs)
      if ((err as { code?: string }).code !== '0A000') throw err;
      unprepared.add(name);
      return query<Row>(sql, params);
    }
  };
  return {
    kind: 'postgres',
    query,
    queryPrepared,
    async transaction(fn) {
      const client = await pool.connect();
      let failure: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await fn({
          async query<Row>(sql: string, params?: unknown[]) {
            const r = await client.query(sql, prepareParams(params));
            return { rows: r.rows as Row[], rowCount: r.rowCount ?? 0 };
          },
        });
        await client.query('COMMIT');
        return result;
      } catch (err) {
        // a connection that failed mid-transaction may be dead: it is discarded, not pooled again
        await client.query('ROLLBACK').catch((e: Error) => { failure = e; });
        throw err;
      } finally {
        client.release(failure);
      }
    },
    async close() {
      await pool.end();
    },
  };
}

/** PGlite in memory (dataDir undefined) or kept in a directory. */
export async function openPglite(dataDir?: string): Promise<SqlDatabase> {
  if (dataDir) fs.mkdirSync(dataDir, { recursive: true });
  return pgliteDatabase(await PGlite.create(dataDir, { parsers: pgliteParsers }), { owned: true });
}

const pgliteParsers = { [TIMESTAMP_OID]: parseUtcTimestamp };

/**
 * The sync table's view of a PGlite instance. Every statement and every transaction holds the
 * instance's lock (pgliteLock.ts), so an instance shared with the sandbox's FS stand-in never runs
 * one side's statement inside the other side's transaction. `owned`: opened by openPglite with
 * the sync table's parsers, and closed by close(); a shared one is closed by whoever opened it.
 */
export async function pgliteDatabase(db: PGlite, { owned }: { owned: boolean }): Promise<SqlDatabase> {
  const lock = connectionLock(db);
  // the sync table's timestamps are UTC; the FS stand-in keeps its own in UTC too
  await lock.run(() => db.exec(`SET TimeZone = 'UTC'`));
  // parsers given per query cost a copy of the instance's ~300 on every query: only a shared
  // instance, whose defaults are not ours to change, gets them that way
  const options = owned ? undefined : { parsers: pgliteParsers };
  const run = async <Row,>(target: { query: PGlite['query'] }, sql: string, params?: unknown[]) => {
    const r = await target.query<Row>(sql, prepareParams(params), options);
    return { rows: r.rows, rowCount: r.affectedRows ?? r.rows.length };
  };
  return {
    kind: 'pglite',
    query: (sql, params) => lock.run(() => run(db, sql, params)),
    queryPrepared: (_name, sql, params) => lock.run(() => run(db, sql, params)),
    transaction: (fn) => lock.run(() => db.transaction((tx) => fn({ query: (sql, params) => run(tx, sql, params) }))),
    async close() {
      if (owned) await db.close();
    },
  };
}
