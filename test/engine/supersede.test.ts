/**
 * Supersede collapse (SPEC §4.1, §4.2 step 8): while the worker is busy with another record's job,
 * one record is announced 1,000 times over /job/create, each announcement carrying the write date
 * of its change. When the worker is free, the newest announcement runs first, writes the target
 * once and closes the other 999 as skipped — one sync for the whole burst. Real parts throughout:
 * the HTTP app, the supervisor and job actors, the sync table (PGlite and PostgreSQL).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApi, type ApiHarness } from '../support/api.ts';
import { until } from '../support/wait.ts';
import type { StoreKind } from '../support/engine.ts';
import type { JobRow } from '../../src/adapters/syncTable/index.ts';

const ANNOUNCEMENTS = 1000;
const MODEL = 'dbo.Thing';

/** Announces record `id` of FS over the API (the short spelling older clients send). */
async function announce(api: ApiHarness, id: number, at: Date): Promise<number> {
  const iso = at.toISOString();
  const r = await api.get(`/job/create?job_date=${iso}&source_system=fs&source_model=${MODEL}&source_record_id=${id}&job_source_sosync_write_date=${iso}`);
  assert.equal(r.status, 200, r.text);
  return r.json.job_id as number;
}

for (const kind of ['pglite', 'postgres'] as StoreKind[]) {
  describe(`supersede collapse (${kind})`, () => {
    let api: ApiHarness;
    before(async () => {
      api = await startApi(kind);
    });
    after(async () => api.close());

    test(`${ANNOUNCEMENTS} announcements of one record while the worker is busy → exactly one write`, { timeout: 120_000 }, async () => {
      const busy = api.flow.fs.insert({ name: 'busy' });
      const record = api.flow.fs.insert({ name: 'v0' }, { sosyncWriteDate: new Date(Date.UTC(2026, 0, 1)) });
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const writesBySource = new Map<number, number>();
      api.flow.hooks.beforeWrite = async (direction) => {
        writesBySource.set(direction.source.recordId, (writesBySource.get(direction.source.recordId) ?? 0) + 1);
        if (direction.source.recordId === busy.id) await gate;
      };

      const busyJob = await announce(api, busy.id, new Date());
      await until(async () => writesBySource.get(busy.id) === 1, 'the busy job is held in its write');

      // the record changes 1,000 times; each change is announced with its own write date
      const base = Date.UTC(2026, 0, 1, 12);
      const ids: number[] = [];
      for (let i = 1; i <= ANNOUNCEMENTS; i++) {
        const at = new Date(base + i * 1000);
        record.data = { name: `v${i}` };
        record.sosyncWriteDate = at;
        record.writeDate = at;
        ids.push(await announce(api, record.id, at));
      }
      const newest = ids[ids.length - 1];
      assert.equal(writesBySource.get(record.id), undefined, 'nothing of the record ran while the worker was busy');
      assert.equal((await api.get('/service/status')).json.job_worker.current_job_id, busyJob);

      release();
      await until(async () => (await api.table.store.countOpenRootJobs()) === 0, 'the queue is empty', 60_000);
      await api.workers.whenIdle();

      assert.equal(writesBySource.get(record.id), 1, 'exactly one write for the 1,000 announcements');
      const targets = [...api.flow.fso.records.values()].filter((r) => r.foreignId === record.id);
      assert.equal(targets.length, 1, 'one target record');
      assert.deepEqual(targets[0].data, { name: `v${ANNOUNCEMENTS}` }, 'the target has the newest version');
      assert.equal(targets[0].sosyncWriteDate?.getTime(), base + ANNOUNCEMENTS * 1000);

      const rows = (await api.table.db.query<JobRow>(
        `SELECT * FROM sync_table WHERE job_source_record_id = $1 AND job_source_model = $2 ORDER BY job_id`, [record.id, MODEL],
      )).rows;
      assert.equal(rows.length, ANNOUNCEMENTS);
      const done = rows.filter((r) => r.job_state === 'done');
      assert.deepEqual(done.map((r) => r.job_id), [newest], 'the newest announcement is the one that ran');
      assert.equal(done[0].job_run_count, 1);
      const skipped = rows.filter((r) => r.job_state === 'skipped');
      assert.equal(skipped.length, ANNOUNCEMENTS - 1, 'every other announcement is skipped');
      for (const r of skipped) {
        assert.equal(r.job_closed_by_job_id, newest);
        assert.equal(r.job_log, `Skipped due to job_id = ${newest}`);
        assert.equal(r.job_run_count, 0, `job ${r.job_id} never ran`);
        assert.ok(r.job_start && r.job_end, `job ${r.job_id} has job_start and job_end`);
      }
      const busyRow = await api.table.store.getJob(busyJob);
      assert.equal(busyRow?.job_state, 'done');
    });
  });
}
