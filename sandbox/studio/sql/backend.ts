/**
 * The PostgreSQL the stand-in stores FS in: a pg.Pool (one pooled client per transaction) or an
 * embedded PGlite (one connection, so transactions are serialized with the instance's lock, which
 * sosync's sync table takes too when the sandbox shares the instance with it).
 */
import type pg from 'pg';
import { protocol, type messages, type PGlite } from '@electric-sql/pglite';
import type { PgField } from './values.ts';
import { connectionLock } from '../../../src/adapters/syncTable/pgliteLock.ts';

export interface PgResult {
  fields: PgField[];
  /** values in PostgreSQL's text form (unparsed) */
  rows: unknown[][];
  rowCount: number | null;
}

export interface BackendConnection {
  query(sql: string, params?: Array<string | null>): Promise<PgResult>;
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
          async query(sql, params = []) {
            const r = await client.query({ text: sql, values: params, rowMode: 'array', types: rawTypes });
            return {
              fields: r.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID, dataTypeModifier: f.dataTypeModifier })),
              rows: r.rows as unknown[][],
              rowCount: r.rowCount,
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
        query: (sql, params = []) => pgliteQuery(db, sql, params),
        async exec(sql) { await db.exec(sql); },
        release() { unlock(); },
      };
    },
  };
}

const { serialize } = protocol;
const describePortal = serialize.describe({ type: 'P' });
const executePortal = serialize.execute({});
const sync = serialize.sync();
/** commands whose tag ends in the rows they changed; PGlite's `affectedRows` counts only these */
const changingCommands = new Set(['INSERT', 'UPDATE', 'DELETE', 'COPY', 'MERGE']);

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/**
 * One statement with text parameters, its rows in PostgreSQL's text form: what
 * `db.query(sql, params, { rowMode: 'array', parsers })` returned, in one call into PostgreSQL
 * instead of six, and without PGlite's result parsing, which copies the instance's few hundred
 * type parsers for every query that brings parsers of its own (the largest single cost of the
 * sandbox's CPU time). The parameters go untyped, as over pg; PostgreSQL infers their types.
 */
async function pgliteQuery(db: PGlite, sql: string, params: Array<string | null>): Promise<PgResult> {
  await db._checkReady();
  const message = concat([serialize.parse({ text: sql }), serialize.bind({ values: params }), describePortal, executePortal, sync]);
  const messages = await db._runExclusiveQuery(() => db.execProtocolStream(message, {}));
  const result: PgResult = { fields: [], rows: [], rowCount: 0 };
  for (const m of messages) {
    if (m.name === 'rowDescription') {
      result.fields = (m as messages.RowDescriptionMessage).fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID }));
    } else if (m.name === 'dataRow') {
      result.rows.push((m as messages.DataRowMessage).fields);
    } else if (m.name === 'commandComplete') {
      const tag = (m as messages.CommandCompleteMessage).text.split(' ');
      if (changingCommands.has(tag[0])) result.rowCount = Number(tag[tag.length - 1]);
    }
  }
  return result;
}
