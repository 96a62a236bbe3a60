/**
 * Outages and broken answers end to end: the whole service (started from an INI file) against the
 * FS (TDS) and FSO (XML-RPC) stand-ins, whose fault switches refuse connections, stall, answer a
 * proxy's 502 page or garbage. Short windows: retry and probe intervals are set in the INI.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { JobRow } from '../../src/adapters/syncTable/index.ts';
import { describeJobs, startEndToEnd, type EndToEnd } from '../support/endToEnd.ts';
import { sleep, until } from '../support/wait.ts';

const ini = [
  'retry_base_ms = 400',
  'retry_max_ms = 1600',
  'outage_probe_interval_ms = 250',
  'online_timeout_ms = 1500',
  'studio_connect_timeout_ms = 2000',
  'studio_request_timeout_ms = 2000',
];

describe('outages and broken answers through the stand-ins (sync table in pglite)', () => {
  let e: EndToEnd;
  before(async () => { e = await startEndToEnd('pglite', { ini }); });
  after(async () => {
    e?.fso.faults.answerRaw(null);
    e?.fso.faults.stall(false);
    await e?.fso.faults.refuseConnections(false);
    e?.fsStandIn.server.refuseConnections(false);
    await e?.close();
  });

  const jobsOf = async (model: string, since: number): Promise<JobRow[]> =>
    (await e.jobsAfter(since)).filter((j) => j.job_source_model === model && j.parent_job_id === null);

  async function untilAll(since: number, model: string, count: number, state: string): Promise<JobRow[]> {
    let last: JobRow[] = [];
    await until(async () => {
      await e.fso.flushAnnouncements();
      await e.fsStandIn.engine.flushAnnouncements();
      last = await jobsOf(model, since);
      return last.length === count && last.every((j) => j.job_state === state);
    }, `${count} ${model} jobs ${state}`, 30_000).catch((err) => { throw new Error(`${(err as Error).message}: ${describeJobs(last)}`); });
    return last;
  }

  const status = async () => (await e.get('/service/status')).json;

  test('FSO refuses connections mid-run: one job in error_retry, the rest wait, status names FSO; afterwards every job completes once', async () => {
    const since = await e.lastJobId();
    for (const name of ['Nord', 'Süd', 'West']) await e.fs.insert('xBPKAccount', { Name: `Verein ${name}` });
    await untilAll(since, 'dbo.xBPKAccount', 3, 'done');

    await e.fso.faults.refuseConnections(true);
    for (const name of ['Ost', 'Mitte', 'Berg', 'Tal']) await e.fs.insert('xBPKAccount', { Name: `Verein ${name}` });
    await until(async () => (await status()).job_worker.systems?.fso?.up === false, 'status shows FSO down', 20_000);
    await sleep(1000);
    const s = await status();
    assert.equal(s.job_worker.status, 4);
    assert.equal(s.job_worker.status_text, 'Error');
    assert.ok(Date.parse(s.job_worker.systems.fso.down_since) <= Date.parse(s.job_worker.systems.fso.next_probe_at), JSON.stringify(s.job_worker.systems));
    assert.match(s.job_worker.systems.fso.reason, /connection refused/);
    assert.deepEqual(s.job_worker.systems.fs, { up: true });
    const during = await jobsOf('dbo.xBPKAccount', since);
    const states = during.slice(3).map((j) => j.job_state).sort();
    assert.deepEqual(states, ['error_retry', 'new', 'new', 'new'], describeJobs(during));
    const failed = during.find((j) => j.job_state === 'error_retry')!;
    assert.ok(failed.job_retry_at, 'next attempt time recorded');
    assert.match(failed.job_error_text ?? '', /FSO .* is unavailable: connection refused/);

    await e.fso.faults.refuseConnections(false);
    const done = await untilAll(since, 'dbo.xBPKAccount', 7, 'done');
    const companies = e.fso.store.all('res.company');
    const fsIds = companies.map((c) => c.sosync_fs_id);
    assert.equal(new Set(fsIds).size, fsIds.length, 'no company created twice');
    for (const j of done) assert.ok(fsIds.includes(j.job_source_record_id), `account ${j.job_source_record_id} reached FSO`);
    assert.equal((await status()).job_worker.systems.fso.up, true);
  });

  test('FSO stalls (accepts, never answers): the job records timeout, and completes after the stall', async () => {
    const since = await e.lastJobId();
    e.fso.faults.stall(true);
    await e.fs.insert('xBPKAccount', { Name: 'Verein Stau' });
    const [job] = await untilAll(since, 'dbo.xBPKAccount', 1, 'error_retry');
    assert.equal(job.job_error_code, 'timeout');
    assert.match(job.job_error_text ?? '', /no answer within 1500 ms/);
    e.fso.faults.stall(false);
    await untilAll(since, 'dbo.xBPKAccount', 1, 'done');
  });

  test('a proxy answers 502 for FSO: error_retry naming HTTP 502, then done', async () => {
    const since = await e.lastJobId();
    e.fso.faults.answerRaw({ status: 502, contentType: 'text/html', body: '<html><body><h1>502 Bad Gateway</h1></body></html>' });
    await e.fs.insert('xBPKAccount', { Name: 'Verein Proxy' });
    const [job] = await untilAll(since, 'dbo.xBPKAccount', 1, 'error_retry');
    assert.match(job.job_error_text ?? '', /HTTP 502 .*502 Bad Gateway/);
    e.fso.faults.answerRaw(null);
    await untilAll(since, 'dbo.xBPKAccount', 1, 'done');
  });

  test('FSO answers garbage: the job ends in error at once with a clear text; the service stays up', async () => {
    const since = await e.lastJobId();
    e.fso.faults.answerRaw({ status: 200, body: 'Internal Server Error' });
    await e.fs.insert('xBPKAccount', { Name: 'Verein Kaputt' });
    const [job] = await untilAll(since, 'dbo.xBPKAccount', 1, 'error');
    e.fso.faults.answerRaw(null);
    assert.equal(job.job_retry_at, null);
    assert.match(job.job_error_text ?? '', /^FSO res\.company\.\w+ at http:\/\/127\.0\.0\.1:\d+ sent an invalid XML-RPC answer: .*Internal Server Error/);
    const s = await status();
    assert.notEqual(s.job_worker.status, 4, JSON.stringify(s.job_worker));
  });

  test('FS refuses connections: the breaker opens for FS, and the job completes when FS is back', async () => {
    const since = await e.lastJobId();
    e.fsStandIn.server.refuseConnections(true);
    const companyId = e.fso.userCreate('res.company', { name: 'Firma Ausfall' });
    await until(async () => (await status()).job_worker.systems?.fs?.up === false, 'status shows FS down', 20_000);
    const [job] = await jobsOf('res.company', since);
    assert.equal(job.job_state, 'error_retry', describeJobs([job]));
    assert.match(job.job_error_text ?? '', /FS \(127\.0\.0\.1:\d+\) is unavailable: .*\(in FS call [\w.]+\)/);
    e.fsStandIn.server.refuseConnections(false);
    await untilAll(since, 'res.company', 1, 'done');
    const rows = await e.fs.rows('xBPKAccount', '[sosync_fso_id] = @id', { id: companyId });
    assert.equal(rows.length, 1);
  });
});
