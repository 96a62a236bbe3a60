/**
 * The sync-table suite, run against both stores: a PostgreSQL server and PGlite.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { migrate, migrations, syncTableColumns, syncTableStatements, claimStatements, type NewJob, type OpenedSyncTable } from '../../src/adapters/syncTable/index.ts';
import { openTable, type StoreKind } from '../support/engine.ts';

const t0 = new Date('2026-03-01T10:00:00.000Z');
const at = (minutes: number) => new Date(t0.getTime() + minutes * 60_000);

function job(overrides: Partial<NewJob> = {}): NewJob {
  return { job_date: t0, job_source_system: 'fs', job_source_model: 'dbo.Person', job_source_record_id: 1, ...overrides };
}

for (const kind of ['postgres', 'pglite'] as StoreKind[]) {
  describe(`sync table on ${kind}`, () => {
    let table: OpenedSyncTable;
    let drop: () => Promise<void>;
    before(async () => {
      ({ table, drop } = await openTable(kind));
    });
    after(async () => drop());
    const clear = () => table.db.query('DELETE FROM sync_table');

    test('migrations ran once; running them again is a no-op', async () => {
      assert.deepEqual(table.migrations.applied, migrations.map((m) => m.version));
      const again = await migrate(table.db);
      assert.deepEqual(again.applied, []);
      const recorded = await table.db.query<{ version: number }>('SELECT version FROM sosync_schema_migrations ORDER BY version');
      assert.deepEqual(recorded.rows.map((r) => r.version), migrations.map((m) => m.version));
    });

    test('every column of SPEC §3 exists with timestamp without time zone for dates', async () => {
      const cols = await table.db.query<{ column_name: string; data_type: string }>(
        `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'sync_table'`);
      const names = cols.rows.map((r) => r.column_name).sort();
      assert.deepEqual(names, syncTableColumns.map(([n]) => n).sort());
      for (const r of cols.rows) {
        if (/(_date|_start|_end|_fetched|_last_change)$/.test(r.column_name)) {
          assert.equal(r.data_type, 'timestamp without time zone', r.column_name);
        }
      }
    });

    test('a new job: state new, run count 0, fetched now, dates kept in UTC', async () => {
      await clear();
      const created = await table.store.createJob(job({ job_source_sosync_write_date: new Date('2026-03-01T09:59:59.123Z'), job_source_fields: '{"a":1}' }));
      assert.equal(created.job_state, 'new');
      assert.equal(created.job_run_count, 0);
      assert.ok(created.job_fetched instanceof Date);
      assert.ok(Math.abs(created.job_fetched!.getTime() - Date.now()) < 60_000);
      const read = await table.store.getJob(created.job_id);
      assert.equal(read!.job_date!.toISOString(), t0.toISOString());
      assert.equal(read!.job_source_sosync_write_date!.toISOString(), '2026-03-01T09:59:59.123Z');
      const text = await table.db.query<{ t: string }>(`SELECT job_date::text AS t FROM sync_table WHERE job_id = $1`, [created.job_id]);
      assert.equal(text.rows[0].t, '2026-03-01 10:00:00', 'stored as UTC wall time');
      assert.equal(await table.store.getJob(999999), null);
    });

    test('pickNextJob: a root job in error_retry competes once its next attempt is due; nextRetryAt names the first', async () => {
      await clear();
      const now = at(100);
      const due = await table.store.createJob(job({ job_date: at(1) }));
      const later = await table.store.createJob(job({ job_date: at(2) }));
      const open = await table.store.createJob(job({ job_date: at(3) }));
      await table.store.updateJob(due.job_id, { job_state: 'error_retry', job_retry_at: at(99) });
      await table.store.updateJob(later.job_id, { job_state: 'error_retry', job_retry_at: at(150) });
      const parent = await table.store.createJob(job({ job_date: at(50) }));
      await table.store.updateJob(parent.job_id, { job_state: 'done' });
      const { job: child } = await table.store.findOrCreateChildJob(parent.job_id, 'fso', 'res.company', 3, at(0));
      await table.store.updateJob(child.job_id, { job_state: 'error_retry', job_retry_at: at(0) });
      assert.equal((await table.store.pickNextJob(now))!.job_id, open.job_id, 'the newer announcement first (job_date descending)');
      await table.store.updateJob(open.job_id, { job_state: 'done' });
      assert.equal((await table.store.pickNextJob(now))!.job_id, due.job_id, 'then the due retry, as if it were new');
      await table.store.updateJob(due.job_id, { job_state: 'done' });
      assert.equal(await table.store.pickNextJob(now), null, 'a retry not yet due and a child in error_retry are not picked');
      assert.equal((await table.store.nextRetryAt())!.getTime(), at(150).getTime());
      assert.equal((await table.store.pickNextJob(at(150)))!.job_id, later.job_id);
    });

    test('pickNextJob: inprogress first, then priority descending, job_date descending, job_id (SPEC §4.1)', async () => {
      await clear();
      const old = await table.store.createJob(job({ job_date: at(1) }));
      const newest = await table.store.createJob(job({ job_date: at(5) }));
      const sameDate = await table.store.createJob(job({ job_date: at(5) }));
      const urgent = await table.store.createJob(job({ job_date: at(0), job_priority: 2000 }));
      const lowly = await table.store.createJob(job({ job_date: at(30), job_priority: 10 }));
      const running = await table.store.createJob(job({ job_date: at(-50), job_priority: 1 }));
      await table.store.startJob(running.job_id);
      const doneJob = await table.store.createJob(job({ job_date: at(40), job_priority: 9000 }));
      await table.store.updateJob(doneJob.job_id, { job_state: 'done' });
      const parent = await table.store.createJob(job({ job_date: at(2) }));
      await table.store.findOrCreateChildJob(parent.job_id, 'fso', 'res.company', 3, at(100));
      const order: number[] = [];
      for (;;) {
        const next = await table.store.pickNextJob();
        if (!next) break;
        order.push(next.job_id);
        await table.store.updateJob(next.job_id, { job_state: 'done' });
      }
      assert.deepEqual(order, [running.job_id, urgent.job_id, newest.job_id, sameDate.job_id, parent.job_id, old.job_id, lowly.job_id]);
      assert.equal((await table.store.createJob(job())).job_priority, 1000, 'default priority');
    });

    test('startJob: inprogress, job_start, run count + 1', async () => {
      await clear();
      const j = await table.store.createJob(job());
      const s1 = await table.store.startJob(j.job_id);
      const s2 = await table.store.startJob(j.job_id);
      assert.equal(s1.job_state, 'inprogress');
      assert.equal(s2.job_run_count, 2);
      assert.ok(s2.job_start instanceof Date);
    });

    test('findOrCreateChildJob finds the same child again', async () => {
      await clear();
      const parent = await table.store.createJob(job());
      const a = await table.store.findOrCreateChildJob(parent.job_id, 'fso', 'res.partner', 7, t0);
      const b = await table.store.findOrCreateChildJob(parent.job_id, 'fso', 'res.partner', 7, t0);
      const c = await table.store.findOrCreateChildJob(parent.job_id, 'fso', 'res.company', 7, t0);
      assert.equal(a.created, true);
      assert.equal(b.created, false);
      assert.equal(a.job.job_id, b.job.job_id);
      assert.notEqual(c.job.job_id, a.job.job_id);
      assert.equal(a.job.parent_job_id, parent.job_id);
      assert.equal(a.job.job_state, 'new');
    });

    test('finishJob records the outcome, flags the row for the protocol and skips older new, error and error_retry jobs of the same record only', async () => {
      await clear();
      const older = await table.store.createJob(job({ job_source_sosync_write_date: at(1) }));
      const olderError = await table.store.createJob(job({ job_source_sosync_write_date: at(2) }));
      const errorStart = at(3);
      await table.store.updateJob(olderError.job_id, { job_state: 'error', job_error_code: 'transformation', job_start: errorStart, job_end: at(3) });
      const olderRetry = await table.store.createJob(job({ job_source_sosync_write_date: at(2) }));
      await table.store.updateJob(olderRetry.job_id, { job_state: 'error_retry' });
      const olderInProgress = await table.store.createJob(job({ job_source_sosync_write_date: at(1) }));
      await table.store.startJob(olderInProgress.job_id);
      const olderDone = await table.store.createJob(job({ job_source_sosync_write_date: at(1) }));
      await table.store.updateJob(olderDone.job_id, { job_state: 'done' });
      const newer = await table.store.createJob(job({ job_source_sosync_write_date: at(10) }));
      const otherRecord = await table.store.createJob(job({ job_source_record_id: 2, job_source_sosync_write_date: at(1) }));
      const otherSystem = await table.store.createJob(job({ job_source_system: 'fso', job_source_model: 'dbo.Person', job_source_sosync_write_date: at(1) }));
      const noDate = await table.store.createJob(job());
      const closer = await table.store.startJob((await table.store.createJob(job({ job_source_sosync_write_date: at(5) }))).job_id);
      const { job: finished, closedJobs: closed } = await table.store.finishJob(closer, { job_state: 'done', job_end: at(6), job_log: 'model up to date' });
      assert.deepEqual(closed, [older.job_id, olderError.job_id, olderRetry.job_id]);
      assert.deepEqual(
        [finished.job_state, finished.job_end?.toISOString(), finished.job_log, finished.job_to_fso_can_sync],
        ['done', at(6).toISOString(), 'model up to date', true],
        'the outcome and the protocol flag are stored with the closing',
      );
      assert.equal(finished.job_start?.toISOString(), closer.job_start?.toISOString(), 'columns the outcome does not name are kept');
      assert.equal('closed_job_ids' in finished, false, 'the row is the table row only');
      for (const id of closed) {
        const row = (await table.store.getJob(id))!;
        assert.equal(row.job_state, 'skipped');
        assert.equal(row.job_closed_by_job_id, closer.job_id);
        assert.equal(row.job_log, `Skipped due to job_id = ${closer.job_id}`);
        assert.ok(row.job_start instanceof Date, `job ${id} has job_start`);
        assert.ok(row.job_end instanceof Date, `job ${id} has job_end`);
        assert.equal(row.job_to_fso_can_sync, true);
      }
      assert.equal((await table.store.getJob(olderError.job_id))!.job_start!.toISOString(), errorStart.toISOString(), 'a start it had is kept');
      for (const id of [olderInProgress.job_id, olderDone.job_id, newer.job_id, otherRecord.job_id, otherSystem.job_id, noDate.job_id]) {
        assert.notEqual((await table.store.getJob(id))!.job_state, 'skipped', `job ${id} untouched`);
      }
      const noDateEnd = await table.store.finishJob(noDate, { job_state: 'error', job_error_code: 'sync_source', job_end: at(7) });
      assert.deepEqual(noDateEnd.closedJobs, [], 'a job without write date closes nothing');
      assert.equal(noDateEnd.job.job_state, 'error');
    });

    test('finishJob of a parent that ends done or error closes its children still open; one that will be retried keeps them', async () => {
      await clear();
      const childOf = async (parentId: number, recordId: number, state: 'new' | 'error_retry' | 'done' | 'error' | 'inprogress') => {
        const { job: child } = await table.store.findOrCreateChildJob(parentId, 'fso', 'res.company', recordId, at(1));
        if (state !== 'new') await table.store.updateJob(child.job_id, { job_state: state });
        return child.job_id;
      };
      const parent = await table.store.startJob((await table.store.createJob(job({ job_source_sosync_write_date: at(5) }))).job_id);
      const open = [await childOf(parent.job_id, 1, 'new'), await childOf(parent.job_id, 2, 'error_retry'), await childOf(parent.job_id, 3, 'inprogress')];
      const ended = [await childOf(parent.job_id, 4, 'done'), await childOf(parent.job_id, 5, 'error')];
      const retried = await table.store.startJob((await table.store.createJob(job({ job_source_record_id: 9, job_source_sosync_write_date: at(5) }))).job_id);
      const waiting = await childOf(retried.job_id, 6, 'error_retry');

      const { closedJobs } = await table.store.finishJob(parent, { job_state: 'done', job_end: at(6), job_log: 'model up to date' });
      assert.deepEqual(closedJobs, open, 'the open children are reported closed');
      for (const id of open) {
        const row = (await table.store.getJob(id))!;
        assert.deepEqual([row.job_state, row.job_closed_by_job_id], ['skipped', parent.job_id], `child ${id}`);
        assert.ok(row.job_start instanceof Date && row.job_end instanceof Date, `child ${id} has job_start and job_end`);
        assert.match(row.job_log ?? '', new RegExp(`its parent job ${parent.job_id} ended without running it again`));
      }
      assert.deepEqual(await Promise.all(ended.map(async (id) => (await table.store.getJob(id))!.job_state)), ['done', 'error'], 'ended children stay as they were');

      await table.store.finishJob(retried, { job_state: 'error_retry', job_error_code: 'child_job', job_retry_at: at(7), job_end: at(6) });
      assert.equal((await table.store.getJob(waiting))!.job_state, 'error_retry', "a parent in error_retry keeps its child for its next attempt");
    });

    test('finishJob stores all of it or nothing: a refused skip leaves the outcome unrecorded and the row inprogress', async () => {
      await clear();
      const older = await table.store.createJob(job({ job_source_sosync_write_date: at(1) }));
      const closer = await table.store.startJob((await table.store.createJob(job({ job_source_sosync_write_date: at(5) }))).job_id);
      await table.db.query(`ALTER TABLE sync_table ADD CONSTRAINT store_test_no_skip CHECK (job_state <> 'skipped') NOT VALID`);
      try {
        await assert.rejects(table.store.finishJob(closer, { job_state: 'done', job_end: at(6) }), /store_test_no_skip/);
      } finally {
        await table.db.query('ALTER TABLE sync_table DROP CONSTRAINT store_test_no_skip');
      }
      const row = (await table.store.getJob(closer.job_id))!;
      assert.deepEqual([row.job_state, row.job_end, row.job_to_fso_can_sync], ['inprogress', null, false], 'the outcome is not stored');
      assert.equal((await table.store.getJob(older.job_id))!.job_state, 'new', 'the older job is not closed');
      await assert.rejects(table.store.finishJob({ ...closer, job_id: 987_654 }, { job_state: 'done' }), /sync_table has no job 987654/);
      await assert.rejects(table.store.finishJob(closer, { no_such_column: 1 } as never), /sync_table has no column no_such_column/);
    });

    test('listJobs streams in batches with filters, order, offset and cursor', async () => {
      await clear();
      const ids: number[] = [];
      for (let i = 0; i < 23; i++) {
        const j = await table.store.createJob(job({
          job_date: at(i),
          job_source_system: i % 2 ? 'fso' : 'fs',
          job_source_model: i % 3 ? 'dbo.Person' : 'dbo.xBPKAccount',
          job_source_record_id: i + 1,
        }));
        ids.push(j.job_id);
      }
      await table.store.updateJob(ids[4], { job_state: 'error' });
      const collect = async (filter: Parameters<typeof table.store.listJobs>[0], batch = 5) => {
        const out: number[] = [];
        for await (const row of table.store.listJobs(filter, batch)) out.push(row.job_id);
        return out;
      };
      assert.deepEqual(await collect({ limit: 100, order: 'asc' }), ids);
      assert.deepEqual(await collect({ limit: 7, order: 'desc' }), ids.slice().reverse().slice(0, 7));
      assert.deepEqual(await collect({ limit: 4, order: 'asc', offset: 10 }), ids.slice(10, 14));
      assert.deepEqual(await collect({ limit: 3, order: 'asc', cursor: ids[19] }), ids.slice(20, 23));
      assert.deepEqual(await collect({ limit: 100, order: 'asc', state: ['error'] }), [ids[4]]);
      assert.deepEqual(await collect({ limit: 100, order: 'asc', system: 'fso' }), ids.filter((_, i) => i % 2));
      assert.deepEqual(await collect({ limit: 100, order: 'asc', model: 'dbo.xBPKAccount' }), ids.filter((_, i) => i % 3 === 0));
      assert.deepEqual(await collect({ limit: 100, order: 'asc', since: at(20) }), ids.slice(20));
      assert.deepEqual(await collect({ limit: 100, order: 'asc', since: at(2), until: at(4) }), ids.slice(2, 4));
    });

    test('listJobs never holds more than one batch: a long list is read in several bounded queries', async () => {
      await clear();
      await table.db.query(`INSERT INTO sync_table (job_date, job_source_system, job_source_model, job_source_record_id, job_fetched)
        SELECT now(), 'fs', 'dbo.Person', g, now() FROM generate_series(1, 1200) AS g`);
      const original = table.db.query.bind(table.db);
      const batchSizes: number[] = [];
      (table.db as { query: typeof original }).query = (async (sql: string, params?: unknown[]) => {
        const result = await original(sql, params);
        if (/FROM sync_table/.test(sql) && /^\s*SELECT \*/.test(sql)) batchSizes.push(result.rows.length);
        return result;
      }) as typeof original;
      try {
        let rows = 0;
        for await (const row of table.store.listJobs({ limit: 1_000_000, order: 'asc' }, 250)) {
          assert.ok(row.job_id > 0);
          rows++;
        }
        assert.equal(rows, 1200);
        assert.deepEqual(batchSizes, [250, 250, 250, 250, 200]);
      } finally {
        (table.db as { query: typeof original }).query = original;
      }
    });

    test('protocol bookkeeping: pending until copied; a later change makes it pending again', async () => {
      await clear();
      const a = await table.store.createJob(job());
      const b = await table.store.createJob(job({ job_source_record_id: 2 }));
      await table.store.updateJob(a.job_id, { job_to_fso_can_sync: true });
      assert.deepEqual((await table.store.protocolPending(10)).map((r) => r.job_id), [a.job_id]);
      const pending = (await table.store.protocolPending(10))[0];
      await table.store.markProtocolSynced([{ jobId: a.job_id, fsoId: 77, copiedLastChange: pending.job_last_change }], new Date());
      assert.equal(await table.store.countProtocolPending(), 0);
      assert.equal((await table.store.getJob(a.job_id))!.job_fso_id, 77);
      await new Promise((r) => setTimeout(r, 5));
      await table.store.updateJob(a.job_id, { job_log: 'changed' });
      assert.equal(await table.store.countProtocolPending(), 1);
      // a row that changed while it was being copied stays pending
      const stale = (await table.store.protocolPending(10))[0];
      await new Promise((r) => setTimeout(r, 5));
      await table.store.updateJob(a.job_id, { job_log: 'changed again' });
      await table.store.markProtocolSynced([{ jobId: a.job_id, fsoId: 77, copiedLastChange: stale.job_last_change }], new Date());
      assert.equal(await table.store.countProtocolPending(), 1);
      void b;
    });

    test('protocol bookkeeping for a batch: one statement records every copy; a row changed meanwhile stays pending alone', async () => {
      await clear();
      const rows = [];
      for (let i = 1; i <= 3; i++) {
        const created = await table.store.createJob(job({ job_source_record_id: i }));
        await table.store.updateJob(created.job_id, { job_to_fso_can_sync: true });
        rows.push(created.job_id);
      }
      const read = await table.store.protocolPending(10);
      await new Promise((r) => setTimeout(r, 5));
      await table.store.updateJob(rows[1], { job_log: 'changed while copied' });
      const statements: string[] = [];
      const original = table.db.query.bind(table.db);
      (table.db as { query: typeof original }).query = (async (text: string, params?: unknown[]) => {
        statements.push(text);
        return original(text, params);
      }) as typeof original;
      try {
        await table.store.markProtocolSynced(read.map((r, i) => ({ jobId: r.job_id, fsoId: 500 + i, copiedLastChange: r.job_last_change })), new Date());
      } finally {
        (table.db as { query: typeof original }).query = original;
      }
      assert.equal(statements.length, 1, 'one statement');
      assert.deepEqual((await table.store.protocolPending(10)).map((r) => r.job_id), [rows[1]]);
      for (const [i, id] of rows.entries()) assert.equal((await table.store.getJob(id))!.job_fso_id, 500 + i, 'every FSO id kept');
    });

    test('the store\'s own pick-next (alone and starting its job), a parallel worker\'s claim, open-jobs count and supersede statements use their indexes over 20,000 rows (EXPLAIN)', async () => {
      await clear();
      await table.db.query(`
        INSERT INTO sync_table (job_date, job_priority, job_source_system, job_source_model, job_source_record_id, job_state,
                                job_source_sosync_write_date, job_fetched, parent_job_id)
        SELECT timestamp '2026-01-01' + g * interval '1 second', 1000 + (g % 7) * 500,
               CASE WHEN g % 2 = 0 THEN 'fs' ELSE 'fso' END, 'dbo.Person', g % 5000 + 1,
               CASE WHEN g % 500 = 0 THEN 'new' WHEN g % 997 = 0 THEN 'inprogress' WHEN g % 301 = 0 THEN 'error' ELSE 'done' END,
               timestamp '2026-01-01' + g * interval '1 second', now(), CASE WHEN g % 1000 = 1 THEN g - 1 END
          FROM generate_series(1, 20000) AS g`);
      await table.db.query('ANALYZE sync_table');
      const plan = async (sql: string, params: unknown[] = []) =>
        (await table.db.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, params)).rows.map((r) => r['QUERY PLAN']).join('\n');
      const uses = (text: string, index: string) => {
        assert.match(text, new RegExp(`Index (Only )?Scan.* using ${index}\\b|Bitmap Index Scan on ${index}\\b`), text);
        assert.doesNotMatch(text, /Seq Scan/, text);
      };
      // the store's own pick: open jobs and due retries, each branch from its own index
      const pick = await plan(syncTableStatements.pickNextJob, [t0]);
      uses(pick, 'sync_table_pick_next');
      uses(pick, '(sync_table_retry_due|sync_table_state)');
      // prepared (queryPrepared), the server may switch to a generic plan: it uses the same indexes
      const generic = await table.db.transaction(async (tx) => {
        await tx.query(`SET LOCAL plan_cache_mode = force_generic_plan`);
        await tx.query(`PREPARE pick_generic AS ${syncTableStatements.pickNextJob}`);
        try {
          return (await tx.query<{ 'QUERY PLAN': string }>(`EXPLAIN EXECUTE pick_generic('2026-03-01T10:00:00')`)).rows.map((r) => r['QUERY PLAN']).join('\n');
        } finally {
          await tx.query('DEALLOCATE pick_generic');
        }
      });
      uses(generic, 'sync_table_pick_next');
      uses(generic, '(sync_table_retry_due|sync_table_state)');
      // the pick that starts its job: the same indexes find it, the primary key updates it
      const pickAndStart = await plan(syncTableStatements.pickAndStartJob, [t0]);
      uses(pickAndStart, 'sync_table_pick_next');
      uses(pickAndStart, '(sync_table_retry_due|sync_table_state)');
      uses(pickAndStart, 'sync_table_pkey');
      // a parallel worker's claim: the same two indexes give each branch's head
      const claim = await plan(claimStatements.head, [[1, 2], t0]);
      uses(claim, 'sync_table_pick_next');
      uses(claim, '(sync_table_retry_due|sync_table_state)');
      const wake = await plan(`SELECT min(job_retry_at) FROM sync_table WHERE parent_job_id IS NULL AND job_state = 'error_retry'`);
      assert.doesNotMatch(wake, /Seq Scan/, wake);
      // the status count: either partial index answers it, never a scan of the table
      uses(await plan(syncTableStatements.countOpenRootJobs), '(sync_table_pick_next|sync_table_state)');
      // a child job is found by an index (its parent's children, or its model's rows when they are fewer)
      uses(await plan(syncTableStatements.findOrCreateChildJob, [1, 'fso', 'res.partner', 42, t0, 1000, t0]), '(sync_table_children|sync_table_model_state)');
      // finishing: the row by its primary key, the jobs it supersedes by their record
      const finish = await plan(syncTableStatements.finishJob('job_state = $8'), [1, 42, 'dbo.Person', 'fs', t0, 'Skipped due to job_id = 1', t0, 'done']);
      uses(finish, 'sync_table_pkey');
      uses(finish, 'sync_table_supersedable_by_source_record');
      assert.equal(Number((await table.db.query<{ n: string }>('SELECT count(*) AS n FROM sync_table')).rows[0].n), 20000);
    });

    // a prepared SELECT * fails with 0A000 once the table's columns change: without the fallback to
    // an unprepared query this test fails, which also shows that the pick is prepared
    test('the prepared pick still picks after the table gained or lost a column', async () => {
      await clear();
      const first = await table.store.createJob(job({ job_date: at(1) }));
      assert.equal((await table.store.pickNextJob())!.job_id, first.job_id);
      await table.db.query('ALTER TABLE sync_table ADD COLUMN bench_extra integer');
      try {
        // every connection of the pool may hold the prepared pick: more picks than connections
        for (let i = 0; i < 8; i++) assert.equal((await table.store.pickNextJob())!.job_id, first.job_id);
      } finally {
        await table.db.query('ALTER TABLE sync_table DROP COLUMN bench_extra');
      }
      assert.equal((await table.store.pickNextJob())!.job_id, first.job_id);
    });
  });
}

describe('an older sync_table is adopted', () => {
  for (const kind of ['postgres', 'pglite'] as StoreKind[]) {
    test(`on ${kind}: missing columns are added, rows kept`, async () => {
      const { table, drop } = await openTable(kind);
      try {
        // simulate an installation from before the protocol and hierarchy columns
        // (CASCADE: with the claim function of migration 8, which returns its rows)
        await table.db.query('DROP TABLE sync_table CASCADE');
        await table.db.query('DELETE FROM sosync_schema_migrations');
        await table.db.query(`CREATE TABLE sync_table (job_id serial primary key, job_date timestamp, job_source_system varchar(3),
          job_source_model varchar(200), job_source_record_id integer not null, job_state varchar(20) not null default 'new')`);
        await table.db.query(`INSERT INTO sync_table (job_date, job_source_system, job_source_model, job_source_record_id, job_state)
          VALUES ('2020-01-01', 'fs', 'dbo.Person', 5, 'done'), ('2020-01-02', 'fso', 'res.partner', 6, 'new')`);
        const report = await migrate(table.db);
        assert.deepEqual(report.applied, migrations.map((m) => m.version));
        const rows = await table.db.query<{ job_id: number; job_run_count: number; job_to_fso_can_sync: boolean; job_priority: number }>(
          'SELECT * FROM sync_table ORDER BY job_id');
        assert.equal(rows.rows.length, 2);
        assert.equal(rows.rows[0].job_run_count, 0);
        assert.equal(rows.rows[1].job_to_fso_can_sync, false);
        assert.equal(rows.rows[1].job_priority, 1000);
        const next = await table.store.pickNextJob();
        assert.equal(next!.job_source_record_id, 6);
      } finally {
        await drop();
      }
    });
  }
});
