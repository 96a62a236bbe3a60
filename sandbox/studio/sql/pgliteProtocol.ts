/**
 * The FS stand-in's statements on PGlite, spoken in PostgreSQL's wire protocol directly.
 *
 * `db.query` sends each statement in six calls into PostgreSQL (parse, describe, bind, describe,
 * execute, sync), plans it anew every time and parses every value, copying the instance's few
 * hundred type parsers for each query that brings parsers of its own, as the stand-in must, since
 * it wants PostgreSQL's text form. Here one statement is one call: its messages go in one batch,
 * a statement seen before runs as a prepared statement of its own (parsed and planned once), and
 * the rows stay text. The parameters go untyped, as over pg; PostgreSQL infers their types.
 */
import { protocol, type messages, type PGlite } from '@electric-sql/pglite';
import type { PgResult } from './backend.ts';

const { serialize } = protocol;
const describePortal = serialize.describe({ type: 'P' });
const executePortal = serialize.execute({});
const sync = serialize.sync();
/** commands whose tag ends in the rows they changed; PGlite's `affectedRows` counts only these */
const changingCommands = new Set(['INSERT', 'UPDATE', 'DELETE', 'COPY', 'MERGE']);
/**
 * Prepared statements kept per instance. Some statements carry literal values (`NOT IN (3, 2)`),
 * so the number of texts grows with the data; past this many, new texts run unprepared.
 */
const MAX_PREPARED = 2000;
/** longer texts (the seed's many-row INSERTs, each run once) run unprepared: no memory kept for them */
const MAX_PREPARED_TEXT = 4096;
/** a prepared statement PostgreSQL no longer has, or one whose result type a schema change altered */
const STALE_PREPARED = new Set(['26000', '0A000']);

interface Prepared { names: Map<string, string>; next: number }
const preparedOf = new WeakMap<PGlite, Prepared>();

function prepared(db: PGlite): Prepared {
  let p = preparedOf.get(db);
  if (!p) {
    p = { names: new Map(), next: 1 };
    preparedOf.set(db, p);
  }
  return p;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

async function send(db: PGlite, message: Uint8Array): Promise<messages.BackendMessage[]> {
  await db._checkReady();
  return db._runExclusiveQuery(() => db.execProtocolStream(message, {}));
}

/** Statements without parameters (simple query protocol), as `db.exec` runs them. */
export async function pgliteExec(db: PGlite, sql: string): Promise<void> {
  await send(db, serialize.query(sql));
}

/**
 * One statement; with `savepoint`, between `SAVEPOINT` and `RELEASE SAVEPOINT` in the same call.
 * A failed statement leaves the savepoint (and the transaction aborted) for the caller to roll back.
 */
export async function pgliteQuery(db: PGlite, sql: string, params: Array<string | null>, savepoint?: string): Promise<PgResult> {
  const cache = prepared(db);
  const known = cache.names.get(sql);
  try {
    return await run(db, sql, params, savepoint, known);
  } catch (err) {
    if (known === undefined || !STALE_PREPARED.has((err as { code?: string }).code ?? '')) throw err;
    // the schema changed under a kept statement: forget it, undo the failed try, run it afresh
    cache.names.delete(sql);
    if (savepoint) await pgliteExec(db, `ROLLBACK TO SAVEPOINT ${savepoint}; RELEASE SAVEPOINT ${savepoint}`);
    // (one PostgreSQL no longer has needs no DEALLOCATE, and a failing one would abort a transaction)
    if ((err as { code?: string }).code === '0A000') await pgliteExec(db, `DEALLOCATE ${known}`);
    return run(db, sql, params, savepoint, undefined);
  }
}

async function run(db: PGlite, sql: string, params: Array<string | null>, savepoint: string | undefined, known: string | undefined): Promise<PgResult> {
  const cache = prepared(db);
  let name = known;
  const parts: Uint8Array[] = [];
  if (savepoint) parts.push(serialize.query(`SAVEPOINT ${savepoint}`));
  if (name === undefined && cache.names.size < MAX_PREPARED && sql.length <= MAX_PREPARED_TEXT) {
    name = `studio_${cache.next++}`;
    parts.push(serialize.parse({ name, text: sql }));
  } else if (name === undefined) {
    parts.push(serialize.parse({ text: sql }));
  }
  parts.push(serialize.bind({ statement: name ?? '', values: params }), describePortal, executePortal, sync);
  if (savepoint) parts.push(serialize.query(`RELEASE SAVEPOINT ${savepoint}`));
  const answer = await send(db, concat(parts));
  // only a statement PostgreSQL accepted is kept (a failed batch throws before this)
  if (name !== undefined && known === undefined) cache.names.set(sql, name);
  return resultOf(answer);
}

function resultOf(answer: messages.BackendMessage[]): PgResult {
  const result: PgResult = { fields: [], rows: [], rowCount: 0, command: '' };
  for (const m of answer) {
    if (m.name === 'rowDescription') {
      result.fields = (m as messages.RowDescriptionMessage).fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID }));
    } else if (m.name === 'dataRow') {
      result.rows.push((m as messages.DataRowMessage).fields);
    } else if (m.name === 'commandComplete') {
      const tag = (m as messages.CommandCompleteMessage).text.split(' ');
      result.command = tag[0];
      if (changingCommands.has(tag[0])) result.rowCount = Number(tag[tag.length - 1]);
    }
  }
  return result;
}
