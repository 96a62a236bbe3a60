/**
 * Broken answers from FS (issue 12 point 4) through the TDS stand-in's fault switch: a statement
 * that never answers, a result cut off mid-row with the connection dropped, a token TDS does not
 * have. Each is an error naming FS, the host and the client call; a write cut off inside its
 * transaction leaves nothing behind, one whose answer is cut off after its commit stays written
 * once; the client works again afterwards.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import sql from 'mssql';
import { startStudioStandIn, type StudioStandIn } from '../../sandbox/studio/index.ts';
import { createStudioClient, StudioError, type StudioClient } from '../../src/adapters/studio/index.ts';
import { openStudioConnection } from '../../src/adapters/studio/connection.ts';
import { failureTraits } from '../../src/adapters/failure.ts';
import { silentLogger } from '../../src/log.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';

const password = 'pw-broken-1';
let testDb: TestDatabase;
let pool: pg.Pool;
let standIn: StudioStandIn;
let client: StudioClient;
let accountId: number;

/** The call's error; a call that neither answers nor fails within 10 s fails the test instead of hanging it. */
async function failure(call: () => Promise<unknown>): Promise<StudioError> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('the call neither answered nor failed within 10 s')), 10_000); });
  try {
    await Promise.race([call(), hung]);
  } catch (err) {
    assert.ok(err instanceof StudioError, `${(err as Error).name}: ${(err as Error).message}`);
    return err;
  } finally {
    clearTimeout(timer);
  }
  assert.fail('the call succeeded');
}

before(async () => {
  testDb = await createTestDatabase('sosync_studio_broken');
  pool = new pg.Pool(testDb.config);
  standIn = await startStudioStandIn({ db: pool, databaseName: 'mdb_test', users: [{ user: 'sosync', password }], logger: silentLogger() });
  client = createStudioClient({
    host: '127.0.0.1', port: standIn.port, database: 'mdb_test', user: 'sosync', password,
    encrypt: false, trustServerCertificate: true, connectTimeoutMs: 3000, requestTimeoutMs: 800,
  }, silentLogger());
  accountId = (await client.xBPKAccount.insert({ Name: 'Vorher' }, { sosyncWriteDate: new Date() })).id;
});

after(async () => {
  standIn?.server.breakResponses(null);
  await client?.close();
  await standIn?.close();
  await pool?.end();
  await testDb?.drop();
});

describe('broken FS answers', () => {
  it('a statement that never answers hits the request timeout: timeout, transient, naming the call', async () => {
    standIn.server.breakResponses({ kind: 'stall', match: 'FROM dbo.[xBPKAccount]' });
    const err = await failure(() => client.xBPKAccount.read(accountId));
    standIn.server.breakResponses(null);
    assert.match(err.message, /^FS \(127\.0\.0\.1:\d+\) is unavailable: .*\(in FS call xBPKAccount\.read\)$/);
    assert.deepEqual(failureTraits(err), { system: 'fs', transient: true, unavailable: true, timeout: true });
    assert.equal((await client.xBPKAccount.read(accountId))?.Name, 'Vorher');
  });

  it('a result cut off mid-row (connection dropped): transient, naming the call; the next call reconnects', async () => {
    standIn.server.breakResponses({ kind: 'cutMidRow', match: 'FROM dbo.[xBPKAccount]' });
    const err = await failure(() => client.xBPKAccount.read(accountId));
    standIn.server.breakResponses(null);
    assert.match(err.message, /^FS \(127\.0\.0\.1:\d+\) .*\(in FS call xBPKAccount\.read\)$/);
    assert.equal(failureTraits(err)?.transient, true, err.message);
    assert.equal((await client.xBPKAccount.read(accountId))?.Name, 'Vorher');
  });

  it('an unexpected token: an error naming FS and the call; the client works afterwards', async () => {
    standIn.server.breakResponses({ kind: 'unexpectedToken', match: 'FROM dbo.[xBPKAccount]' });
    const err = await failure(() => client.xBPKAccount.read(accountId));
    standIn.server.breakResponses(null);
    assert.match(err.message, /^FS \(127\.0\.0\.1:\d+\) .*\(in FS call xBPKAccount\.read\)$/);
    assert.equal((await client.xBPKAccount.read(accountId))?.Name, 'Vorher');
  });

  it('a write cut off inside its transaction is rolled back: the row keeps its old value', async () => {
    // a person stack's write that changes a part is several batches in one transaction; the
    // first, the person's update, is answered with a cut-off result and a dropped connection
    const { personId } = await client.writePersonStack({ personId: null, sosyncWriteDate: new Date(), person: { Vorname: 'Vorher', Name: 'Bruch' } });
    standIn.server.breakResponses({ kind: 'cutMidRow', match: 'UPDATE dbo.[Person] SET [Vorname]' });
    const err = await failure(() => client.writePersonStack({ personId, sosyncWriteDate: new Date(), person: { Vorname: 'Nachher' } }));
    standIn.server.breakResponses(null);
    assert.match(err.message, /\(in FS call writePersonStack\)$/);
    assert.equal((await client.readPersonStack(personId))?.person.Vorname, 'Vorher');
    const direct = await pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'`);
    assert.equal(direct.rows[0].n, 0, 'no transaction left open on the server side');
  });

  it('a one-batch write that FS refuses leaves nothing behind and no transaction open on the pooled connection', async () => {
    // the update fails in its UPDATE (Name is nvarchar(200)) after the read of the ids it updates:
    // XACT_ABORT ON, set by the batch, makes FS roll the batch's transaction back and end it
    const err = await failure(() => client.xBPKAccount.update(accountId, { Name: 'x'.repeat(201) }, { sosyncWriteDate: new Date() }));
    assert.match(err.message, /\(in FS call xBPKAccount\.update\)$/);
    const open = await pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'`);
    assert.equal(open.rows[0].n, 0, 'no transaction left open on the server side');
    assert.equal((await client.xBPKAccount.read(accountId))?.Name, 'Vorher');
  });

  it('a cancelled batch (the request timeout) rolls back the transaction it ran in when XACT_ABORT is ON, as SQL Server does', async () => {
    // one connection, so the batches run in one session: the first leaves a transaction open
    const raw = await new sql.ConnectionPool({
      server: '127.0.0.1', port: standIn.port, database: 'mdb_test', user: 'sosync', password, requestTimeout: 800,
      pool: { max: 1, min: 1 }, options: { encrypt: false, trustServerCertificate: true },
    }).connect();
    try {
      await raw.request().query("SET XACT_ABORT ON; BEGIN TRANSACTION; INSERT INTO dbo.xBPKAccount (Name) VALUES (N'Abgebrochen');");
      standIn.server.breakResponses({ kind: 'stall', match: 'FROM dbo.[xBPKAccount]' });
      await assert.rejects(raw.request().query('SELECT COUNT(*) AS n FROM dbo.[xBPKAccount]'), /timeout|Timeout/);
      standIn.server.breakResponses(null);
      const [trancount] = (await raw.request().query('SELECT @@TRANCOUNT AS n')).recordset;
      assert.equal(trancount.n, 0, 'no transaction open after the cancel');
      const direct = await pool.query(`SELECT count(*)::int AS n FROM dbo."xBPKAccount" WHERE "Name" = 'Abgebrochen'`);
      assert.equal(direct.rows[0].n, 0, 'the insert was rolled back');
    } finally {
      standIn.server.breakResponses(null);
      await raw.close();
    }
  });

  it('a write sends nothing after its last batch: a batch or read after it is refused before it reaches FS', async () => {
    const connection = openStudioConnection({
      host: '127.0.0.1', port: standIn.port, database: 'mdb_test', user: 'sosync', password,
      encrypt: false, trustServerCertificate: true, connectTimeoutMs: 3000, requestTimeoutMs: 800,
    }, silentLogger());
    try {
      await connection.run('SELECT 0 AS zero;'); // the pool's connection, logged in and set up
      const requests = standIn.server.requestCount;
      await assert.rejects(connection.inTransaction(async (scope) => {
        await scope.final.run('SELECT 1 AS one;');
        await scope.run('SELECT 2 AS two;');
      }), /a batch after the write's last batch/);
      await assert.rejects(connection.inTransaction(async (scope) => {
        await scope.final.run('SELECT 1 AS one;');
        await scope.read('SELECT 2 AS two;');
      }), /a read after the write's last batch/);
      assert.equal(standIn.server.requestCount - requests, 2, 'only the two last batches reached FS');
    } finally {
      await connection.close();
    }
  });

  it('a one-batch write whose answer is cut off after its commit stays written, once: a retry finds the row by its FSO id', async () => {
    // A write of one row is one batch that commits at its end (ownTransaction). Its answer can be
    // lost after FS committed it, as the answer to a separate COMMIT could: the job fails, and
    // its retry finds the row it wrote by the FSO id the row carries instead of inserting another.
    standIn.server.breakResponses({ kind: 'cutMidRow', match: 'INSERT INTO dbo.[xBPKAccount]' });
    const err = await failure(() => client.xBPKAccount.insert({ Name: 'Einmal' }, { sosyncWriteDate: new Date(), sosyncFsoId: 4242 }));
    standIn.server.breakResponses(null);
    assert.match(err.message, /\(in FS call xBPKAccount\.insert\)$/);
    assert.equal(failureTraits(err)?.transient, true, err.message);
    const found = await client.xBPKAccount.findIdByFsoId(4242);
    assert.ok(found !== null, 'the insert was committed');
    assert.equal((await client.xBPKAccount.read(found))?.Name, 'Einmal');
    const direct = await pool.query(`SELECT count(*)::int AS n FROM dbo."xBPKAccount" WHERE sosync_fso_id = 4242`);
    assert.equal(direct.rows[0].n, 1, 'one row');
    const open = await pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'`);
    assert.equal(open.rows[0].n, 0, 'no transaction left open on the server side');
  });
});
