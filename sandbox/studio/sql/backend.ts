/**
 * The PostgreSQL the stand-in stores FS in: a pg.Pool (one pooled client per transaction) or an
 * embedded PGlite (one connection, so transactions are serialized with the instance's lock, which
 * sosync's sync table takes too when the sandbox shares the instance with it).
 */
import pg from 'pg';
import type { PGlite } from '@electric-sql/pglite';
import type { PgField } from './values.ts';
import { connectionLock } from '../../../src/adapters/syncTable/pgliteLock.ts';
import { pgliteExec, pgliteQuery } from './pgliteProtocol.ts';

export interface PgResult {
  fields: PgField[];
  /** values in PostgreSQL's text form (unparsed) */
  rows: unknown[][];
  rowCount: number | null;
  /** the command tag's verb (SELECT, INSERT, …) */
  command: string;
}

export interface QueryOptions {
  /**
   * Run the statement between `SAVEPOINT name` and `RELEASE SAVEPOINT name`. When it fails the
   * savepoint is left for the caller to roll back to.
   */
  savepoint?: string;
}

export interface BackendConnection {
  query(sql: string, params?: Array<string | null>, options?: QueryOptions): Promise<PgResult>;
  /**
   * Several statements in one round trip, their results in order (PostgreSQL over the network
   * only: PGlite answers in process). When one fails, the ones after it do not run, and outside a
   * transaction none of them took effect.
   */
  queryBatch?(statements: ReadonlyArray<{ sql: string; params: ReadonlyArray<string | null> }>): Promise<PgResult[]>;
  /** one or more statements without parameters */
  exec(sql: string): Promise<void>;
  /** `broken`: the connection failed and must not be reused */
  release(broken?: boolean): void;
}

export interface Backend {
  readonly kind: 'pg' | 'pglite';
  acquire(): Promise<BackendConnection>;
}

export type StudioDatabase = pg.Pool | PGlite;

const rawTypes = { getTypeParser: () => (value: string) => value };

/**
 * `sql` with its parameters `$1`, `$2`, … written in as literals. Quoted strings and identifiers
 * and comments are passed over, so a `$1` inside one stays as it is.
 */
export function withLiterals(sql: string, params: ReadonlyArray<string | null>): string {
  let out = '';
  let i = 0;
  const copyUntil = (end: string, from: number) => {
    const at = sql.indexOf(end, from);
    const stop = at < 0 ? sql.length : at + end.length;
    out += sql.slice(i, stop);
    i = stop;
  };
  while (i < sql.length) {
    const c = sql[i];
    if (c === "'" || c === '"') {
      // a doubled quote inside is two quoted runs back to back: the loop copies them in turn
      copyUntil(c, i + 1);
    } else if (c === '-' && sql[i + 1] === '-') {
      copyUntil('\n', i + 2);
    } else if (c === '/' && sql[i + 1] === '*') {
      copyUntil('*/', i + 2);
    } else if (c === '$' && /[0-9]/.test(sql[i + 1] ?? '')) {
      const [digits] = /^[0-9]+/.exec(sql.slice(i + 1))!;
      const n = Number(digits);
      if (n < 1 || n > params.length) throw new Error(`parameter $${n} has no value (${params.length} given)`);
      // untyped, as a bound text parameter is
      const value = params[n - 1];
      out += value === null ? 'NULL' : pg.escapeLiteral(value);
      i += 1 + digits.length;
    } else {
      out += c;
      i += 1;
    }
  }
  return out;
}

const resultOf = (r: pg.QueryResult): PgResult => ({
  fields: r.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID, dataTypeModifier: f.dataTypeModifier })),
  rows: r.rows as unknown[][],
  rowCount: r.rowCount,
  command: r.command,
});

function isPool(db: StudioDatabase): db is pg.Pool {
  return typeof (db as pg.Pool).totalCount === 'number' && typeof (db as pg.Pool).connect === 'function';
}

export function createBackend(db: StudioDatabase): Backend {
  if (isPool(db)) {
    // an idle pooled connection the server drops (restart, DROP DATABASE … FORCE) must not take the
    // process down; the next query reports the problem to its session
    if (db.listenerCount('error') === 0) db.on('error', () => undefined);
    return {
      kind: 'pg',
      async acquire() {
        const client = await db.connect();
        // statements with their parameters written in, as one simple query: pg sends a query only
        // once the last one is answered, so this is how several go in one round trip
        const atOnce = async (statements: string[]): Promise<pg.QueryResult[]> => {
          const r = await client.query({ text: statements.join(';\n'), rowMode: 'array', types: rawTypes });
          // pg answers one statement with a result, several with an array of them
          return Array.isArray(r) ? r as unknown as pg.QueryResult[] : [r];
        };
        return {
          async query(sql, params = [], options = {}) {
            // with a savepoint: one round trip, not three
            const r = options.savepoint
              ? (await atOnce([`SAVEPOINT ${options.savepoint}`, withLiterals(sql, params), `RELEASE SAVEPOINT ${options.savepoint}`]))[1]
              : await client.query({ text: sql, values: params, rowMode: 'array', types: rawTypes });
            return resultOf(r);
          },
          async queryBatch(statements) {
            return (await atOnce(statements.map((st) => withLiterals(st.sql, st.params)))).map(resultOf);
          },
          async exec(sql) { await client.query(sql); },
          release(broken) { client.release(broken ? true : undefined); },
        };
      },
    };
  }
  const mutex = connectionLock(db);
  return {
    kind: 'pglite',
    async acquire() {
      const unlock = await mutex.lock();
      return {
        query: (sql, params = [], options = {}) => pgliteQuery(db, sql, params, options.savepoint),
        exec: (sql) => pgliteExec(db, sql),
        release() { unlock(); },
      };
    },
  };
}
