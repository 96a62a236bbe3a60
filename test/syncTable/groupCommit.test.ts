/**
 * Concurrent creates are grouped into one statement and one commit (groupCommit.ts), on both
 * stores: the rows are those one-by-one creates store, each caller gets its own row only after the
 * commit, a request refused by validation or by the database fails alone, and a group that cannot
 * be stored answers no 200. Commits are counted by the database itself: the rows one transaction
 * wrote share its xmin.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SyncTableStore, type JobRow, type NewJob } from '../../src/adapters/syncTable/index.ts';
import { GROUP_LIMITS } from '../../src/adapters/syncTable/groupCommit.ts';
import { startApi, type ApiHarness } from '../support/api.ts';
import type { StoreKind } from '../support/engine.ts';

const fixedNow = new Date('2026-03-01T12:00:00.000Z');
const JOBS = 50;

/** announcements of every shape /job/create stores */
function announcements(offset: number): NewJob[] {
  return Array.from({ length: JOBS }, (_, i) => ({
    job_date: new Date(Date.UTC(2026, 2, 1, 10, 0, i, i * 7)),
    job_source_system: i % 3 === 0 ? 'fso' : 'fs',
    job_source_model: i % 3 === 0 ? 'x.thing' : 'dbo.Thing',
    job_source_record_id: offset + i + 1,
    job_source_target_record_id: i % 4 === 0 ? 1000 + i : null,
    job_source_sosync_write_date: i % 5 === 0 ? null : new Date(Date.UTC(2026, 2, 1, 9, 59, i, 123)),
    job_source_fields: i % 2 === 0 ? JSON.stringify({ lastname: `Müller ${i}`, city: 'Wien 🏠' }) : null,
    job_source_type: i % 7 === 0 ? 'delete' : '',
    ...(i % 6 === 0 ? {} : { job_priority: 1000 + i * 100 }),
  }));
}

/** a row without what differs between two stores of the same announcement: its id */
function content(row: JobRow, offset: number): Omit<JobRow, 'job_id'> {
  const { job_id: _id, ...rest } = row;
  return { ...rest, job_source_record_id: row.job_source_record_id - offset };
}

for (const kind of ['postgres', 'pglite'] as StoreKind[]) {
  describe(`grouped creates on ${kind}`, () => {
    let api: ApiHarness;
    let store: SyncTableStore;
    before(async () => {
      api = await startApi(kind);
      // keep the worker from touching the jobs these tests create
      api.workers.supervisor.send({ type: 'STOP' });
      store = new SyncTableStore(api.table.db, () => fixedNow);
    });
    after(async () => api.close());
    const clear = () => api.table.db.query('DELETE FROM sync_table');
    const count = async () => Number((await api.table.db.query<{ n: string }>('SELECT count(*) AS n FROM sync_table')).rows[0].n);
    /** the transactions that wrote the given jobs */
    const commitsOf = async (ids: number[]) => Number((await api.table.db.query<{ n: string }>(
      'SELECT count(DISTINCT xmin::text) AS n FROM sync_table WHERE job_id = ANY($1::integer[])', [ids])).rows[0].n);

    test('50 concurrent creates store exactly the rows 50 sequential ones do, in two commits', async () => {
      await clear();
      const sequential: JobRow[] = [];
      for (const job of announcements(0)) sequential.push(await store.createJob(job));
      // the store idle again (its last insert's bookkeeping done), so the first call below goes alone
      await new Promise((resolve) => setImmediate(resolve));
      const concurrent = await Promise.all(announcements(JOBS).map((job) => store.createJob(job)));

      for (let i = 0; i < JOBS; i++) {
        assert.deepEqual(content(concurrent[i], JOBS), content(sequential[i], 0), `job ${i}: the grouped row differs from the single one`);
        assert.deepEqual(await api.table.store.getJob(concurrent[i].job_id), concurrent[i], `job ${i}: the answered row is not the stored one`);
      }
      assert.deepEqual(concurrent.map((r) => r.job_id), [...concurrent.map((r) => r.job_id)].sort((a, b) => a - b), 'ids in the order of the calls');
      assert.equal(await count(), 2 * JOBS);
      assert.equal(await commitsOf(sequential.map((r) => r.job_id)), JOBS, 'one after the other: a commit each');
      // the first call finds the store idle and goes alone; the 49 arriving meanwhile go together
      assert.equal(await commitsOf(concurrent.map((r) => r.job_id)), 2, 'concurrent: grouped into two commits');
    });

    test('a group closes at its limit of jobs or of bytes; the rest goes in the next', async () => {
      await clear();
      await new Promise((resolve) => setImmediate(resolve));
      const many = Array.from({ length: 2 * GROUP_LIMITS.items + 2 }, (_, i) => ({ ...announcements(0)[0], job_source_record_id: i + 1 }));
      const byCount = await Promise.all(many.map((job) => store.createJob(job)));
      // one alone, then two full groups, then the one left over
      assert.equal(await commitsOf(byCount.map((r) => r.job_id)), 4);

      await new Promise((resolve) => setImmediate(resolve));
      const perJob = 3 * 1024 * 1024;
      const fitting = Math.floor(GROUP_LIMITS.bytes / (perJob + 512));
      const large = Array.from({ length: 2 * fitting + 2 }, (_, i) => ({ ...announcements(0)[0], job_source_record_id: i + 1, job_source_fields: JSON.stringify({ note: String(i % 10).repeat(perJob) }) }));
      const bySize = await Promise.all(large.map((job) => store.createJob(job)));
      assert.equal(await commitsOf(bySize.map((r) => r.job_id)), 4, `groups of at most ${fitting} jobs of 3 MB`);
      for (const [i, row] of bySize.entries()) assert.equal(row.job_source_fields!.length, large[i].job_source_fields.length);
    });

    test('a job the database refuses fails alone: the others of its group are stored', async () => {
      await clear();
      await api.table.db.query('ALTER TABLE sync_table ADD CONSTRAINT test_refuse_13 CHECK (job_source_record_id <> 13)');
      try {
        const outcomes = await Promise.allSettled(announcements(0).map((job) => store.createJob(job)));
        const refused = outcomes.flatMap((o, i) => (o.status === 'rejected' ? [[i, o.reason as Error] as const] : []));
        assert.deepEqual(refused.map(([i]) => i), [12], 'only record 13 is refused');
        assert.match(refused[0][1].message, /test_refuse_13/);
        const stored = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
        assert.equal(stored.length, JOBS - 1);
        assert.equal(await count(), JOBS - 1, 'every job answered is stored, the refused one is not');
        for (const row of stored) assert.ok(await api.table.store.getJob(row.job_id));
      } finally {
        await api.table.db.query('ALTER TABLE sync_table DROP CONSTRAINT test_refuse_13');
      }
    });

    test('a group that cannot be stored fails every caller with the reason, and stores nothing', async () => {
      await clear();
      await api.table.db.query('ALTER TABLE sync_table RENAME TO sync_table_away');
      let outcomes: Array<PromiseSettledResult<JobRow>>;
      try {
        outcomes = await Promise.allSettled(announcements(0).map((job) => store.createJob(job)));
      } finally {
        await api.table.db.query('ALTER TABLE sync_table_away RENAME TO sync_table');
      }
      assert.ok(outcomes.every((o) => o.status === 'rejected'), 'no job is answered as stored');
      const reasons = outcomes.map((o) => ((o as PromiseRejectedResult).reason as Error).message);
      assert.match(reasons[0], /sync_table/, 'the lone first insert: the database\'s own error');
      for (const reason of reasons.slice(1)) {
        assert.match(reason, /^sync table insert failed \(this job and 48 others in one statement\): .*sync_table.* does not exist/);
      }
      assert.equal(await count(), 0);
      // the store works again once the table is back
      assert.equal((await Promise.all(announcements(0).slice(0, 3).map((job) => store.createJob(job)))).length, 3);
    });

    test('/job/create under 50 concurrent requests: each answer names its own row; a bad request gets its error, its neighbours their rows', async () => {
      await clear();
      const query = (i: number) => `job_date=2026-03-01T10:00:00Z&source_system=fs&source_model=dbo.Thing&source_record_id=${i}` +
        (i === 25 ? '&job_source_sosync_write_date=yesterday' : '');
      const answers = await Promise.all(Array.from({ length: JOBS }, (_, i) => api.get(`/job/create?${query(i + 1)}`)));
      for (const [i, answer] of answers.entries()) {
        if (i + 1 === 25) {
          assert.equal(answer.status, 400, answer.text);
          assert.equal(answer.json.error_text, 'DataError');
          assert.deepEqual(Object.keys(answer.json.error_detail), ['job_source_sosync_write_date']);
          continue;
        }
        assert.equal(answer.status, 200, answer.text);
        const row = await api.table.store.getJob(answer.json.job_id);
        assert.equal(row?.job_source_record_id, i + 1, `request ${i + 1} was answered with the id of another job`);
      }
      assert.equal(await count(), JOBS - 1, 'a row for every 200 and none else');
    });

    test('/job/create while the table cannot be written: no 200, no row', async () => {
      await clear();
      await api.table.db.query('ALTER TABLE sync_table RENAME TO sync_table_away');
      let answers: Awaited<ReturnType<ApiHarness['get']>>[];
      try {
        answers = await Promise.all(Array.from({ length: 20 }, (_, i) =>
          api.get(`/job/create?job_date=2026-03-01T10:00:00Z&source_system=fs&source_model=dbo.Thing&source_record_id=${i + 1}`)));
      } finally {
        await api.table.db.query('ALTER TABLE sync_table_away RENAME TO sync_table');
      }
      for (const answer of answers) {
        assert.equal(answer.status, 500, answer.text);
        assert.match(answer.json.error, /sync_table.* does not exist/);
      }
      assert.equal(await count(), 0);
    });
  });
}
