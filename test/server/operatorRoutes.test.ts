/**
 * The operators' routes (issue 16) through the running HTTP app over a real sync table, on both
 * stores: bulk and tree creation, retrying failed jobs, job trees, statistics and the flow map.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { XMLParser } from 'fast-xml-parser';
import { startApi, type ApiHarness } from '../support/api.ts';
import type { StoreKind } from '../support/engine.ts';
import type { JobRow } from '../../src/adapters/syncTable/index.ts';
import { until } from '../support/wait.ts';

const xml = new XMLParser();
const XML = { accept: 'application/xml' };
const JSON_TYPE = 'application/json';

const announcement = (i: number, extra: Record<string, unknown> = {}) => ({
  job_date: '2026-03-01T10:00:00Z', job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: i, ...extra,
});

for (const kind of ['postgres', 'pglite'] as StoreKind[]) {
  describe(`operator routes on ${kind}`, () => {
    let api: ApiHarness;
    before(async () => {
      api = await startApi(kind);
      // the worker stays away from the rows these tests arrange
      api.workers.supervisor.send({ type: 'STOP' });
    });
    after(async () => api.close());
    const count = async () => Number((await api.table.db.query<{ n: string }>('SELECT count(*) AS n FROM sync_table')).rows[0].n);
    const row = async (id: number) => (await api.table.store.getJob(id))!;

    describe('POST /job/bulk-create', () => {
      test('stores every announcement (both spellings, all fields) and answers the ids in order', async () => {
        const body = [
          announcement(1),
          { job_date: '2026-03-01 10:00:00', source_system: 'fso', source_model: 'x.thing', source_record_id: '2', job_priority: 7 },
          announcement(3, { job_source_fields: { Vorname: 'Ä' }, job_source_type: 'delete', job_source_sosync_write_date: '2026-03-01T09:00:00.250Z' }),
        ];
        const r = await api.post('/job/bulk-create', JSON.stringify(body), JSON_TYPE);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.error_code, 0);
        assert.equal(r.json.count, 3);
        assert.deepEqual(r.json.errors, []);
        const rows = await Promise.all(r.json.job_ids.map(row));
        assert.deepEqual(rows.map((j: JobRow) => [j.job_source_system, j.job_source_model, j.job_source_record_id]), [['fs', 'dbo.Thing', 1], ['fso', 'x.thing', 2], ['fs', 'dbo.Thing', 3]]);
        assert.equal(rows[1].job_priority, 7);
        assert.equal(rows[2].job_source_type, 'delete');
        assert.equal(rows[2].job_source_sosync_write_date!.toISOString(), '2026-03-01T09:00:00.250Z');
        assert.deepEqual(JSON.parse(rows[2].job_source_fields!), { Vorname: 'Ä' });
        assert.ok(rows.every((j: JobRow) => j.job_state === 'new' && j.job_run_count === 0 && j.parent_job_id === null && j.job_fetched !== null));
      });

      test('one bad element: 400, every problem with its index and field, and nothing stored', async () => {
        const before = await count();
        const body = [announcement(1), announcement(0), { job_date: 'yesterday', job_source_system: 'fs', job_source_model: 'res.users' }, 'text', announcement(5)];
        for (const headers of [{}, XML]) {
          const r = await api.post('/job/bulk-create', JSON.stringify(body), JSON_TYPE, headers);
          assert.equal(r.status, 400, r.text);
          const answer = 'accept' in headers ? xml.parse(r.text).bulk_result : r.json;
          assert.equal(answer.error_code, 1, 'a missing field makes it an InterfaceError');
          const errors = [answer.errors].flat().map((e: any) => `${e.index} ${e.field}: ${e.problem}`);
          assert.deepEqual(errors.sort(), [
            '1 job_source_record_id: "0" is not a positive 32-bit integer',
            '2 job_date: "yesterday" is not a date (ISO 8601 or YYYY-MM-DD HH:MM:SS)',
            '2 job_source_model: "res.users" has no sync flow',
            '2 job_source_record_id: is required (or source_record_id)',
            '3 job: is not a JSON object',
          ]);
        }
        assert.equal(await count(), before);
      });

      test('not an array, or empty: 400', async () => {
        for (const body of ['{"job_date": "2026-03-01T10:00:00Z"}', '[]']) {
          const r = await api.post('/job/bulk-create', body, JSON_TYPE);
          assert.equal(r.status, 400, body);
          assert.match(r.json.error_detail.body, /non-empty JSON array/);
        }
      });

      test('10,000 announcements in one request (a body beyond the 1 MB of /job/create) are stored', async () => {
        const before = await count();
        const body = JSON.stringify(Array.from({ length: 10_000 }, (_, i) => announcement(i + 1, { job_source_sosync_write_date: '2026-03-01T09:00:00Z' })));
        assert.ok(body.length > 1024 * 1024);
        const r = await api.post('/job/bulk-create', body, JSON_TYPE);
        assert.equal(r.status, 200, r.text.slice(0, 300));
        assert.equal(r.json.job_ids.length, 10_000);
        assert.equal(await count(), before + 10_000);
        const first = await row(r.json.job_ids[0]);
        const last = await row(r.json.job_ids[9_999]);
        assert.equal(first.job_source_record_id, 1);
        assert.equal(last.job_source_record_id, 10_000);
        // /job/create keeps its 1 MB limit
        const single = await api.post('/job/create', JSON.stringify({ ...announcement(1), job_source_fields: { x: 'y'.repeat(1_100_000) } }), JSON_TYPE);
        assert.equal(single.status, 413);
      });

      test('a body over the cap: 413, nothing stored', async () => {
        const before = await count();
        const big = `[${JSON.stringify(announcement(1, { job_source_fields: { x: 'y'.repeat(33 * 1024 * 1024) } }))}]`;
        const r = await api.post('/job/bulk-create', big, JSON_TYPE);
        assert.equal(r.status, 413);
        assert.match(r.json.error_detail.body, /larger than 32 MB/);
        assert.equal(await count(), before);
      });
    });

    describe('POST /job/tree-create and GET /job/tree/{id}', () => {
      const tree = {
        ...announcement(100),
        child_jobs: [
          { ...announcement(101), child_jobs: [announcement(103, { source_system: 'fso' })] },
          { job_date: '2026-03-01 10:00:00', source_system: 'fso', source_model: 'x.thing', source_record_id: 102 },
        ],
      };

      test('stores the job and its children, linked by parent_job_id; /job/tree shows them nested', async () => {
        const r = await api.post('/job/tree-create', JSON.stringify(tree), JSON_TYPE);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.count, 4);
        const rootId = r.json.job_id;
        const [a, b] = r.json.child_jobs;
        assert.equal((await row(rootId)).parent_job_id, null);
        assert.equal((await row(a.job_id)).parent_job_id, rootId);
        assert.equal((await row(b.job_id)).parent_job_id, rootId);
        assert.equal((await row(a.child_jobs[0].job_id)).parent_job_id, a.job_id);
        assert.equal((await row(a.child_jobs[0].job_id)).job_source_record_id, 103);

        const t = await api.get(`/job/tree/${rootId}`);
        assert.equal(t.status, 200);
        assert.equal(t.json.job_id, rootId);
        assert.equal(t.json.job_source_record_id, 100);
        assert.deepEqual(t.json.child_jobs.map((c: any) => c.job_source_record_id), [101, 102]);
        assert.deepEqual(t.json.child_jobs[0].child_jobs.map((c: any) => c.job_source_record_id), [103]);
        assert.deepEqual(t.json.child_jobs[1].child_jobs, []);

        const x = await api.get(`/job/tree/${rootId}`, XML);
        assert.match(x.type, /application\/xml/);
        const doc = xml.parse(x.text).sync_table;
        assert.equal(doc.job_id, rootId);
        assert.deepEqual([doc.child_jobs].flat().map((c: any) => c.job_source_record_id), [101, 102]);

        // a subtree from its own root
        const sub = await api.get(`/job/tree/${a.job_id}`);
        assert.deepEqual(sub.json.child_jobs.map((c: any) => c.job_id), [a.child_jobs[0].job_id]);
      });

      test('a bad grandchild: 400 naming its path, nothing stored', async () => {
        const before = await count();
        const bad = { ...tree, child_jobs: [{ ...announcement(101), child_jobs: [announcement(103, { job_source_system: 'crm' })] }, 'x'] };
        const r = await api.post('/job/tree-create', JSON.stringify(bad), JSON_TYPE, XML);
        assert.equal(r.status, 400);
        const errors = [xml.parse(r.text).tree_result.errors].flat().map((e: any) => `${e.index} ${e.field}`);
        assert.deepEqual(errors, ['child_jobs[0].child_jobs[0] job_source_system', 'child_jobs[1] job']);
        assert.equal(await count(), before);
      });

      test('unknown or malformed id: 404', async () => {
        assert.equal((await api.get('/job/tree/99999999')).status, 404);
        const r = await api.get('/job/tree/abc');
        assert.equal(r.status, 404);
        assert.match(r.json.error_detail.job_id, /not a job id/);
      });
    });

    describe('GET /job/retryfailed', () => {
      const arrange = async () => {
        await api.table.db.query('DELETE FROM sync_table');
        const ids = await api.table.store.createJobs([
          { ...announcement(1), job_date: new Date('2026-03-01T10:00:00Z') } as never,
          { ...announcement(2), job_date: new Date('2026-03-02T10:00:00Z') } as never,
          { ...announcement(3), job_date: new Date('2026-03-03T10:00:00Z'), job_source_model: 'x.thing' } as never,
          { ...announcement(4), job_date: new Date('2026-03-01T10:00:00Z') } as never,
          { ...announcement(5), job_date: new Date('2026-03-01T10:00:00Z') } as never,
        ]);
        const states: Array<[string, string | null]> = [['error', 'sync_source'], ['error_retry', 'transformation'], ['error', 'sync_source'], ['done', null], ['skipped', null]];
        for (const [i, [state, code]] of states.entries()) {
          await api.table.store.updateJob(ids[i], { job_state: state as never, job_error_code: code as never, job_error_text: code && 'it failed', job_run_count: 4, job_end: new Date(), job_log: 'first run' });
        }
        return ids;
      };

      test('filters by model, error code, dates and ids; never touches done or skipped', async () => {
        let ids = await arrange();
        let r = await api.get('/job/retryfailed?model=dbo.Thing&error_code=sync_source');
        assert.equal(r.status, 200, r.text);
        assert.deepEqual([r.json.count, r.json.job_ids], [1, [ids[0]]]);

        ids = await arrange();
        r = await api.get('/job/retryfailed?since=2026-03-02&until=2026-03-03');
        assert.deepEqual(r.json.job_ids, [ids[1]]);

        ids = await arrange();
        r = await api.get(`/job/retryfailed?ids=${ids.join(',')}`, XML);
        assert.equal(r.status, 200);
        assert.equal(xml.parse(r.text).retry_result.count, 3);
        assert.equal((await row(ids[3])).job_state, 'done');
        assert.equal((await row(ids[3])).job_run_count, 4);
        assert.equal((await row(ids[4])).job_state, 'skipped');
        assert.equal((await row(ids[4])).job_log, 'first run');

        const retried = await row(ids[1]);
        assert.equal(retried.job_state, 'new');
        assert.equal(retried.job_run_count, 0);
        assert.equal(retried.job_error_code, null);
        assert.match(retried.job_log!, /^first run\nretry requested at \d{4}-\d\d-\d\dT[\d:.]+Z from (::ffff:)?127\.0\.0\.1 \(was error_retry transformation\)$/);
      });

      test('no filter retries every failed job', async () => {
        const ids = await arrange();
        const r = await api.get('/job/retryfailed');
        assert.deepEqual(r.json.job_ids, ids.slice(0, 3));
      });

      test('bad filters: 400 naming them, nothing changed', async () => {
        const ids = await arrange();
        for (const [query, field] of [['modle=x', 'query'], ['error_code=oops', 'error_code'], ['since=soon', 'since'], ['ids=1,x', 'ids'], ['model=dbo.Thing%00', 'model']]) {
          const r = await api.get(`/job/retryfailed?${query}`);
          assert.equal(r.status, 400, query);
          assert.ok(r.json.error_detail[field], `${query}: ${r.text}`);
        }
        // an unknown filter is quoted in the message, never made a field name (XML element names are not the caller's)
        const x = await api.get('/job/retryfailed?constructor=0', { accept: 'application/xml' });
        assert.equal(x.status, 400, x.text);
        assert.match(x.text, /<query>&quot;constructor&quot; is not a filter/);
        assert.equal((await row(ids[0])).job_state, 'error');
      });
    });

    describe('GET /statistic/jobs', () => {
      test('counts by state and model, the oldest open job, finished per hour, errors by code', async () => {
        await api.table.db.query('DELETE FROM sync_table');
        const ids = await api.table.store.createJobs(Array.from({ length: 7 }, (_, i) => ({ ...announcement(i + 1), job_date: new Date(), job_source_model: i < 5 ? 'dbo.Thing' : 'x.thing' } as never)));
        const now = Date.now();
        const hourAgo = new Date(now - 60 * 60 * 1000);
        await api.table.store.updateJob(ids[0], { job_state: 'done', job_end: new Date(now) });
        await api.table.store.updateJob(ids[1], { job_state: 'done', job_end: hourAgo });
        await api.table.store.updateJob(ids[2], { job_state: 'error', job_error_code: 'sync_source', job_end: hourAgo });
        await api.table.store.updateJob(ids[3], { job_state: 'error', job_error_code: 'transformation', job_end: new Date(now) });
        await api.table.store.updateJob(ids[4], { job_state: 'done', job_end: new Date(now - 30 * 60 * 60 * 1000) });
        await api.table.store.updateJob(ids[5], { job_state: 'inprogress' });
        // ids[6] stays new; ids[5] is older, so it is the oldest open job

        const r = await api.get('/statistic/jobs');
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.total, 7);
        assert.deepEqual(r.json.by_state, { new: 1, inprogress: 1, done: 3, error: 2, error_retry: 0, skipped: 0 });
        const thing = r.json.by_model.find((m: any) => m.model === 'dbo.Thing');
        assert.deepEqual([thing.total, thing.done, thing.error], [5, 3, 2]);
        assert.deepEqual(r.json.by_model.find((m: any) => m.model === 'x.thing').total, 2);
        assert.equal(r.json.oldest_open_job.job_id, ids[5]);
        assert.equal(r.json.finished_per_hour.length, 24);
        const last = r.json.finished_per_hour[23];
        const before = r.json.finished_per_hour[22];
        assert.deepEqual([last.done, last.error, last.total], [1, 1, 2]);
        assert.deepEqual([before.done, before.error, before.total], [1, 1, 2]);
        assert.equal(r.json.finished_per_hour.reduce((n: number, h: any) => n + h.total, 0), 4, 'the job of 30 h ago is outside the 24 h');
        assert.deepEqual(r.json.errors_by_code, [{ error_code: 'sync_source', count: 1 }, { error_code: 'transformation', count: 1 }]);

        const x = xml.parse((await api.get('/statistic/jobs', XML)).text).job_statistics;
        assert.equal(x.by_state.done, 3);
        assert.equal(x.oldest_open_job.job_id, ids[5]);
      });
    });

    test('GET /flow/map lists the registered flows', async () => {
      const r = await api.get('/flow/map');
      assert.equal(r.status, 200);
      assert.deepEqual(r.json.flows, [{
        name: 'memory', fs_model: 'dbo.Thing', fso_model: 'x.thing',
        directions: [
          { source_system: 'fs', source_model: 'dbo.Thing', target_system: 'fso', target_model: 'x.thing' },
          { source_system: 'fso', source_model: 'x.thing', target_system: 'fs', target_model: 'dbo.Thing' },
        ],
        child_jobs: [], deletes: { fs: 'delete', fso: 'unlink' },
      }]);
      const x = xml.parse((await api.get('/flow/map', XML)).text).flow_map;
      assert.equal(x.flows.fso_model, 'x.thing');
    });
  });
}

describe('retryfailed wakes the job worker', () => {
  let api: ApiHarness;
  before(async () => { api = await startApi('pglite'); });
  after(async () => api.close());

  test('a retried job runs again and ends done', async () => {
    const record = api.flow.fs.insert({ name: 'x' });
    const [id] = await api.table.store.createJobs([{ ...announcement(record.id), job_date: new Date() } as never]);
    await api.table.store.updateJob(id, { job_state: 'error', job_error_code: 'sync_source', job_run_count: 4, job_end: new Date() });
    const r = await api.get(`/job/retryfailed?ids=${id}`);
    assert.equal(r.json.count, 1);
    await until(async () => (await api.table.store.getJob(id))!.job_state === 'done', 'the retried job to be done');
    assert.equal((await api.table.store.getJob(id))!.job_run_count, 1);
  });
});
