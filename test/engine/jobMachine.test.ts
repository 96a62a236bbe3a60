/**
 * The job machine over a real sync table with in-memory systems: every outcome of SPEC §4.2.
 */
import { describe, test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, type Harness, type StoreKind } from '../support/engine.ts';
import { FlowError } from '../../src/flows/flow.ts';
import type { JobRow } from '../../src/adapters/syncTable/index.ts';

const MODEL_FS = 'dbo.Thing';
const MODEL_FSO = 'x.thing';
const t = (s: number) => new Date(Date.UTC(2026, 2, 1, 10, 0, s));

for (const kind of ['postgres', 'pglite'] as StoreKind[]) {
  describe(`job machine on ${kind}`, () => {
    let h: Harness;
    before(async () => {
      h = await startHarness(kind);
    });
    after(async () => h.close());
    beforeEach(async () => {
      await h.workers.whenIdle();
      await h.table.db.query('DELETE FROM sync_table');
      h.flow.fs.reset();
      h.flow.fso.reset();
      h.flow.hooks = {};
    });

    async function announce(system: 'fs' | 'fso', recordId: number, extra: Partial<JobRow> = {}): Promise<JobRow> {
      const flowSystem = h.flow.system(system);
      const rec = flowSystem.records.get(recordId);
      return h.table.store.createJob({
        job_date: new Date(),
        job_source_system: system,
        job_source_model: system === 'fs' ? MODEL_FS : MODEL_FSO,
        job_source_record_id: recordId,
        job_source_sosync_write_date: rec?.sosyncWriteDate ?? null,
        job_source_type: extra.job_source_type ?? '',
        job_source_target_record_id: extra.job_source_target_record_id ?? null,
      });
    }
    async function run(): Promise<void> {
      h.workers.control.processJobs();
      await new Promise((r) => setTimeout(r, 20));
      await h.workers.whenIdle();
    }
    const row = async (id: number) => (await h.table.store.getJob(id))!;

    test('target missing: the source is copied and both sides point at each other', async () => {
      const src = h.flow.fs.insert({ name: 'Anna' }, { sosyncWriteDate: t(1) });
      const job = await announce('fs', src.id);
      await run();
      const r = await row(job.job_id);
      assert.equal(r.job_state, 'done');
      assert.equal(r.job_run_count, 1);
      assert.equal(r.sync_source_system, 'fs');
      assert.equal(r.sync_target_system, 'fso');
      assert.equal(r.sync_target_model, MODEL_FSO);
      const target = h.flow.fso.records.get(r.sync_target_record_id!)!;
      assert.deepEqual(target.data, { name: 'Anna' });
      assert.equal(target.foreignId, src.id);
      assert.equal(src.foreignId, target.id);
      assert.equal(target.sosyncWriteDate!.getTime(), t(1).getTime(), 'target gets the source sosync_write_date');
      assert.equal(r.sync_target_answer, 'success');
      assert.equal(r.sync_source_data, '{"name":"Anna"}');
      assert.equal(r.sync_target_data_before, null, 'no before-data on a create');
      assert.ok(r.sync_start && r.sync_end && r.job_start && r.job_end);
      assert.equal(r.job_to_fso_can_sync, true, 'step 9: ready for the protocol');
      assert.match(r.job_log!, /created x.thing/);
    });

    test('announcing side newer: update the other side, with before-data', async () => {
      const fso = h.flow.fso.insert({ name: 'old' }, { sosyncWriteDate: t(1) });
      const fs = h.flow.fs.insert({ name: 'new' }, { sosyncWriteDate: t(5) }, fso.id);
      fso.foreignId = fs.id;
      const job = await announce('fs', fs.id);
      await run();
      const r = await row(job.job_id);
      assert.equal(r.job_state, 'done');
      assert.equal(r.sync_source_system, 'fs');
      assert.equal(r.sync_target_record_id, fso.id);
      assert.deepEqual(fso.data, { name: 'new' });
      assert.equal(r.sync_target_data_before, '{"name":"old"}');
      assert.equal(h.flow.fso.creates, 0);
    });

    test('other side newer: the direction turns around', async () => {
      const fso = h.flow.fso.insert({ name: 'newer in fso' }, { sosyncWriteDate: t(9) });
      const fs = h.flow.fs.insert({ name: 'stale' }, { sosyncWriteDate: t(2) }, fso.id);
      fso.foreignId = fs.id;
      const job = await announce('fs', fs.id);
      await run();
      const r = await row(job.job_id);
      assert.equal(r.job_state, 'done');
      assert.equal(r.sync_source_system, 'fso');
      assert.equal(r.sync_target_system, 'fs');
      assert.deepEqual(fs.data, { name: 'newer in fso' });
    });

    test('equal dates: done, "model up to date", nothing written', async () => {
      const fso = h.flow.fso.insert({ name: 'x' }, { sosyncWriteDate: t(3) });
      const fs = h.flow.fs.insert({ name: 'x' }, { sosyncWriteDate: t(3) }, fso.id);
      fso.foreignId = fs.id;
      const job = await announce('fso', fso.id);
      await run();
      const r = await row(job.job_id);
      assert.equal(r.job_state, 'done');
      assert.match(r.job_log!, /model up to date/);
      assert.equal(h.flow.fs.writes + h.flow.fso.writes, 0);
    });

    test('write_date stands in for a missing sosync_write_date', async () => {
      const fso = h.flow.fso.insert({ name: 'by write date' }, { sosyncWriteDate: null, writeDate: t(8) });
      const fs = h.flow.fs.insert({ name: 'x' }, { sosyncWriteDate: null, writeDate: t(4) });
      fso.foreignId = null;
      fs.foreignId = null;
      // the FS record points at nothing, but FSO's record is found pointing back
      fso.foreignId = fs.id;
      fso.sosyncWriteDate = null;
      const job = await announce('fs', fs.id);
      // fso has a foreign id but no sosync_write_date: invalid
      await run();
      assert.equal((await row(job.job_id)).job_error_code, 'sync_source');
      fso.foreignId = null;
      const job2 = await announce('fs', fs.id);
      await run();
      const r = await row(job2.job_id);
      assert.equal(r.job_state, 'done');
      assert.equal(r.sync_source_system, 'fs', 'no link: the announced record is the source');
    });

    // a create that was cut off before the source learned its counterpart's id: the counterpart
    // already points back. The test flow creates whenever no target id is given, as production's
    // flows do, so only sosync's own lookup (flows/direction.ts) stands between this and a duplicate.
    for (const [label, counterpartSecond] of [['older', 1], ['newer', 9]] as const) {
      test(`an interrupted create, the counterpart pointing back is ${label}: it is found, nothing is created twice`, async () => {
        const fs = h.flow.fs.insert({ name: 'Berta' }, { sosyncWriteDate: t(5) });
        const fso = h.flow.fso.insert({ name: 'Berta (copy)' }, { sosyncWriteDate: t(counterpartSecond) }, fs.id);
        const job = await announce('fs', fs.id);
        await run();
        const r = await row(job.job_id);
        assert.equal(r.job_state, 'done', r.job_error_text ?? '');
        assert.equal(h.flow.fso.records.size, 1, 'no second FSO record');
        assert.equal(h.flow.fs.records.size, 1, 'no second FS record');
        assert.equal(h.flow.fs.creates + h.flow.fso.creates, 0, 'nothing created');
        const newer = counterpartSecond > 5 ? 'fso' : 'fs';
        assert.equal(r.sync_source_system, newer, 'the newer side is the source');
        assert.equal(r.sync_target_record_id, newer === 'fs' ? fso.id : fs.id);
        assert.equal(fs.foreignId, fso.id, 'the link is completed');
        assert.deepEqual(fs.data, fso.data, 'both hold the newer data');
      });
    }

    test('announced record missing: error sync_source', async () => {
      const job = await announce('fso', 4242);
      await run();
      const r = await row(job.job_id);
      assert.equal(r.job_state, 'error');
      assert.equal(r.job_error_code, 'sync_source');
      assert.match(r.job_error_text!, /does not exist/);
      assert.ok(r.job_end);
    });

    test('neither date on one side: error sync_source', async () => {
      const fso = h.flow.fso.insert({}, { sosyncWriteDate: null, writeDate: null });
      const fs = h.flow.fs.insert({}, { sosyncWriteDate: t(1) });
      fso.foreignId = null;
      fs.foreignId = fso.id;
      const job = await announce('fs', fs.id);
      await run();
      const r = await row(job.job_id);
      assert.equal(r.job_error_code, 'sync_source');
      assert.match(r.job_error_text!, /neither sosync_write_date nor write_date/);
    });

    test('run count: the fourth start still syncs, the fifth ends in run_counter without syncing (SPEC §4.2 step 2)', async () => {
      const fourth = h.flow.fs.insert({ name: 'four' }, { sosyncWriteDate: t(1) });
      const fourthJob = await announce('fs', fourth.id);
      await h.table.store.updateJob(fourthJob.job_id, { job_run_count: 3 });
      await run();
      const synced = await row(fourthJob.job_id);
      assert.equal(synced.job_state, 'done');
      assert.equal(synced.job_run_count, 4);
      assert.equal(h.flow.fso.writes, 1);

      const fifth = h.flow.fs.insert({ name: 'five' }, { sosyncWriteDate: t(1) });
      const job = await announce('fs', fifth.id);
      await h.table.store.updateJob(job.job_id, { job_run_count: 4 });
      await run();
      const r = await row(job.job_id);
      assert.equal(r.job_state, 'error');
      assert.equal(r.job_error_code, 'run_counter');
      assert.equal(r.job_run_count, 5);
      assert.equal(h.flow.fso.writes, 1, 'the fifth start wrote nothing');
    });

    test('target write fails: error transformation with the message', async () => {
      const fs = h.flow.fs.insert({ name: 'x' }, { sosyncWriteDate: t(1) });
      h.flow.hooks.beforeWrite = () => {
        throw new FlowError('FSO refused: name too short', { targetRequest: '<methodCall/>', targetAnswer: '<fault/>' });
      };
      const job = await announce('fs', fs.id);
      await run();
      const r = await row(job.job_id);
      assert.equal(r.job_state, 'error');
      assert.equal(r.job_error_code, 'transformation');
      assert.match(r.job_error_text!, /name too short/);
      assert.equal(r.sync_target_request, '<methodCall/>', 'evidence of the failed write is kept');
      assert.equal(r.sync_target_answer, '<fault/>');
      assert.equal(r.job_to_fso_can_sync, true);
    });

    test('source changed mid-job: stays inprogress, runs again, then done', async () => {
      const fs = h.flow.fs.insert({ name: 'v1' }, { sosyncWriteDate: t(1) });
      let changes = 0;
      h.flow.hooks.children = () => {
        if (changes++ === 0) {
          fs.data = { name: 'v2' };
          fs.sosyncWriteDate = t(2);
        }
        return [];
      };
      const job = await announce('fs', fs.id);
      await run();
      const r = await row(job.job_id);
      assert.equal(r.job_state, 'done');
      assert.equal(r.job_run_count, 2, 'the first run was requeued, the second finished');
      assert.deepEqual(h.flow.fso.records.get(r.sync_target_record_id!)!.data, { name: 'v2' });
      assert.equal(h.flow.fso.creates, 1);
    });

    test('a source that keeps changing ends in run_counter, not a loop', async () => {
      const fs = h.flow.fs.insert({ name: 'v' }, { sosyncWriteDate: t(1) });
      let n = 1;
      h.flow.hooks.children = () => {
        fs.sosyncWriteDate = t(++n);
        return [];
      };
      const job = await announce('fs', fs.id);
      await run();
      const r = await row(job.job_id);
      assert.equal(r.job_state, 'error');
      assert.equal(r.job_error_code, 'run_counter');
      assert.equal(r.job_run_count, 5, 'four runs, each requeued; the fifth start ends it');
      assert.match(r.job_log!, /source changed while the job ran/);
    });

    test('child jobs run inline first; found again rather than duplicated', async () => {
      const childSrc = h.flow.fso.insert({ name: 'company' }, { sosyncWriteDate: t(1) });
      const parentSrc = h.flow.fso.insert({ name: 'bpk', company: childSrc.id }, { sosyncWriteDate: t(2) });
      h.flow.hooks.children = (d) => (d.source.recordId === parentSrc.id ? [{ system: 'fso', model: MODEL_FSO, recordId: childSrc.id }] : []);
      const job = await announce('fso', parentSrc.id);
      await run();
      const r = await row(job.job_id);
      assert.equal(r.job_state, 'done');
      assert.ok(r.child_job_start && r.child_job_end);
      const children = await h.table.db.query<JobRow>('SELECT * FROM sync_table WHERE parent_job_id = $1', [job.job_id]);
      assert.equal(children.rows.length, 1);
      const child = children.rows[0];
      assert.equal(child.job_state, 'done');
      assert.equal(child.job_source_record_id, childSrc.id);
      assert.ok(childSrc.foreignId, 'the child record was synced');
      assert.ok(child.job_end! <= r.job_end!, 'the child finished before its parent');
      // the supervisor never picks children as roots
      assert.equal(await h.table.store.pickNextJob(), null);
    });

    test('a failed child fails the parent with child_job', async () => {
      const parentSrc = h.flow.fso.insert({ name: 'bpk' }, { sosyncWriteDate: t(2) });
      h.flow.hooks.children = (d) => (d.source.recordId === parentSrc.id ? [{ system: 'fso', model: MODEL_FSO, recordId: 999 }] : []);
      const job = await announce('fso', parentSrc.id);
      await run();
      const r = await row(job.job_id);
      assert.equal(r.job_state, 'error');
      assert.equal(r.job_error_code, 'child_job');
      assert.match(r.job_error_text!, /child job \d+ failed: .*does not exist/);
      assert.equal(h.flow.fs.writes, 0, 'the parent wrote nothing');
    });

    test('a cycle is refused with a clear error', async () => {
      const a = h.flow.fso.insert({ name: 'a' }, { sosyncWriteDate: t(1) });
      const b = h.flow.fso.insert({ name: 'b' }, { sosyncWriteDate: t(1) });
      h.flow.hooks.children = (d) => [{ system: 'fso', model: MODEL_FSO, recordId: d.source.recordId === a.id ? b.id : a.id }];
      const job = await announce('fso', a.id);
      await run();
      const r = await row(job.job_id);
      assert.equal(r.job_state, 'error');
      assert.equal(r.job_error_code, 'child_job');
      assert.match(r.job_error_text!, /cycle/);
    });

    test('unfinished children requeue the parent, which finishes on a later run', async () => {
      const childSrc = h.flow.fso.insert({ name: 'c' }, { sosyncWriteDate: t(1) });
      const parentSrc = h.flow.fso.insert({ name: 'p' }, { sosyncWriteDate: t(2) });
      let childRuns = 0;
      h.flow.hooks.children = (d) => {
        if (d.source.recordId === childSrc.id && childRuns++ === 0) childSrc.sosyncWriteDate = t(3); // child requeues once
        return d.source.recordId === parentSrc.id ? [{ system: 'fso', model: MODEL_FSO, recordId: childSrc.id }] : [];
      };
      const job = await announce('fso', parentSrc.id);
      await run();
      const r = await row(job.job_id);
      assert.equal(r.job_state, 'done');
      assert.equal(r.job_run_count, 2);
      const child = (await h.table.db.query<JobRow>('SELECT * FROM sync_table WHERE parent_job_id = $1', [job.job_id])).rows;
      assert.equal(child.length, 1, 'the same child row both times');
      assert.equal(child[0].job_run_count, 2);
    });

    test('delete job removes the counterpart and creates nothing', async () => {
      const fso = h.flow.fso.insert({ name: 'gone' }, { sosyncWriteDate: t(1) });
      const fs = h.flow.fs.insert({ name: 'gone' }, { sosyncWriteDate: t(1) }, fso.id);
      fso.foreignId = fs.id;
      h.flow.fs.records.delete(fs.id);
      const job = await announce('fs', fs.id, { job_source_type: 'delete' });
      await run();
      const r = await row(job.job_id);
      assert.equal(r.job_state, 'done');
      assert.equal(h.flow.fso.records.has(fso.id), false);
      const again = await announce('fs', fs.id, { job_source_type: 'delete' });
      await run();
      assert.match((await row(again.job_id)).job_log!, /nothing to delete/);
      assert.equal(h.flow.fso.creates + h.flow.fs.creates, 0);
    });

    test('superseded jobs are skipped by the newer job', async () => {
      const fs = h.flow.fs.insert({ name: 'v3' }, { sosyncWriteDate: t(3) });
      const older = await h.table.store.createJob({ job_date: t(1), job_source_system: 'fs', job_source_model: MODEL_FS, job_source_record_id: fs.id, job_source_sosync_write_date: t(1), job_priority: 1 });
      const newest = await h.table.store.createJob({ job_date: t(3), job_source_system: 'fs', job_source_model: MODEL_FS, job_source_record_id: fs.id, job_source_sosync_write_date: t(3), job_priority: 2000 });
      await run();
      assert.equal((await row(newest.job_id)).job_state, 'done');
      const o = await row(older.job_id);
      assert.equal(o.job_state, 'skipped');
      assert.equal(o.job_closed_by_job_id, newest.job_id);
      assert.equal(o.job_log, `Skipped due to job_id = ${newest.job_id}`);
      assert.equal(o.job_run_count, 0, 'never ran');
      assert.equal(h.flow.fso.writes, 1);
    });

    test('an inprogress job left by a crash is picked again and does not create twice', async () => {
      const fs = h.flow.fs.insert({ name: 'once' }, { sosyncWriteDate: t(1) });
      // the crashed run had created the target and stamped it, but not the FS side or the job row
      const target = h.flow.fso.insert({ name: 'once' }, { sosyncWriteDate: t(0) }, fs.id);
      const job = await announce('fs', fs.id);
      await h.table.store.startJob(job.job_id);
      await run();
      const r = await row(job.job_id);
      assert.equal(r.job_state, 'done');
      assert.equal(r.job_run_count, 2);
      assert.equal(r.sync_target_record_id, target.id);
      assert.equal(h.flow.fso.records.size, 1, 'no second target record');
      assert.equal(fs.foreignId, target.id);
    });
  });
}
