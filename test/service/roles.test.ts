/**
 * Several sosync services on one PostgreSQL sync table: one is active (holds the worker lock), the
 * others are standbys that answer the API; a job stored by a standby, or /service/processjobs asked
 * of a standby, wakes the active one; when the active one stops, a standby takes over.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEndToEnd, type EndToEnd } from '../support/endToEnd.ts';
import { startService, type RunningService } from '../../src/service.ts';
import { silentLogger } from '../../src/log.ts';
import { until } from '../support/wait.ts';

const json = async (url: string) => (await fetch(url, { headers: { accept: 'application/json' } })).json() as Promise<Record<string, any>>;

describe('processes sharing a PostgreSQL sync table', () => {
  let e: EndToEnd;
  let standby: RunningService;
  let standbyBase: string;

  before(async () => {
    e = await startEndToEnd('postgres');
    standby = await startService({ ...e.config, port: 0 }, silentLogger());
    standbyBase = standby.urls[0];
  });
  after(async () => {
    await standby?.close();
    await e?.close();
  });

  const jobState = async (jobId: number) =>
    (await e.service.table.db.query<{ job_state: string }>('SELECT job_state FROM sync_table WHERE job_id = $1', [jobId])).rows[0]?.job_state;

  test('one is active, the other a standby; both name the active process', async () => {
    const first = await json(`${e.base}/service/status`);
    const second = await json(`${standbyBase}/service/status`);
    assert.equal(first.role, 'active');
    assert.equal(second.role, 'standby');
    assert.equal(second.job_worker.status, 0);
    assert.match(second.job_worker.detail, /standby/);
    for (const s of [first, second]) {
      assert.equal(s.active_process.pid, process.pid);
      assert.equal(typeof s.active_process.host, 'string');
      assert.ok(!Number.isNaN(Date.parse(s.active_process.since)), 'since is a time');
    }
    assert.equal(e.service.workers() !== null, true);
    assert.equal(standby.workers(), null, 'no worker runs in the standby');
  });

  test('a job stored through the standby is run by the active process', async () => {
    const partnerId = e.fso.store.create('res.partner', { firstname: 'Über', lastname: 'Standby' });
    const res = await fetch(`${standbyBase}/job/create`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ job_date: new Date().toISOString().replace('T', ' ').replace('Z', ''), source_system: 'fso', source_model: 'res.partner', source_record_id: partnerId }),
    });
    assert.equal(res.status, 200);
    const { job_id: jobId } = await res.json() as { job_id: number };
    await until(async () => (await jobState(jobId)) === 'done', 'the job done by the active process', 30_000);
  });

  test('processjobs asked of the standby wakes the active process', async () => {
    // the last job's row says done before its pass ends: a job stored now could still be picked by it
    await e.service.workers()!.whenIdle();
    const partnerId = e.fso.store.create('res.partner', { firstname: 'Geweckt', lastname: 'Aktiv' });
    // stored without telling any process, as another tool writing the table would
    const job = await standby.table.store.createJob({
      job_date: new Date(), job_source_system: 'fso', job_source_model: 'res.partner', job_source_record_id: partnerId,
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(await jobState(job.job_id), 'new', 'nobody woke the workers yet');
    const answer = await json(`${standbyBase}/service/processjobs`);
    assert.match(answer.detail, /woken/);
    await until(async () => (await jobState(job.job_id)) === 'done', 'the job done after the wake-up', 30_000);
  });

  test('when the active process stops, the standby takes over', async () => {
    await e.service.close();
    await until(async () => (await json(`${standbyBase}/service/status`)).role === 'active', 'the standby to become active', 15_000);
    const status = await json(`${standbyBase}/service/status`);
    assert.equal(status.active_process.pid, process.pid);
    assert.notEqual(standby.workers(), null);
  });
});
