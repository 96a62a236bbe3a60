/**
 * The PostgreSQL the stand-in stores FS in: a pg.Pool (one pooled client per transaction) or an
 * embedded PGlite (one connection, so transactions are serialized with the instance's lock, which
 * sosync's sync table takes too when the sandbox shares the instance with it).
 */
import type pg from 'pg';
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
        return {
          async query(sql, params = [], options = {}) {
            if (options.savepoint) await client.query(`SAVEPOINT ${options.savepoint}`);
            const r = await client.query({ text: sql, values: params, rowMode: 'array', types: rawTypes });
            if (options.savepoint) await client.query(`RELEASE SAVEPOINT ${options.savepoint}`);
            return {
              fields: r.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID, dataTypeModifier: f.dataTypeModifier })),
              rows: r.rows as unknown[][],
              rowCount: r.rowCount,
              command: r.command,
            };
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
