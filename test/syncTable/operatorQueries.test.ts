/**
 * The sync-table side of the operator features on both stores: the statistics and the cleanup
 * batch are served by indexes (EXPLAIN over 20,000 rows), and the cleanup of old finished jobs
 * removes exactly the old done/skipped root jobs with their children, in batches, without
 * waiting for rows another session holds.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { openTable, type StoreKind } from '../support/engine.ts';
import { FinishedJobCleanup, openSyncTable, type NewJob, type OpenedSyncTable, type SqlStatement } from '../../src/adapters/syncTable/index.ts';
import { silentLogger } from '../../src/log.ts';
import { until } from '../support/wait.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';

const DAY = 24 * 60 * 60 * 1000;
const job = (recordId: number, parent: number | null = null): NewJob =>
  ({ job_date: new Date(), job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: recordId, parent_job_id: parent });

async function planOf(table: OpenedSyncTable, statement: SqlStatement): Promise<string> {
  const result = await table.db.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${statement.sql}`, statement.params);
  return result.rows.map((r) => r['QUERY PLAN']).join('\n');
}

for (const kind of ['postgres', 'pglite'] as StoreKind[]) {
  describe(`statistics and cleanup statements use indexes (${kind}, 20,000 rows)`, () => {
    let table: OpenedSyncTable;
    let drop: () => Promise<void>;
    before(async () => {
      ({ table, drop } = await openTable(kind));
      const models = ['dbo.Person', 'res.partner', 'dbo.xBPKAccount', 'res.company', 'dbo.PersonBPK'];
      await table.store.createJobs(Array.from({ length: 20_000 }, (_, i) => ({ ...job(i + 1), job_source_model: models[i % models.length] })));
      // mostly finished jobs, as in production; some open, some failed
      await table.db.query(`UPDATE sync_table SET
          job_state = (ARRAY['done','done','done','done','done','skipped','error','new','inprogress','error_retry'])[1 + job_id % 10],
          job_end = CASE WHEN job_id % 10 < 7 OR job_id % 10 = 9 THEN now() - (job_id || ' minutes')::interval END,
          job_error_code = CASE WHEN job_id % 10 IN (6, 9) THEN 'sync_source' END`);
      await table.db.query('VACUUM ANALYZE sync_table');
    });
    after(async () => drop());

    const statements = () => ({
      ...table.store.statisticStatements(),
      cleanup_batch: table.store.finishedJobsBatchStatement(new Date(Date.now() - 5 * DAY), 200),
    });

    test('no statement reads sync_table sequentially; each uses one of its indexes', async () => {
      for (const [name, statement] of Object.entries(statements())) {
        const plan = await planOf(table, statement);
        assert.doesNotMatch(plan, /Seq Scan on sync_table/, `${name}:\n${plan}`);
        assert.match(plan, /Index (Only )?Scan using sync_table_\w+ on sync_table/, `${name}:\n${plan}`);
      }
    });

    test('the counts come from the indexes alone (index-only scans)', async () => {
      const { by_model_and_state, errors_by_code, finished_per_hour } = table.store.statisticStatements();
      assert.match(await planOf(table, by_model_and_state), /Index Only Scan using sync_table_model_state/);
      assert.match(await planOf(table, errors_by_code), /Index Only Scan using sync_table_failed/);
      assert.match(await planOf(table, finished_per_hour), /Index Only Scan using sync_table_finished/);
    });

    test('and they count right', async () => {
      const stats = await table.store.jobStatistics();
      assert.equal(stats.by_model_and_state.reduce((n, r) => n + r.count, 0), 20_000);
      assert.equal(stats.by_model_and_state.filter((r) => r.state === 'done').reduce((n, r) => n + r.count, 0), 10_000);
      assert.deepEqual(stats.errors_by_code, [{ code: 'sync_source', count: 4_000 }]);
      assert.equal(stats.oldest_open_job?.job_id, 7);
    });
  });

  describe(`cleanup of old finished jobs (${kind})`, () => {
    let table: OpenedSyncTable;
    let drop: () => Promise<void>;
    before(async () => { ({ table, drop } = await openTable(kind)); });
    after(async () => drop());

    const finish = (id: number, state: string, daysAgo: number, extra: Record<string, unknown> = {}) =>
      table.store.updateJob(id, { job_state: state as never, job_end: new Date(Date.now() - daysAgo * DAY), ...extra });
    const remaining = async () => (await table.db.query<{ job_id: number }>('SELECT job_id FROM sync_table ORDER BY job_id')).rows.map((r) => r.job_id);

    /** Old and new, finished and open root jobs; returns the ids by role. */
    async function arrange() {
      await table.db.query('DELETE FROM sync_table');
      const [oldDone, oldSkipped, recentDone, oldError, oldPending, openRoot] = await table.store.createJobs([job(1), job(2), job(3), job(4), job(5), job(6)]);
      const [child, openChild] = await table.store.createJobs([job(11, oldDone), job(12, oldDone)]);
      const [grandchild] = await table.store.createJobs([job(21, child)]);
      const [oldChildOfOpen] = await table.store.createJobs([job(31, openRoot)]);
      // copied to FSO after its last change (updateJob stamps job_last_change with now)
      await finish(oldDone, 'done', 100, { job_to_fso_can_sync: true, job_to_fso_sync_date: new Date(Date.now() + 60_000) });
      await finish(child, 'done', 100);
      await finish(grandchild, 'done', 100);
      await finish(oldSkipped, 'skipped', 95);
      await finish(recentDone, 'done', 10);
      await finish(oldError, 'error', 200);
      // finished long ago but not yet copied to FSO: the protocol still needs it
      await finish(oldPending, 'done', 100, { job_to_fso_can_sync: true });
      await finish(oldChildOfOpen, 'done', 100);
      return { oldDone, child, openChild, grandchild, oldSkipped, recentDone, oldError, oldPending, openRoot, oldChildOfOpen };
    }

    test('removes old done/skipped root jobs with all their children; keeps everything else', async () => {
      const j = await arrange();
      const cleanup = new FinishedJobCleanup({ store: table.store, keepFinishedDays: 90, logger: silentLogger(), batchSize: 1, pauseMs: 1 });
      assert.equal(await cleanup.runNow(), 5);
      assert.deepEqual(await remaining(), [j.recentDone, j.oldError, j.oldPending, j.openRoot, j.oldChildOfOpen].sort((a, b) => a - b));
      const status = cleanup.status();
      assert.equal(status.last_run_rows_removed, 5);
      assert.equal(status.rows_removed_total, 5);
      assert.equal(cleanup.rowsRemovedTotal, 5);
      assert.equal(status.keep_finished_days, 90);
      assert.ok(status.last_run_end instanceof Date);
      assert.equal(status.last_error, null);
      assert.equal(await cleanup.runNow(), 0);
      assert.equal(cleanup.status().rows_removed_total, 5);
    });

    test('one batch takes at most its batch size of root jobs (with their children)', async () => {
      const j = await arrange();
      const cutoff = new Date(Date.now() - 90 * DAY);
      assert.equal(await table.store.deleteFinishedJobsBatch(cutoff, 1), 4, 'the oldest-ending root first: the done one with its 3 descendants');
      assert.ok((await remaining()).includes(j.oldSkipped));
      assert.equal(await table.store.deleteFinishedJobsBatch(cutoff, 1), 1);
      assert.equal(await table.store.deleteFinishedJobsBatch(cutoff, 1), 0);
    });

    test('runs by itself on its timer', async () => {
      const j = await arrange();
      const cleanup = new FinishedJobCleanup({ store: table.store, keepFinishedDays: 90, logger: silentLogger(), firstRunMs: 5, intervalMs: 20, pauseMs: 1 });
      cleanup.start();
      try {
        await until(async () => !(await remaining()).includes(j.oldSkipped), 'the timer to remove the old jobs');
        await finish(j.recentDone, 'done', 120);
        await until(async () => !(await remaining()).includes(j.recentDone), 'a later run to remove a job that aged since');
      } finally {
        await cleanup.stop();
      }
    });

    test('a job tree is stored whole or not at all', async () => {
      await table.db.query('DELETE FROM sync_table');
      // the grandchild's model is too long for its column: the third insert fails
      const tree = { job: job(1), children: [{ job: job(2), children: [{ job: { ...job(3), job_source_model: 'm'.repeat(300) }, children: [] }] }] };
      await assert.rejects(table.store.createJobTree(tree), /too long/);
      assert.deepEqual(await remaining(), []);
    });

    test('keep_finished_days = 0 keeps everything', async () => {
      await arrange();
      const before = await remaining();
      const cleanup = new FinishedJobCleanup({ store: table.store, keepFinishedDays: 0, logger: silentLogger() });
      cleanup.start();
      assert.equal(await cleanup.runNow(), 0);
      assert.equal(cleanup.status().enabled, false);
      assert.deepEqual(await remaining(), before);
      await cleanup.stop();
    });
  });
}

describe('cleanup never waits for a row another session holds (postgres)', () => {
  let database: TestDatabase;
  let table: OpenedSyncTable;
  before(async () => {
    database = await createTestDatabase();
    table = await openSyncTable({ kind: 'postgres', ...database.config });
  });
  after(async () => {
    await table.db.close();
    await database.drop();
  });

  test('a locked old root job is skipped and removed on a later run', async () => {
    const [held, free] = await table.store.createJobs([job(1), job(2)]);
    for (const id of [held, free]) await table.store.updateJob(id, { job_state: 'done', job_end: new Date(Date.now() - 100 * DAY) });
    const other = new pg.Client(database.config);
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query('SELECT job_id FROM sync_table WHERE job_id = $1 FOR UPDATE', [held]);
      const cleanup = new FinishedJobCleanup({ store: table.store, keepFinishedDays: 90, logger: silentLogger(), pauseMs: 1 });
      let finished = false;
      const run = cleanup.runNow().then((n) => { finished = true; return n; });
      await until(() => finished, 'the cleanup to finish while a row is locked');
      assert.equal(await run, 1);
      await other.query('COMMIT');
      assert.equal(await cleanup.runNow(), 1);
      assert.equal((await table.db.query('SELECT 1 FROM sync_table')).rowCount, 0);
    } finally {
      await other.query('ROLLBACK').catch(() => undefined);
      await other.end();
    }
  });
});
