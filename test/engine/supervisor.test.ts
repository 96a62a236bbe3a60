/**
 * The supervisor: one worker slot, restart requests, the drift gate against a real NTP stand-in,
 * the throttle, and a graceful stop — over a real sync table and the HTTP routes.
 */
import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import type { InspectionEvent } from 'xstate';
import { startApiWith, type ApiHarness } from '../support/api.ts';
import { startHarness } from '../support/engine.ts';
import { sleep, until } from '../support/wait.ts';
import { logCapture } from '../support/logs.ts';


describe('supervisor: one worker slot', () => {
  let api: ApiHarness;
  let active = 0;
  let maxActive = 0;
  let maxRootActors = 0;
  const rootActors = new Set<string>();
  before(async () => {
    const inspect = (event: InspectionEvent) => {
      if (event.type === '@xstate.actor' && (event.actorRef as { src?: unknown }).src === 'job') {
        rootActors.add(event.actorRef.sessionId);
        maxRootActors = Math.max(maxRootActors, rootActors.size);
      }
      if (event.type === '@xstate.snapshot' && (event.snapshot as { status?: string }).status !== 'active') rootActors.delete(event.actorRef.sessionId);
    };
    api = await startApiWith('postgres', { inspect });
    api.flow.hooks.beforeWrite = async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      await sleep(3);
      active--;
    };
  });
  after(async () => api.close());

  test('50 concurrent processjobs and job/create calls never run two jobs at once', async () => {
    const records = Array.from({ length: 25 }, (_, i) => api.flow.fs.insert({ n: i }));
    const calls: Promise<Response>[] = [];
    for (let i = 0; i < 25; i++) {
      calls.push(fetch(`${api.base}/service/processjobs`));
      calls.push(fetch(`${api.base}/job/create?job_date=${new Date().toISOString()}&source_system=fs&source_model=dbo.Thing&source_record_id=${records[i].id}`));
    }
    const answers = await Promise.all(calls);
    assert.ok(answers.every((a) => a.status === 200));
    await until(async () => (await api.table.store.countOpenRootJobs()) === 0, 'all jobs done');
    await api.workers.whenIdle();
    const states = await api.table.db.query<{ job_state: string; n: string }>('SELECT job_state, count(*) AS n FROM sync_table GROUP BY 1');
    assert.deepEqual(states.rows.map((r) => [r.job_state, Number(r.n)]), [['done', 25]]);
    assert.equal(api.flow.fso.creates, 25, 'each record created exactly once');
    assert.equal(maxActive, 1, 'never two writes at once');
    assert.equal(maxRootActors, 1, 'never two job actors at once');
  });

  test('/service/status reports both workers with the original codes', async () => {
    const r = await api.get('/service/status');
    assert.equal(r.status, 200);
    assert.equal(r.json.job_worker.status, 0);
    assert.equal(r.json.job_worker.status_text, 'Idle');
    assert.equal(r.json.job_worker.open_jobs, 0);
    assert.equal(r.json.job_worker.drift_locked, false);
    assert.equal(r.json.job_worker.current_job_id, null);
    assert.equal(r.json.protocol_worker.status, 4);
    assert.match(r.json.protocol_worker.detail, /not configured/);
    const x = await api.get('/service/status', { accept: 'text/xml' });
    assert.match(x.text, /<sosync_status>[\s\S]*<job_worker>[\s\S]*<status_text>Idle<\/status_text>/);
    const p = await api.get('/service/processprotocol');
    assert.equal(p.status, 503, 'no fake success for a worker that does not exist');
  });

  test('START while running requests a restart; status shows Running and RunningRestartRequested', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    api.flow.hooks.beforeWrite = () => gate;
    const rec = api.flow.fs.insert({ slow: true });
    await api.get(`/job/create?job_date=${new Date().toISOString()}&source_system=fs&source_model=dbo.Thing&source_record_id=${rec.id}`);
    await until(async () => (await api.get('/service/status')).json.job_worker.current_job_id !== null, 'job running');
    const running = (await api.get('/service/status')).json.job_worker;
    assert.ok([1, 2].includes(running.status), `running: ${running.status}`);
    const answer = await api.get('/service/processjobs');
    assert.equal(answer.json.status, 2);
    assert.equal(answer.json.status_text, 'RunningRestartRequested');
    const passesBefore = api.workers.supervisor.getSnapshot().context.passes;
    release();
    await api.workers.whenIdle();
    assert.ok(api.workers.supervisor.getSnapshot().context.passes > passesBefore, 'another pass ran after the restart request');
    api.flow.hooks.beforeWrite = undefined;
  });
});

describe('supervisor: drift gate against the NTP stand-in', () => {
  test('offset above tolerance locks; jobs stay open; forcedriftcheck lifts it', async () => {
    const { lines, logger } = logCapture();
    const api = await startApiWith('pglite', { logger, toleranceMs: 500 });
    try {
      api.ntp.setOffsetMs(5_000);
      const rec = api.flow.fs.insert({ a: 1 });
      const created = await api.get(`/job/create?job_date=${new Date().toISOString()}&source_system=fs&source_model=dbo.Thing&source_record_id=${rec.id}`);
      await until(async () => (await api.get('/service/status')).json.job_worker.drift_locked, 'drift lock');
      const status = (await api.get('/service/status')).json.job_worker;
      assert.equal(status.drift_locked, true);
      const until_ = new Date(status.drift_lock_until).getTime();
      const since = new Date(status.last_drift_check).getTime();
      assert.equal(until_ - since, 30 * 60_000 + 5_000, 'locked for 30 min + 5 s');
      assert.match(status.drift_lock_reason, /off by \+\d+/);
      const job = await api.table.store.getJob(created.json.job_id);
      assert.equal(job!.job_state, 'new', 'the job is untouched and still open');
      assert.equal(job!.job_run_count, 0);
      assert.equal(api.flow.fso.writes, 0);
      const drift = await api.get('/service/drift');
      assert.equal(drift.json.unit, 'millisecond');
      assert.equal(drift.json.tolerance, 500);
      assert.ok(Math.abs(drift.json.drift.ntp - 5000) < 1000, `measured ${drift.json.drift.ntp}`);
      assert.equal(drift.json.ok, false);
      // the clock is fixed; forcing a check lifts the lock and the job runs
      api.ntp.setOffsetMs(0);
      const forced = await api.get('/service/forcedriftcheck');
      assert.equal(forced.status, 200);
      await until(async () => (await api.table.store.getJob(created.json.job_id))!.job_state === 'done', 'job done after the lock is lifted');
      assert.equal((await api.get('/service/status')).json.job_worker.drift_locked, false);
      assert.ok(lines.some((l) => l.msg === 'time drift gate closed: synchronisation locked'));
    } finally {
      await api.close();
    }
  });

  test('no NTP server answering: gate closed, one clear log line, no job error', async () => {
    const { lines, logger } = logCapture();
    const h = await startHarness('pglite', { logger });
    try {
      h.ntp.setSilent(true);
      const rec = h.flow.fs.insert({ a: 1 });
      const job = await h.table.store.createJob({ job_date: new Date(), job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: rec.id });
      h.workers.control.processJobs();
      await until(() => h.workers.supervisor.getSnapshot().matches('locked'), 'gate closed');
      const row = await h.table.store.getJob(job.job_id);
      assert.equal(row!.job_state, 'new');
      assert.equal(row!.job_error_code, null);
      const gateLines = lines.filter((l) => l.msg === 'time drift gate closed: synchronisation locked');
      assert.equal(gateLines.length, 1);
      assert.equal(lines.filter((l) => Number(l.level) >= 40).length, 1, 'one warning-or-worse line in all: the gate');
      assert.match(String(gateLines[0].reason), /no NTP server answered/);
      // more announcements while locked do not start jobs or log again
      h.workers.control.processJobs();
      await sleep(50);
      assert.equal(lines.filter((l) => l.msg === 'time drift gate closed: synchronisation locked').length, 1);
      assert.equal((await h.table.store.getJob(job.job_id))!.job_state, 'new');
    } finally {
      await h.close();
    }
  });

  test('the drift check is not repeated within 30 minutes', async () => {
    const h = await startHarness('pglite');
    try {
      for (let i = 0; i < 3; i++) {
        const rec = h.flow.fs.insert({ i });
        await h.table.store.createJob({ job_date: new Date(), job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: rec.id });
        h.workers.control.processJobs();
        await sleep(20);
        await h.workers.whenIdle();
      }
      const first = h.workers.supervisor.getSnapshot().context.lastDriftCheckAt!;
      assert.ok(first);
      assert.equal(h.workers.supervisor.getSnapshot().context.jobsRun, 3);
      // one measurement for all three passes: the check time did not move
      h.ntp.setOffsetMs(60_000);
      const rec = h.flow.fs.insert({ i: 9 });
      const j = await h.table.store.createJob({ job_date: new Date(), job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: rec.id });
      h.workers.control.processJobs();
      await sleep(20);
      await h.workers.whenIdle();
      assert.equal((await h.table.store.getJob(j.job_id))!.job_state, 'done', 'no new check within 30 minutes');
      assert.equal(h.workers.supervisor.getSnapshot().context.lastDriftCheckAt!.getTime(), first.getTime());
    } finally {
      await h.close();
    }
  });
});

describe('supervisor: throttle and stop', () => {
  test('throttle: fast jobs are spaced at least throttle_ms apart; a slow job is not delayed further (wide margins: ordering, not speed)', async () => {
    const h = await startHarness('pglite', { throttleMs: 400 });
    try {
      const starts: number[] = [];
      h.flow.hooks.beforeWrite = async (d) => {
        starts.push(Date.now());
        if (h.flow.fs.records.get(d.source.recordId)?.data.slow) await sleep(1000);
      };
      const ids = [h.flow.fs.insert({ slow: true }), h.flow.fs.insert({}), h.flow.fs.insert({}), h.flow.fs.insert({})].map((r) => r.id);
      // the newest announcement runs first (SPEC §4.1): the slow job is the newest
      for (const [i, id] of ids.entries()) await h.table.store.createJob({ job_date: new Date(Date.now() - i * 1000), job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: id });
      h.workers.control.processJobs();
      await sleep(20);
      await h.workers.whenIdle();
      assert.equal(starts.length, 4);
      const gaps = starts.slice(1).map((s, i) => s - starts[i]);
      // after the slow job (1000 ms > 400 ms) no throttle sleep: a wrongly added one would make the gap >= 1400 ms
      assert.ok(gaps[0] >= 1000 && gaps[0] < 1000 + 300, `gap after the slow job: ${gaps[0]}`);
      for (const g of gaps.slice(1)) assert.ok(g >= 390, `fast jobs spaced by the throttle: ${g}`);
    } finally {
      await h.close();
    }
  });

  test('stop mid-pass: the current job finishes, no further job starts, the rest stay open', async () => {
    const h = await startHarness('pglite');
    try {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let writes = 0;
      h.flow.hooks.beforeWrite = async () => {
        writes++;
        if (writes === 1) await gate;
      };
      const ids = [h.flow.fs.insert({}), h.flow.fs.insert({}), h.flow.fs.insert({})].map((r) => r.id);
      const jobs = [];
      // the newest announcement runs first (SPEC §4.1): the first job is the newest
      for (const [i, id] of ids.entries()) jobs.push(await h.table.store.createJob({ job_date: new Date(Date.now() - i * 1000), job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: id }));
      h.workers.control.processJobs();
      await until(() => writes === 1, 'first job writing');
      const stopping = h.workers.stop(5000);
      await sleep(20);
      assert.equal((await h.workers.control.status()).job_worker.activity, 'stopping', 'Stopping while the job finishes');
      release();
      assert.equal(await stopping, true, 'stopped cleanly');
      const states = await Promise.all(jobs.map(async (j) => (await h.table.store.getJob(j.job_id))!.job_state));
      assert.deepEqual(states, ['done', 'new', 'new']);
    } finally {
      await h.close();
    }
  });
});
