/**
 * The FS stand-in's statements on PGlite (sandbox/studio/sql/pgliteProtocol.ts): one call per
 * statement, a statement seen before runs prepared, rows stay PostgreSQL's text, and a statement
 * in a transaction carries its savepoint. A kept statement must survive a schema change, in and
 * out of a transaction, as an unprepared one would. And the announcement outbox is read after a
 * write, not after every read.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { PGlite } from '@electric-sql/pglite';
import { createBackend, type Backend } from '../../sandbox/studio/sql/backend.ts';
import { createStudioEngine, type StudioEngine } from '../../sandbox/studio/sql/index.ts';
import { silentLogger } from '../../src/log.ts';

describe('the FS stand-in on PGlite speaks the wire protocol itself', () => {
  let db: PGlite;
  let backend: Backend;

  before(async () => {
    db = await PGlite.create();
    backend = createBackend(db);
    await db.exec('CREATE TABLE thing (id integer PRIMARY KEY, at timestamp(3), ok boolean, n numeric(9,2))');
  });
  after(async () => {
    await db.close();
  });

  /** the stand-in's prepared statements PostgreSQL holds (read with PGlite's own query) */
  const preparedCount = async () => Number((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name LIKE 'studio\\_%'`)).rows[0].n);

  async function withConnection<T>(fn: (conn: Awaited<ReturnType<Backend['acquire']>>) => Promise<T>): Promise<T> {
    const conn = await backend.acquire();
    try {
      return await fn(conn);
    } catch (err) {
      // a test that failed mid-transaction leaves none behind for the next one
      await conn.exec('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      conn.release();
    }
  }

  test('a statement run again is prepared once, and its rows and counts are as db.query gave them', async () => {
    const before = await preparedCount();
    const sql = 'INSERT INTO thing (id, at, ok, n) VALUES ($1, $2, $3, $4) RETURNING *';
    const results = await withConnection(async (conn) => [
      await conn.query(sql, ['1', '2024-02-29 23:59:58.123', '1', '12.5']),
      await conn.query(sql, ['2', null, '0', '-3']),
      await conn.query(sql, ['3', '1999-01-01', 'true', '0.01']),
    ]);
    assert.equal(await preparedCount(), before + 1, 'three runs of one text, one prepared statement');
    assert.deepEqual(results[0].fields.map((f) => f.name), ['id', 'at', 'ok', 'n']);
    assert.deepEqual(results.map((r) => r.rows), [
      [['1', '2024-02-29 23:59:58.123', 't', '12.50']],
      [['2', null, 'f', '-3.00']],
      [['3', '1999-01-01 00:00:00', 't', '0.01']],
    ]);
    assert.deepEqual(results.map((r) => r.rowCount), [1, 1, 1]);
    const selected = await withConnection((conn) => conn.query('SELECT id FROM thing WHERE id > $1 ORDER BY id', ['1']));
    assert.deepEqual(selected.rows, [['2'], ['3']]);
    assert.equal(selected.rowCount, 0, 'PGlite counted no rows for SELECT; the engine counts the rows sent');
  });

  test('a long statement (the seed\'s many-row INSERTs) runs unprepared', async () => {
    const before = await preparedCount();
    const rows = Array.from({ length: 300 }, (_, i) => `(${1000 + i}, NULL, true, ${i})`).join(', ');
    const r = await withConnection((conn) => conn.query(`INSERT INTO thing (id, at, ok, n) VALUES ${rows}`));
    assert.equal(r.rowCount, 300);
    assert.equal(await preparedCount(), before);
  });

  test('a kept statement whose table changed runs again afresh, outside a transaction', async () => {
    await db.exec('CREATE TABLE shape (a integer)');
    await db.exec('INSERT INTO shape VALUES (1)');
    const sql = 'SELECT * FROM shape';
    assert.deepEqual((await withConnection((conn) => conn.query(sql))).rows, [['1']]);
    await db.exec('ALTER TABLE shape ADD COLUMN b text DEFAULT \'x\'');
    const again = await withConnection((conn) => conn.query(sql));
    assert.deepEqual(again.fields.map((f) => f.name), ['a', 'b']);
    assert.deepEqual(again.rows, [['1', 'x']]);
  });

  test('a kept statement whose table changed runs again afresh inside a transaction, which keeps its earlier work', async () => {
    await db.exec('CREATE TABLE shape2 (a integer)');
    const select = 'SELECT * FROM shape2 ORDER BY a';
    await withConnection((conn) => conn.query(select));
    await db.exec('ALTER TABLE shape2 ADD COLUMN b integer');
    const rows = await withConnection(async (conn) => {
      await conn.exec('BEGIN');
      await conn.query('INSERT INTO shape2 (a) VALUES ($1)', ['7'], { savepoint: 'studio_statement' });
      const seen = await conn.query(select, [], { savepoint: 'studio_statement' });
      await conn.exec('COMMIT');
      return seen.rows;
    });
    assert.deepEqual(rows, [['7', null]]);
    assert.deepEqual((await db.query('SELECT a FROM shape2')).rows, [{ a: 7 }], 'the insert before the stale statement was committed');
  });

  test('a failed statement in a transaction leaves its savepoint to roll back to, and the transaction goes on', async () => {
    await db.exec('CREATE TABLE unique_thing (id integer PRIMARY KEY)');
    const insert = 'INSERT INTO unique_thing VALUES ($1)';
    const committed = await withConnection(async (conn) => {
      await conn.exec('BEGIN');
      await conn.query(insert, ['1'], { savepoint: 'studio_statement' });
      await assert.rejects(conn.query(insert, ['1'], { savepoint: 'studio_statement' }), { code: '23505' });
      await conn.exec('ROLLBACK TO SAVEPOINT studio_statement; RELEASE SAVEPOINT studio_statement');
      await conn.query(insert, ['2'], { savepoint: 'studio_statement' });
      await conn.exec('COMMIT');
      return (await conn.query('SELECT id FROM unique_thing ORDER BY id')).rows;
    });
    assert.deepEqual(committed, [['1'], ['2']]);
  });
});

describe('the FS stand-in looks at its announcement outbox after writes only', () => {
  let db: PGlite;
  let engine: StudioEngine;
  let server: http.Server;
  /** the outbox reads the announcer sent to PostgreSQL (counted on the library's instance) */
  let outboxReads = 0;

  before(async () => {
    db = await PGlite.create();
    const send = db.execProtocolStream.bind(db);
    const text = new TextDecoder();
    // the outbox read is prepared on its first run and named in every later one
    let outboxStatement: string | null = null;
    db.execProtocolStream = (message, options) => {
      const sent = text.decode(message);
      const parsed = /P[^]{4}(studio_\d+)\0[^\0]*SELECT id, job_date, model/.exec(sent);
      if (parsed) outboxStatement = parsed[1];
      if (parsed || (outboxStatement && sent.includes(`${outboxStatement}\0`))) outboxReads++;
      return send(message, options);
    };
    server = http.createServer((req, res) => { req.resume(); req.on('end', () => res.end('{}')); });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    engine = await createStudioEngine({ db, databaseName: 'mdb_x', users: [{ user: 'sosync', password: 'pw' }], logger: silentLogger() });
    engine.setAnnounceUrl(`http://127.0.0.1:${(server.address() as { port: number }).port}/job/create`);
    await engine.flushAnnouncements();
  });
  after(async () => {
    await engine.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await db.close();
  });

  /**
   * Runs one request and returns how often the outbox was read meanwhile. An announcer the request
   * kicked has queued for the instance's lock before execute returns, so the count taken behind it
   * (pendingAnnouncements queues after it) includes its read.
   */
  async function outboxReadsDuring(sql: string): Promise<number> {
    const session = await engine.openSession('mdb_x', 'sosync');
    try {
      const before = outboxReads;
      await session.execute(sql, []);
      await engine.pendingAnnouncements();
      return outboxReads - before;
    } finally {
      await session.close();
    }
  }

  test('a read outside a transaction leaves the outbox alone', async () => {
    assert.equal(await outboxReadsDuring('SELECT TOP 1 PersonID FROM dbo.Person'), 0);
  });

  test('a write outside a transaction has the outbox read at once, and its announcement sent', async () => {
    assert.ok(await outboxReadsDuring("INSERT INTO dbo.Person (Vorname) VALUES (N'Ada')") >= 1);
    await engine.flushAnnouncements();
    assert.equal(await engine.pendingAnnouncements(), 0);
  });
});
