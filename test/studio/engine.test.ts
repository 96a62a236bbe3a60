/**
 * The FS stand-in's SQL engine on its own (no wire): T-SQL translation, FS triggers and the
 * announcement outbox (retry, de-duplication, loop guard), and the demo seed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { SqlServerError, type SqlParameter } from '../../sandbox/studio/engine.ts';
import { createStudioEngine, type StudioEngine } from '../../sandbox/studio/sql/index.ts';
import { seedStudio } from '../../sandbox/studio/seed.ts';
import { withLiterals } from '../../sandbox/studio/sql/backend.ts';
import { silentLogger } from '../../src/log.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';

const logger = silentLogger();

/** Counts the queries the stand-in sends PostgreSQL on the pool's clients, from now until stop(). */
function countQueries(pool: pg.Pool): { readonly sent: number; stop(): void } {
  const counter = { sent: 0, counting: true, stop() { counter.counting = false; pool.off('acquire', wrap); } };
  const wrapped = new WeakSet<pg.PoolClient>();
  function wrap(client: pg.PoolClient) {
    if (wrapped.has(client)) return;
    wrapped.add(client);
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: unknown }).query = (...args: unknown[]) => {
      if (counter.counting) counter.sent += 1;
      return query(...args);
    };
  }
  pool.on('acquire', wrap);
  return counter;
}
const users = [{ user: 'sosync', password: 'pw' }];

async function sink(statusFor: () => number) {
  const received: Array<Record<string, unknown>> = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const status = statusFor();
      if (status === 200) received.push(JSON.parse(body));
      res.statusCode = status;
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/job/create`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const p = (name: string, type: SqlParameter['type'], value: unknown): SqlParameter => ({ name, type, value });

describe('FS stand-in engine (PGlite)', () => {
  let engine: StudioEngine;
  let db: PGlite;
  before(async () => {
    db = new PGlite();
    engine = await createStudioEngine({ db, databaseName: 'mdb_x', users, logger, announceRetryMs: 20 });
  });
  after(async () => {
    await engine.close();
    await db.close();
  });

  it('checks logins and the database name', () => {
    assert.deepEqual(engine.authenticate('sosync', 'pw', 'mdb_x'), { ok: true });
    assert.equal(engine.authenticate('sosync', 'nope', 'mdb_x').ok, false);
    assert.equal(engine.authenticate('other', 'pw', 'mdb_x').ok, false);
    const wrongDb = engine.authenticate('sosync', 'pw', 'mdb_y');
    assert.ok(!wrongDb.ok && /Cannot open database "mdb_y"/.test(wrongDb.reason));
  });

  it('accepts driver SET statements, TOP, brackets, N literals, ISNULL, CAST and SCOPE_IDENTITY', async () => {
    const s = await engine.openSession('mdb_x', 'sosync');
    const setUp = await s.execute('set textsize 2147483647\nset ansi_nulls on\nset transaction isolation level read committed', []);
    assert.equal(setUp.length, 3);
    const [insert, identity] = await s.execute(
      "INSERT INTO [dbo].[xBPKAccount] ([Name]) VALUES (N'Ä-Firma') SELECT SCOPE_IDENTITY() AS id", []);
    assert.equal(insert.rowCount, 1);
    const id = identity.rows![0][0] as number;
    assert.ok(Number.isInteger(id) && id > 0);
    const [top] = await s.execute(
      'SELECT TOP (@n) [xBPKAccountID], ISNULL(Name, N\'-\') AS nm, CAST(write_date AS DATE) AS d FROM xBPKAccount WITH (NOLOCK) WHERE xBPKAccountID = @id ORDER BY xBPKAccountID DESC',
      [p('n', 'int', 1), p('id', 'int', id)]);
    assert.deepEqual(top.columns!.map((c) => [c.name, c.type]), [['xBPKAccountID', 'int'], ['nm', 'nvarchar'], ['d', 'date']]);
    assert.equal(top.rows![0][1], 'Ä-Firma');
    const [trivia] = await s.execute('SELECT @@TRANCOUNT AS tc, GETUTCDATE() AS now', []);
    assert.equal(trivia.rows![0][0], 0);
    assert.ok(trivia.rows![0][1] instanceof Date);
    await s.close();
  });

  it('a batch text sent again is answered anew: its values, its parameters\' types, @@ROWCOUNT and SCOPE_IDENTITY() of this run', async () => {
    const s = await engine.openSession('mdb_x', 'sosync');
    const insert = "INSERT INTO dbo.[xBPKAccount] ([Name]) VALUES (@name); SELECT SCOPE_IDENTITY() AS id, @@ROWCOUNT AS n";
    const [, first] = await s.execute(insert, [p('name', 'nvarchar', 'Wieder 1')]);
    const [, second] = await s.execute(insert, [p('name', 'nvarchar', 'Wieder 2')]);
    assert.equal(second.rows![0][0], (first.rows![0][0] as number) + 1, 'SCOPE_IDENTITY() is the second insert\'s');
    const read = 'SELECT [Name] FROM dbo.[xBPKAccount] WHERE [xBPKAccountID] = @id';
    const names = [];
    for (const id of [first.rows![0][0], second.rows![0][0]]) names.push((await s.execute(read, [p('id', 'int', id)]))[0].rows![0][0]);
    assert.deepEqual(names, ['Wieder 1', 'Wieder 2']);
    // the same text with a parameter of another type: SELECT @v answers the value as that type
    const echo = 'SELECT @v AS v';
    assert.equal((await s.execute(echo, [p('v', 'int', 7)]))[0].rows![0][0], 7);
    assert.equal((await s.execute(echo, [p('v', 'nvarchar', 'sieben')]))[0].rows![0][0], 'sieben');
    const [updated, count] = await s.execute('UPDATE dbo.[xBPKAccount] SET [Name] = [Name] WHERE [Name] LIKE @like; SELECT @@ROWCOUNT AS n', [p('like', 'nvarchar', 'Wieder%')]);
    assert.equal(updated.rowCount, 2);
    assert.equal(count.rows![0][0], 2);
    const [, none] = await s.execute('UPDATE dbo.[xBPKAccount] SET [Name] = [Name] WHERE [Name] LIKE @like; SELECT @@ROWCOUNT AS n', [p('like', 'nvarchar', 'Nie%')]);
    assert.equal(none.rows![0][0], 0);
    await s.close();
  });

  it('answers what it does not support with SQL Server errors', async () => {
    const s = await engine.openSession('mdb_x', 'sosync');
    const cases: Array<[string, number, RegExp]> = [
      ['MERGE dbo.Person AS t', 102, /Incorrect syntax near 'MERGE'/],
      ['DROP TABLE dbo.Person', 102, /Incorrect syntax near 'DROP'/],
      ['SELECT pg_sleep(10)', 195, /'pg_sleep' is not a recognized built-in function name/],
      ['SELECT * INTO dbo.Kopie FROM dbo.Person', 102, /Incorrect syntax near 'INTO'/],
      ['SELECT @nirgends', 137, /Must declare the scalar variable "@nirgends"/],
      ['SELECT Unbekannt FROM dbo.Person', 207, /Invalid column name 'Unbekannt'/],
      ["SELECT 'offen", 105, /Unclosed quotation mark/],
      ['EXEC xp_cmdshell', 2812, /Could not find stored procedure 'xp_cmdshell'/],
      ['INSERT INTO dbo.PersonEmail (EmailVor) VALUES (1)', 515, /Cannot insert the value NULL into column 'PersonID'/],
      // FS's tables have triggers, and SQL Server refuses OUTPUT without INTO on a table with one for the action
      ["UPDATE dbo.Person SET Name = N'x' OUTPUT INSERTED.PersonID WHERE PersonID = 0", 334, /target table 'dbo\.Person' of the DML statement cannot have any enabled triggers if the statement contains an OUTPUT clause without INTO clause/],
      ["INSERT INTO [dbo].[xBPKAccount] ([Name]) OUTPUT INSERTED.xBPKAccountID VALUES (N'x')", 334, /target table 'dbo\.xBPKAccount'/],
      ['DELETE FROM dbo.PersonEmail OUTPUT DELETED.PersonEmailID WHERE PersonEmailID = 0', 334, /target table 'dbo\.PersonEmail'/],
      ["UPDATE dbo.Typen SET Beschreibung = N'x' OUTPUT INSERTED.TypenID WHERE TypenID = 0", 334, /target table 'dbo\.Typen'/],
    ];
    for (const [statement, number, message] of cases) {
      await assert.rejects(s.execute(statement, []), (err: unknown) => {
        assert.ok(err instanceof SqlServerError, statement);
        assert.equal(err.number, number, statement);
        assert.match(err.message, message);
        return true;
      });
    }
    await assert.rejects(s.commitTransaction(), /no corresponding BEGIN TRANSACTION/);
    // a table without a trigger for the action takes OUTPUT: Land has none, Typen none for DELETE
    const [land] = await s.execute('DELETE FROM dbo.Land OUTPUT DELETED.LandID WHERE LandID = -1', []);
    assert.deepEqual(land.rows, []);
    const [typen] = await s.execute('DELETE FROM dbo.Typen OUTPUT DELETED.TypenID WHERE TypenID = -1', []);
    assert.deepEqual(typen.rows, []);
    await s.close();
  });

  it('keeps a transaction usable after a failed statement and rolls everything back on request', async () => {
    const s = await engine.openSession('mdb_x', 'sosync');
    await s.beginTransaction();
    await s.execute("INSERT INTO dbo.xBPKAccount (Name) VALUES (N'tx')", []);
    await assert.rejects(s.execute('SELECT * FROM dbo.Fehlt', []), SqlServerError);
    const [count] = await s.execute("SELECT COUNT(*) AS n FROM dbo.xBPKAccount WHERE Name = N'tx'", []);
    assert.equal(count.rows![0][0], 1);
    await s.rollbackTransaction();
    const [after] = await s.execute("SELECT COUNT(*) AS n FROM dbo.xBPKAccount WHERE Name = N'tx'", []);
    assert.equal(after.rows![0][0], 0);
    await s.close();
  });

  it('fails statements matching a failStatements rule, a given number of times', async () => {
    const s = await engine.openSession('mdb_x', 'sosync');
    engine.failStatements([{ match: /dbo\.Typen/i, message: 'simulated', number: 1205, times: 1 }]);
    await assert.rejects(s.execute('SELECT * FROM dbo.Typen', []), (err: unknown) => (err as SqlServerError).number === 1205);
    const [ok] = await s.execute('SELECT * FROM dbo.Typen', []);
    assert.equal(ok.rows!.length, 3);
    engine.failStatements([]);
    await s.close();
  });

  it('announces after commit, retries failed posts, and honours both loop guards', async () => {
    let status = 200;
    const announcements = await sink(() => status);
    engine.setAnnounceUrl(announcements.url);
    try {
      // Changes of earlier tests waited in the outbox while no URL was set.
      await engine.flushAnnouncements();
      assert.ok(announcements.received.some((a) => a.job_source_model === 'dbo.xBPKAccount'));
      announcements.received.length = 0;
      status = 503;
      const s = await engine.openSession('mdb_x', 'sosync');
      const [, created] = await s.execute("INSERT INTO dbo.Person (Vorname) VALUES (N'Ö'); SELECT CAST(SCOPE_IDENTITY() AS int) AS PersonID", []);
      const personId = created.rows![0][0] as number;
      await s.execute("INSERT INTO dbo.PersonEmail (PersonID, EmailVor) VALUES (@id, 'a'); SELECT CAST(SCOPE_IDENTITY() AS int) AS PersonEmailID", [p('id', 'int', personId)]);
      await engine.flushAnnouncements();
      assert.equal(announcements.received.length, 0, 'sosync is down');
      assert.equal(await engine.pendingAnnouncements(), 2, 'kept in the outbox');
      status = 200;
      await new Promise((r) => setTimeout(r, 100)); // past the retry pause
      await engine.flushAnnouncements();
      assert.equal(await engine.pendingAnnouncements(), 0);
      assert.deepEqual(announcements.received.map((a) => [a.job_source_model, a.job_source_record_id]), [
        ['dbo.Person', personId], ['dbo.Person', personId],
      ]);
      announcements.received.length = 0;

      // noSyncJobSwitch = 1: kept sosync_write_date, nothing announced, switch re-armed.
      const [, guarded] = await s.execute(
        'UPDATE dbo.Person SET Name = N\'x\', noSyncJobSwitch = 1, sosync_write_date = @d WHERE PersonID = @id; SELECT sosync_write_date, noSyncJobSwitch FROM dbo.Person WHERE PersonID = @id',
        [p('id', 'int', personId), p('d', 'datetime2', new Date('2020-01-01T00:00:00.5Z'))]);
      assert.equal((guarded.rows![0][0] as Date).toISOString(), '2020-01-01T00:00:00.500Z');
      assert.equal(guarded.rows![0][1], false);
      // A deletion of a detail row announces a change of the person, not a delete.
      await s.execute("EXEC sp_set_session_context N'noSyncJobSwitch', 1; DELETE FROM dbo.PersonEmail WHERE PersonID = @id; EXEC sp_set_session_context N'noSyncJobSwitch', 0",
        [p('id', 'int', personId)]);
      await engine.flushAnnouncements();
      assert.equal(announcements.received.length, 0);
      await s.execute("INSERT INTO dbo.PersonTelefon (PersonID, Rufnummer) VALUES (@id, '1')", [p('id', 'int', personId)]);
      await s.execute('DELETE FROM dbo.PersonTelefon WHERE PersonID = @id', [p('id', 'int', personId)]);
      await engine.flushAnnouncements();
      assert.equal(announcements.received.length, 2);
      assert.equal(announcements.received[1].job_source_type, undefined);
      await s.close();
    } finally {
      engine.setAnnounceUrl(undefined);
      await announcements.close();
    }
  });
});

describe('FS stand-in engine and seed (PostgreSQL)', () => {
  let testDb: TestDatabase;
  let pool: pg.Pool;
  let engine: StudioEngine;
  before(async () => {
    testDb = await createTestDatabase('sosync_studio_engine');
    pool = new pg.Pool(testDb.config);
    engine = await createStudioEngine({ db: pool, databaseName: 'mdb_x', users, logger });
  });
  after(async () => {
    await engine.close();
    await pool.end();
    await testDb.drop();
  });

  it('sets up idempotently', async () => {
    const again = await createStudioEngine({ db: pool, databaseName: 'mdb_x', users, logger });
    await again.close();
    const r = await pool.query('SELECT count(*)::int AS n FROM dbo."Typen"');
    assert.equal(r.rows[0].n, 3);
  });

  it('seeds 1,000 persons with their detail rows, deterministically and without announcements', async () => {
    const result = await seedStudio(pool, { persons: 1000, seed: 7, sosyncWriteDate: new Date('2024-01-01T00:00:00Z') });
    assert.equal(result.personIds.length, 1000);
    assert.ok(result.companyIds.length >= 1);
    assert.equal(result.personBpkIds.length, 250);
    const counts = await pool.query(`SELECT
      (SELECT count(*) FROM dbo."PersonAdresse")::int AS addresses,
      (SELECT count(*) FROM dbo."PersonEmail")::int AS emails,
      (SELECT count(*) FROM dbo."PersonTelefon")::int AS phones,
      (SELECT count(*) FROM dbo."PersonGruppe")::int AS groups,
      (SELECT count(*) FROM dbo."PersonEmailGruppe")::int AS newsletters,
      (SELECT count(*) FROM studio.announcement)::int AS announcements,
      (SELECT min(sosync_write_date) FROM dbo."Person") AS swd`);
    const c = counts.rows[0];
    assert.equal(c.addresses, 1000);
    assert.equal(c.emails, 1000);
    assert.ok(c.phones > 500 && c.groups > 300 && c.newsletters > 200);
    assert.equal(c.announcements, 0);
    const first = await pool.query('SELECT "Vorname", "Name", "Geburtsdatum"::text AS g FROM dbo."Person" WHERE "PersonID" = $1', [result.personIds[0]]);

    // Same seed, fresh database: same people.
    const other = await createTestDatabase('sosync_studio_seed');
    const otherPool = new pg.Pool(other.config);
    try {
      const again = await seedStudio(otherPool, { persons: 3, seed: 7 });
      const row = await otherPool.query('SELECT "Vorname", "Name", "Geburtsdatum"::text AS g FROM dbo."Person" WHERE "PersonID" = $1', [again.personIds[0]]);
      assert.deepEqual(row.rows[0], first.rows[0]);
    } finally {
      await otherPool.end();
      await other.drop();
    }
  });

  it('in a transaction, a statement with parameters runs in one round trip with its savepoint, and a failed one undoes only itself', async () => {
    const s = await engine.openSession('mdb_x', 'sosync');
    const param = (name: string, type: SqlParameter['type'], value: unknown): SqlParameter => ({ name, type, value });
    // quotes, a `$1` and a comment marker inside the value, and a NULL: all arrive as they were sent
    const name = "O'Brien $1 -- /* 'x' */";
    const queries = countQueries(pool);
    await s.beginTransaction();
    const before = queries.sent;
    await s.execute('INSERT INTO dbo.xBPKAccount (Name) VALUES (@name)', [param('name', 'nvarchar', name)]);
    queries.stop();
    assert.equal(queries.sent - before, 1, 'SAVEPOINT, the statement and RELEASE SAVEPOINT in one query');
    const [inserted] = await s.execute('SELECT CAST(SCOPE_IDENTITY() AS int) AS xBPKAccountID', []);
    const id = inserted.rows![0][0] as number;
    await assert.rejects(s.execute('UPDATE dbo.xBPKAccount SET Name = @name WHERE xBPKAccountID = @id', [param('name', 'nvarchar', 'x'.repeat(201)), param('id', 'int', id)]), SqlServerError,
      'Name is nvarchar(200): the update fails');
    const [nulled] = await s.execute('SELECT COUNT(*) AS n FROM dbo.xBPKAccount WHERE xBPKAccountID = @id AND @nothing IS NULL', [param('id', 'int', id), param('nothing', 'nvarchar', null)]);
    assert.equal(nulled.rows![0][0], 1, 'a NULL parameter arrives as NULL');
    const [read] = await s.execute("SELECT Name FROM dbo.xBPKAccount WHERE xBPKAccountID = @id AND Name <> N'$1'", [param('id', 'int', id)]);
    assert.deepEqual(read.rows, [[name]], 'the failed update undid only itself: the row and the transaction are as before');
    await s.commitTransaction();
    const [after] = await s.execute('SELECT COUNT(*) AS n FROM dbo.xBPKAccount WHERE Name = @name', [param('name', 'nvarchar', name)]);
    assert.equal(after.rows![0][0], 1);
    await s.close();
  });

  it('a batch of reads outside a transaction goes to PostgreSQL as one query; one that fails or reads @@ROWCOUNT runs statement by statement', async () => {
    const s = await engine.openSession('mdb_x', 'sosync');
    const param = (name: string, type: SqlParameter['type'], value: unknown): SqlParameter => ({ name, type, value });
    const [, made] = await s.execute("INSERT INTO dbo.xBPKAccount (Name) VALUES (N'batch'); SELECT CAST(SCOPE_IDENTITY() AS int) AS xBPKAccountID", []);
    const id = made.rows![0][0] as number;
    const queries = countQueries(pool);
    try {
      const reads = 'SELECT Name FROM dbo.xBPKAccount WHERE xBPKAccountID = @id; SELECT COUNT(*) AS n FROM dbo.xBPKAccount WHERE Name = @name;';
      const at = queries.sent;
      const results = await s.execute(reads, [param('id', 'int', id), param('name', 'nvarchar', 'batch')]);
      assert.equal(queries.sent - at, 1, 'two reads, one query');
      assert.deepEqual(results.map((r) => r.rows), [[['batch']], [[1]]]);
      // a statement that reads what the one before left must see it: not run ahead
      const [, rowCount] = await s.execute("SELECT Name FROM dbo.xBPKAccount WHERE Name = N'batch'; SELECT @@ROWCOUNT AS n;", []);
      assert.deepEqual(rowCount.rows, [[1]]);
      // a failing read: answered as any batch is, with SQL Server's error
      await assert.rejects(s.execute('SELECT Name FROM dbo.xBPKAccount WHERE xBPKAccountID = @id; SELECT * FROM dbo.Fehlt;', [param('id', 'int', id)]), SqlServerError);
    } finally {
      queries.stop();
      await s.close();
    }
  });

  it('a batch inside a transaction goes to PostgreSQL as one query; one that fails has the effect it has statement by statement', async () => {
    const s = await engine.openSession('mdb_x', 'sosync');
    const param = (name: string, type: SqlParameter['type'], value: unknown): SqlParameter => ({ name, type, value });
    const queries = countQueries(pool);
    try {
      await s.beginTransaction();
      const [, made] = await s.execute("INSERT INTO dbo.xBPKAccount (Name) VALUES (N'in tran'); SELECT CAST(SCOPE_IDENTITY() AS int) AS xBPKAccountID", []);
      const id = made.rows![0][0] as number;
      const reads = 'SELECT Name FROM dbo.xBPKAccount WHERE xBPKAccountID = @id; SELECT COUNT(*) AS n FROM dbo.xBPKAccount WHERE Name = @name;';
      const at = queries.sent;
      const results = await s.execute(reads, [param('id', 'int', id), param('name', 'nvarchar', 'in tran')]);
      assert.equal(queries.sent - at, 1, 'two reads, one query');
      assert.deepEqual(results.map((r) => r.rows), [[['in tran']], [[1]]], 'the reads see the transaction\'s own insert');
      // a failing read is answered with SQL Server's error; the transaction and its insert go on
      await assert.rejects(s.execute('SELECT Name FROM dbo.xBPKAccount WHERE xBPKAccountID = @id; SELECT * FROM dbo.Fehlt;', [param('id', 'int', id)]), SqlServerError);
      const [still] = await s.execute('SELECT Name FROM dbo.xBPKAccount WHERE xBPKAccountID = @id; SELECT 1 AS one;', [param('id', 'int', id)]);
      assert.deepEqual(still.rows, [['in tran']]);
      // writes too: two updates, each after a read of the rows it updates (as sosync writes), one query
      const [, second] = await s.execute("INSERT INTO dbo.xBPKAccount (Name) VALUES (N'second'); SELECT CAST(SCOPE_IDENTITY() AS int) AS xBPKAccountID", []);
      const id2 = second.rows![0][0] as number;
      const updates = 'SELECT xBPKAccountID FROM dbo.xBPKAccount WITH (UPDLOCK) WHERE xBPKAccountID = @id; UPDATE dbo.xBPKAccount SET Name = @a WHERE xBPKAccountID = @id; '
        + 'SELECT xBPKAccountID FROM dbo.xBPKAccount WITH (UPDLOCK) WHERE xBPKAccountID = @id2; UPDATE dbo.xBPKAccount SET Name = @b WHERE xBPKAccountID = @id2;';
      const before = queries.sent;
      const updated = await s.execute(updates, [param('a', 'nvarchar', 'a1'), param('b', 'nvarchar', 'b1'), param('id', 'int', id), param('id2', 'int', id2)]);
      assert.equal(queries.sent - before, 1, 'two updates, one query');
      assert.deepEqual(updated.map((r) => [r.rowCount, r.rows ?? null]), [[1, [[id]]], [1, null], [1, [[id2]]], [1, null]]);
      // the second update fails (Name is nvarchar(200)): the first keeps its effect, once, as it would statement by statement
      await assert.rejects(s.execute(updates, [param('a', 'nvarchar', 'a2'), param('b', 'nvarchar', 'x'.repeat(201)), param('id', 'int', id), param('id2', 'int', id2)]), SqlServerError);
      const [names] = await s.execute('SELECT Name FROM dbo.xBPKAccount WHERE xBPKAccountID IN (@id, @id2) ORDER BY xBPKAccountID', [param('id', 'int', id), param('id2', 'int', id2)]);
      assert.deepEqual(names.rows, [['a2'], ['b1']]);
      await s.commitTransaction();
      const [after] = await s.execute('SELECT COUNT(*) AS n FROM dbo.xBPKAccount WHERE xBPKAccountID IN (@id, @id2)', [param('id', 'int', id), param('id2', 'int', id2)]);
      assert.equal(after.rows![0][0], 2, 'committed once');
    } finally {
      queries.stop();
      await s.close();
    }
  });

  it('a batch that is a transaction of its own commits at its end in one query; with XACT_ABORT ON a failing statement rolls all of it back', async () => {
    const s = await engine.openSession('mdb_x', 'sosync');
    const param = (name: string, type: SqlParameter['type'], value: unknown): SqlParameter => ({ name, type, value });
    const queries = countQueries(pool);
    try {
      const [, made] = await s.execute("INSERT INTO dbo.xBPKAccount (Name) VALUES (N'own'); SELECT CAST(SCOPE_IDENTITY() AS int) AS xBPKAccountID", []);
      const id = made.rows![0][0] as number;
      const [, madeToo] = await s.execute("INSERT INTO dbo.xBPKAccount (Name) VALUES (N'own too'); SELECT CAST(SCOPE_IDENTITY() AS int) AS xBPKAccountID", []);
      const id2 = madeToo.rows![0][0] as number;
      const updates = (sets: string) => `${sets}BEGIN TRANSACTION;\n`
        + 'SELECT xBPKAccountID FROM dbo.xBPKAccount WITH (UPDLOCK) WHERE xBPKAccountID = @id; UPDATE dbo.xBPKAccount SET Name = @a WHERE xBPKAccountID = @id;\n'
        + 'SELECT xBPKAccountID FROM dbo.xBPKAccount WITH (UPDLOCK) WHERE xBPKAccountID = @id2; UPDATE dbo.xBPKAccount SET Name = @b WHERE xBPKAccountID = @id2;\n'
        + 'COMMIT TRANSACTION;';
      const values = (a: string, b: string) => [param('a', 'nvarchar', a), param('b', 'nvarchar', b), param('id', 'int', id), param('id2', 'int', id2)];
      const names = async () => (await s.execute('SELECT Name FROM dbo.xBPKAccount WHERE xBPKAccountID IN (@id, @id2) ORDER BY xBPKAccountID', values('', '')))[0].rows;

      const at = queries.sent;
      const results = await s.execute(updates('SET XACT_ABORT ON;\n'), values('a1', 'b1'));
      assert.equal(s.inTransaction, false, 'committed at the batch\'s end');
      assert.deepEqual(results.map((r) => r.rows ?? null), [null, null, [[id]], null, [[id2]], null, null], 'one answer per statement, SET and BEGIN and COMMIT included');
      // BEGIN, the four statements between a savepoint and its release, COMMIT
      assert.equal(queries.sent - at, 3, 'PostgreSQL round trips of the batch');
      assert.deepEqual(await names(), [['a1'], ['b1']]);

      // XACT_ABORT ON (kept by the session): the second update fails (Name is nvarchar(200)), the first is rolled back with it
      await assert.rejects(s.execute(updates(''), values('a2', 'x'.repeat(201))), SqlServerError);
      assert.equal(s.inTransaction, false, 'the transaction was rolled back');
      assert.deepEqual(await names(), [['a1'], ['b1']], 'nothing of the failed batch stays');

      // XACT_ABORT OFF, as SQL Server starts a session: the failed statement alone is undone and the transaction stays open
      await assert.rejects(s.execute(updates('SET XACT_ABORT OFF;\n'), values('a3', 'x'.repeat(201))), SqlServerError);
      assert.equal(s.inTransaction, true, 'the transaction stays open for the client to end');
      await s.rollbackTransaction();
      assert.deepEqual(await names(), [['a1'], ['b1']]);
    } finally {
      queries.stop();
      await s.close();
    }
  });

  it('serves concurrent transactions on separate pooled connections', async () => {
    const a = await engine.openSession('mdb_x', 'sosync');
    const b = await engine.openSession('mdb_x', 'sosync');
    await a.beginTransaction();
    await b.beginTransaction();
    await a.execute("INSERT INTO dbo.xBPKAccount (Name) VALUES (N'A')", []);
    const [seenByB] = await b.execute("SELECT COUNT(*) AS n FROM dbo.xBPKAccount WHERE Name = N'A'", []);
    assert.equal(seenByB.rows![0][0], 0, 'uncommitted work is invisible to the other session');
    await a.commitTransaction();
    await b.rollbackTransaction();
    const [seen] = await b.execute("SELECT COUNT(*) AS n FROM dbo.xBPKAccount WHERE Name = N'A'", []);
    assert.equal(seen.rows![0][0], 1);
    await a.close();
    await b.close();
  });
});

describe('parameters written in as literals (the PostgreSQL backend\'s savepoint query)', () => {
  it('replaces $n outside quotes and comments, doubles quotes, writes NULL', () => {
    assert.equal(
      withLiterals(`SELECT $1, '$1', "$2" FROM t -- $1\nWHERE a = $2::integer /* $1 */ AND b = $10 AND c = ''''`,
        ["it's", '5', null, null, null, null, null, null, null, 'x']),
      `SELECT 'it''s', '$1', "$2" FROM t -- $1\nWHERE a = '5'::integer /* $1 */ AND b = 'x' AND c = ''''`,
    );
    assert.equal(withLiterals('SELECT $1', [null]), 'SELECT NULL');
    assert.throws(() => withLiterals('SELECT $2', ['a']), /parameter \$2 has no value \(1 given\)/);
  });
});
