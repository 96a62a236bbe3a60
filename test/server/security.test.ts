/**
 * The API token on every route, the page and the inspection socket; /service/health; /metrics.
 * The real app, visualizer and socket over a PGlite sync table, on 127.0.0.1.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { XMLParser } from 'fast-xml-parser';
import { connectStream, startInspectedService, type InspectedService } from '../visualizer/support.ts';
import { UNAUTHORIZED_CLOSE } from '../../src/server/inspection.ts';
import { EVENT_LOOP_RESOLUTION_MS } from '../../src/server/metrics.ts';
import { sleep, until } from '../support/wait.ts';

const TOKEN = 'test-token-5f0c2a9e81d34b7a';
const bearer = { authorization: `Bearer ${TOKEN}` };

const protectedRoutes = [
  '/job/create?job_date=2026-03-01T10:00:00Z&job_source_system=fs&job_source_model=dbo.Thing&job_source_record_id=5',
  '/job/info/1', '/job/list', '/service/status', '/service/version', '/service/processjobs', '/service/processprotocol',
  '/service/forcedriftcheck', '/service/drift', '/metrics', '/inspect/machines', '/inspect/actors', '/no/such/route',
];

describe('with api_token set', () => {
  let s: InspectedService;
  before(async () => { s = await startInspectedService({}, { apiToken: TOKEN }); });
  after(async () => { await s?.close(); });
  const count = async () => Number((await s.harness.table.db.query<{ n: string }>('SELECT count(*) AS n FROM sync_table')).rows[0].n);

  test('every route but /service/health answers 401 naming the Authorization header, and does nothing', async () => {
    for (const route of protectedRoutes) {
      const res = await fetch(s.baseUrl + route);
      assert.equal(res.status, 401, route);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="sosync"');
      const body = (await res.json()) as any;
      assert.equal(body.error, 'unauthorized');
      assert.match(body.error_detail.authorization, /is missing: send "Authorization: Bearer <api_token>"/);
    }
    const post = await fetch(`${s.baseUrl}/job/create`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"job_date":"2026-03-01T10:00:00Z","job_source_system":"fs","job_source_model":"dbo.Thing","job_source_record_id":5}' });
    assert.equal(post.status, 401);
    assert.equal(await count(), 0, 'nothing stored without the token');
  });

  test('a wrong token, another scheme, and the XML form of the answer', async () => {
    const wrong = await fetch(`${s.baseUrl}/service/status`, { headers: { authorization: `Bearer ${TOKEN}x` } });
    assert.equal(wrong.status, 401);
    assert.match(((await wrong.json()) as any).error_detail.authorization, /does not carry the api_token/);
    const prefix = await fetch(`${s.baseUrl}/service/status`, { headers: { authorization: `Bearer ${TOKEN.slice(0, -1)}` } });
    assert.equal(prefix.status, 401, 'a prefix of the token is not the token');
    const basic = await fetch(`${s.baseUrl}/service/status`, { headers: { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` } });
    assert.equal(basic.status, 401);
    assert.match(((await basic.json()) as any).error_detail.authorization, /is not a Bearer token/);
    const xml = await fetch(`${s.baseUrl}/job/list`, { headers: { accept: 'application/xml' } });
    assert.equal(xml.status, 401);
    assert.match(xml.headers.get('content-type') ?? '', /application\/xml/);
    const parsed = new XMLParser().parse(await xml.text());
    assert.match(parsed.error.error_detail.authorization, /is missing/);
  });

  test('with the token, the routes answer; a job announced with it is stored', async () => {
    const status = await fetch(`${s.baseUrl}/service/status`, { headers: bearer });
    assert.equal(status.status, 200);
    const lower = await fetch(`${s.baseUrl}/inspect/machines`, { headers: { authorization: `bearer  ${TOKEN}` } });
    assert.equal(lower.status, 200, 'the scheme is case-insensitive');
    const id = await s.announce('with token');
    assert.ok(id > 0);
    assert.equal(await count(), 1);
  });

  test('/service/health is open and says only up', async () => {
    const res = await fetch(`${s.baseUrl}/service/health`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'up' });
  });

  test('the page\'s files load without the token; the data they ask for needs it', async () => {
    for (const file of ['/visualizer/', '/visualizer/app.js', '/visualizer/token.js', '/visualizer/stately.html']) {
      assert.equal((await fetch(s.baseUrl + file)).status, 200, file);
    }
    assert.equal((await fetch(`${s.baseUrl}/`, { redirect: 'manual' })).status, 302);
    assert.equal((await fetch(`${s.baseUrl}/inspect/actors`)).status, 401);
    assert.equal((await fetch(`${s.baseUrl}/inspect/actors`, { headers: bearer })).status, 200);
  });

  describe('the inspection socket', () => {
    test('a right token in the Authorization header: the replay comes at once', async () => {
      const client = await connectStream(s.wsUrl, { headers: bearer });
      try {
        await client.waitFor('a replayed snapshot', (m) => m.type === '@xstate.snapshot' || m.type === '@xstate.actor');
      } finally {
        client.close();
      }
    });

    test('a wrong token in the header: the upgrade is refused with 401', async () => {
      const ws = new WebSocket(s.wsUrl, { headers: { authorization: 'Bearer wrong-token-0000000000' } });
      const status = await new Promise<number>((resolve) => {
        ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.once('open', () => resolve(101));
        ws.once('error', () => resolve(-1));
      });
      ws.terminate();
      assert.equal(status, 401);
    });

    test('the token as first message: nothing before it, the replay after it', async () => {
      const waiting = await connectStream(s.wsUrl);
      const admitted = await connectStream(s.wsUrl, { headers: bearer });
      try {
        const jobId = await s.announce('while a client waits');
        // the admitted client sees the job end; the same messages went out to every admitted socket
        await admitted.waitFor('the job\'s end', (m) => m.type === '@xstate.snapshot' && m.snapshot?.status === 'done' && JSON.stringify(m.snapshot).includes(`"job_id":${jobId}`));
        await sleep(200);
        assert.equal(waiting.messages.length, 0, 'a client without the token receives nothing');
      } finally {
        waiting.close();
        admitted.close();
      }
      const client = await connectStream(s.wsUrl, { token: TOKEN });
      try {
        await client.waitFor('a replayed snapshot', (m) => m.type === '@xstate.snapshot' || m.type === '@xstate.actor');
      } finally {
        client.close();
      }
    });

    test('a wrong first message closes the socket with 4401 and sends nothing', async () => {
      const client = await connectStream(s.wsUrl, { token: 'not-the-token-123456' });
      assert.equal(await client.closed, UNAUTHORIZED_CLOSE);
      assert.equal(client.messages.length, 0);
      const text = await connectStream(s.wsUrl);
      const raw = new WebSocket(s.wsUrl);
      await new Promise((resolve) => raw.once('open', resolve));
      raw.send(TOKEN);
      const code = await new Promise<number>((resolve) => raw.once('close', (c) => resolve(c)));
      assert.equal(code, UNAUTHORIZED_CLOSE, 'the bare token is not the agreed first message');
      text.close();
    });

    test('a client that sends nothing is closed with 4401 after a while', async () => {
      const client = await connectStream(s.wsUrl);
      assert.equal(await client.closed, UNAUTHORIZED_CLOSE);
      assert.equal(client.messages.length, 0);
    });
  });

  test('/metrics: Prometheus text with jobs, durations, queue and worker status', async () => {
    await s.announce('metrics');
    await until(async () => (await s.harness.table.store.countOpenRootJobs()) === 0, 'job ran');
    const res = await fetch(`${s.baseUrl}/metrics`, { headers: bearer });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.match(text, /^sosync_jobs_finished_total\{model="dbo\.Thing",outcome="done"\} [1-9]/m);
    assert.match(text, /^sosync_job_duration_seconds_count\{model="dbo\.Thing",outcome="done"\} [1-9]/m);
    assert.match(text, /^sosync_queue_length 0$/m);
    assert.match(text, /^sosync_oldest_open_job_age_seconds 0$/m);
    assert.match(text, /^sosync_worker_status\{worker="job"\} [0-4]$/m);
    assert.match(text, /^sosync_worker_status\{worker="protocol"\} 4$/m, 'the harness runs no protocol worker');
    assert.match(text, /^process_cpu_seconds_total /m);
    // node's histogram records the time between two samples: each figure is the sampling interval
    // plus the delay, and the workers bench takes EVENT_LOOP_RESOLUTION_MS off
    const lagMs = Number(/^nodejs_eventloop_lag_mean_seconds (\S+)$/m.exec(text)?.[1]) * 1000;
    assert.ok(lagMs >= 0.9 * EVENT_LOOP_RESOLUTION_MS, `the mean event loop lag (${lagMs} ms) holds the ${EVENT_LOOP_RESOLUTION_MS} ms sampling interval`);
  });
});

describe('open jobs in /metrics and an unreachable sync table in /service/health', () => {
  let s: InspectedService;
  before(async () => {
    s = await startInspectedService();
    s.harness.workers.supervisor.send({ type: 'STOP' });
  });
  after(async () => { await s?.close(); });

  test('without a token everything is open (the default)', async () => {
    assert.equal((await fetch(`${s.baseUrl}/service/status`)).status, 200);
  });

  test('open jobs by state and model, and the oldest one\'s age', async () => {
    await s.announce('a');
    await s.announce('b');
    await s.harness.table.db.query(`UPDATE sync_table SET job_fetched = job_fetched - interval '90 seconds' WHERE job_id = (SELECT min(job_id) FROM sync_table)`);
    const text = await (await fetch(`${s.baseUrl}/metrics`)).text();
    assert.match(text, /^sosync_jobs\{state="new",model="dbo\.Thing"\} 2$/m);
    assert.match(text, /^sosync_queue_length 2$/m);
    const age = Number(/^sosync_oldest_open_job_age_seconds (\S+)$/m.exec(text)?.[1]);
    assert.ok(age >= 90 && age < 3600, `age ${age}`);
  });

  test('health: 503 with a reason once the sync table is gone', async () => {
    await s.harness.table.db.query('ALTER TABLE sync_table RENAME TO sync_table_away');
    try {
      const res = await fetch(`${s.baseUrl}/service/health`, { headers: { accept: 'application/xml' } });
      assert.equal(res.status, 503);
      const body = new XMLParser().parse(await res.text());
      assert.deepEqual(body.health, { status: 'down', reason: 'sync table not reachable' }, 'no error detail leaks');
    } finally {
      await s.harness.table.db.query('ALTER TABLE sync_table_away RENAME TO sync_table');
    }
    assert.equal((await fetch(`${s.baseUrl}/service/health`)).status, 200);
  });
});
