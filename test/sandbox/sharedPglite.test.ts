/**
 * The sandbox's one PGlite: FS's database (the stand-in) and sosync's sync table in one instance,
 * kept apart by schema and by the instance's one lock, so neither side's statement lands inside the
 * other side's transaction. And the cached empty database a fresh sandbox starts from.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { createBackend } from '../../sandbox/studio/sql/backend.ts';
import { startSandbox, type Sandbox } from '../../sandbox/start.ts';
import { openSandboxPglite } from '../../sandbox/pgliteTemplate.ts';
import { migrate, pgliteDatabase, SyncTableStore, type SqlDatabase } from '../../src/adapters/syncTable/index.ts';
import { createStudioClient } from '../../src/adapters/studio/index.ts';
import { readConfig } from '../../src/config/index.ts';
import { startService, type RunningService } from '../../src/service.ts';
import { silentLogger } from '../../src/log.ts';
import { freePort } from '../support/ports.ts';

/** Counts PGlite.create calls while `fn` runs (the class is the library's; nothing of ours is replaced). */
async function countingCreates<T>(fn: () => Promise<T>): Promise<{ value: T; creates: Array<Parameters<typeof PGlite.create>> }> {
  const original = PGlite.create;
  const creates: Array<Parameters<typeof PGlite.create>> = [];
  (PGlite as { create: unknown }).create = function (this: typeof PGlite, ...args: Parameters<typeof PGlite.create>) {
    creates.push(args);
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  };
  try {
    return { value: await fn(), creates };
  } finally {
    (PGlite as { create: unknown }).create = original;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the sandbox runs FS and the sync table in one PGlite instance', () => {
  let sandbox: Sandbox | null = null;
  let service: RunningService | null = null;
  let creates: unknown[] = [];

  before(async () => {
    const { config } = readConfig([
      '--sandbox_persons', '20', '--port', String(await freePort()), '--listen', '127.0.0.1',
      '--sandbox_fso_port', String(await freePort()), '--sandbox_fs_port', String(await freePort()), '--sandbox_ntp_port', String(await freePort()),
    ]);
    const opened = await countingCreates(async () => {
      sandbox = await startSandbox(config, silentLogger());
      service = await startService(config, silentLogger(), sandbox.endpoints, { syncTable: sandbox.syncTable ?? undefined });
    });
    creates = opened.creates;
  });

  after(async () => {
    await service?.close();
    await sandbox?.close();
  });

  test('one PGlite.create for both; the sync table lives in the instance the FS stand-in uses', async () => {
    assert.equal(creates.length, 1, 'one PGlite instance');
    assert.equal(sandbox!.syncTable?.kind, 'pglite-shared');
    assert.match(service!.table.description, /shared with the FS stand-in/);
    const job = await service!.table.store.createJob({ job_date: new Date(), job_source_system: 'fs', job_source_model: 'dbo.Person', job_source_record_id: 999_999 });
    const shared = sandbox!.syncTable!.kind === 'pglite-shared' ? sandbox!.syncTable!.db : null;
    const seen = await shared!.query<{ n: number }>('SELECT count(*)::int AS n FROM public.sync_table WHERE job_id = $1', [job.job_id]);
    assert.equal(seen.rows[0].n, 1, 'the job written through the sync table is in the shared instance');
  });

  test('FS over TDS sees its own tables and not the sync table', async () => {
    const studio = createStudioClient(sandbox!.endpoints.studio, silentLogger());
    try {
      assert.equal(typeof (await studio.serverTimeUtc()).getTime(), 'number');
      const person = await studio.readPersonStack(1);
      assert.equal(person?.personId, 1, 'FS answers a person stack');
    } finally {
      await studio.close();
    }
    const sql = (await import('mssql')).default;
    const pool = await new sql.ConnectionPool({
      server: '127.0.0.1', port: sandbox!.endpoints.studio.port, database: sandbox!.endpoints.studio.database,
      user: sandbox!.endpoints.studio.user, password: sandbox!.endpoints.studio.password, options: { encrypt: false, trustServerCertificate: true },
    }).connect();
    try {
      await assert.rejects(pool.request().query('SELECT * FROM sync_table'), (err: { number?: number }) => err.number === 208);
    } finally {
      await pool.close();
    }
  });
});

describe('one lock per PGlite instance: FS transactions and the sync table do not interleave', () => {
  let db: PGlite;
  let syncDb: SqlDatabase;
  let store: SyncTableStore;
  const backend = () => createBackend(db);

  before(async () => {
    db = await PGlite.create();
    syncDb = await pgliteDatabase(db, { owned: false });
    await migrate(syncDb);
    store = new SyncTableStore(syncDb);
    await db.exec('CREATE SCHEMA fs_side; CREATE TABLE fs_side.t (x int)');
  });

  after(async () => {
    await syncDb.close();
    await db.close();
  });

  const count = async (sql: string) => Number((await db.query<{ n: number }>(sql)).rows[0].n);

  test('a sync-table write during an FS transaction waits for its end and is not rolled back with it', async () => {
    const conn = await backend().acquire();
    await conn.exec('BEGIN');
    await conn.query('INSERT INTO fs_side.t VALUES (1)');
    let stored = false;
    const creating = store.createJob({ job_date: new Date(), job_source_system: 'fs', job_source_model: 'dbo.Person', job_source_record_id: 1 })
      .then((job) => { stored = true; return job; });
    // the FS transaction goes on over several calls, as a TDS session's does
    for (let i = 2; i <= 5; i++) {
      await conn.query(`INSERT INTO fs_side.t VALUES (${i})`);
      await sleep(1);
    }
    assert.equal(stored, false, 'the sync table waited for the FS transaction');
    await conn.exec('ROLLBACK');
    conn.release();
    const job = await creating;
    assert.equal(await count(`SELECT count(*)::int AS n FROM sync_table WHERE job_id = ${job.job_id}`), 1, 'the job survived the FS rollback');
    assert.equal(await count('SELECT count(*)::int AS n FROM fs_side.t'), 0, 'the FS rows are gone');
  });

  test('an FS statement during a sync-table transaction waits for its end and is not rolled back with it', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    let inside!: () => void;
    const begun = new Promise<void>((resolve) => { inside = resolve; });
    const failing = syncDb.transaction(async (tx) => {
      await tx.query(`INSERT INTO sync_table (job_date, job_source_system, job_source_model, job_source_record_id, job_state, job_fetched, job_last_change)
        VALUES (now(), 'fs', 'dbo.Person', 2, 'new', now(), now())`);
      inside();
      await gate;
      throw new Error('rolled back on purpose');
    });
    await begun;
    let acquired = false;
    const fsWrite = backend().acquire().then(async (conn) => {
      acquired = true;
      try {
        await conn.query('INSERT INTO fs_side.t VALUES (42)');
      } finally {
        conn.release();
      }
    });
    for (let i = 0; i < 5; i++) await sleep(1);
    assert.equal(acquired, false, 'FS waited for the sync-table transaction');
    release();
    await assert.rejects(failing, /rolled back on purpose/);
    await fsWrite;
    assert.equal(await count(`SELECT count(*)::int AS n FROM sync_table WHERE job_source_record_id = 2`), 0, 'the sync-table rows are gone');
    assert.equal(await count('SELECT count(*)::int AS n FROM fs_side.t WHERE x = 42'), 1, 'the FS row survived');
  });
});

describe('a fresh sandbox PGlite starts from the cached empty database', () => {
  let dir: string;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sosync-template-')); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('the first open leaves the template, later ones load it (in memory and in a directory), a broken one falls back to initdb', async () => {
    const file = path.join(dir, 'cache', 'template.tar');
    const first = await countingCreates(() => openSandboxPglite(undefined, silentLogger(), file));
    await first.value.close();
    assert.equal(first.creates[0]?.[1]?.loadDataDir, undefined, 'no template yet: initdb');
    assert.ok(fs.statSync(file).size > 0, 'the template is kept');

    const inMemory = await countingCreates(() => openSandboxPglite(undefined, silentLogger(), file));
    assert.ok(inMemory.creates[0]?.[1]?.loadDataDir instanceof Blob, 'started from the template');
    await inMemory.value.exec('CREATE TABLE t (x int); INSERT INTO t VALUES (7)');
    assert.deepEqual((await inMemory.value.query('SELECT x FROM t')).rows, [{ x: 7 }]);
    await inMemory.value.close();

    const dataDir = path.join(dir, 'data');
    const onDisk = await countingCreates(() => openSandboxPglite(dataDir, silentLogger(), file));
    assert.ok(onDisk.creates[0]?.[1]?.loadDataDir instanceof Blob);
    await onDisk.value.exec('CREATE TABLE kept (x int); INSERT INTO kept VALUES (8)');
    await onDisk.value.close();
    const reopened = await countingCreates(() => openSandboxPglite(dataDir, silentLogger(), file));
    assert.equal(reopened.creates[0]?.[1], undefined, 'an existing database is opened as it is');
    assert.deepEqual((await reopened.value.query('SELECT x FROM kept')).rows, [{ x: 8 }]);
    await reopened.value.close();

    fs.writeFileSync(file, 'not a tar archive');
    const broken = await openSandboxPglite(undefined, silentLogger(), file);
    assert.deepEqual((await broken.query('SELECT 1 AS one')).rows, [{ one: 1 }], 'initdb ran instead');
    await broken.close();
  });
});
