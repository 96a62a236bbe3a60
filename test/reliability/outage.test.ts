/**
 * Outages and transient failures through the real supervisor and job machine over a real sync
 * table (PGlite), with the in-memory flow throwing the adapters' own error types: a transient
 * failure ends the job in error_retry with its next attempt time, a down system opens the circuit
 * breaker (the worker pauses and probes, one log line per change), data errors end in error at once.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log.ts';
import { OnlineFaultError, OnlineUnavailableError } from '../../src/adapters/online/index.ts';
import { StudioQueryError } from '../../src/adapters/studio/index.ts';
import type { JobRow } from '../../src/adapters/syncTable/index.ts';
import { DEFAULT_RETRY_POLICY, retryDelayMs } from '../../src/machines/retry.ts';
import { startHarness, type Harness } from '../support/engine.ts';
import { sleep, until } from '../support/wait.ts';

function logCapture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, logger: createLogger({ level: 'debug', stdout: false, stream }) };
}

const refused = () => new OnlineUnavailableError('http://127.0.0.1:9', 'connection refused', { call: 'x.thing.write' });

async function announce(h: Harness, count: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < count; i++) {
    const record = h.flow.fs.insert({ n: i });
    const job = await h.table.store.createJob({ job_date: new Date(Date.UTC(2026, 0, 1, 0, 0, i)), job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: record.id });
    ids.push(job.job_id);
  }
  return ids;
}

async function rows(h: Harness, ids: number[]): Promise<JobRow[]> {
  return Promise.all(ids.map(async (id) => (await h.table.store.getJob(id))!));
}

describe('retry backoff', () => {
  test('10 s doubling to a cap of 10 min', () => {
    const delays = Array.from({ length: 10 }, (_, i) => retryDelayMs(DEFAULT_RETRY_POLICY, i + 1) / 1000);
    assert.deepEqual(delays, [10, 20, 40, 80, 160, 320, 600, 600, 600, 600]);
    assert.equal(DEFAULT_RETRY_POLICY.maxAttempts, 10);
  });
});

describe('a system goes down in the middle of a run', () => {
  test('the job hit ends in error_retry, the worker pauses and probes, one log line per change; after recovery every job completes', async () => {
    const { lines, logger } = logCapture();
    let down = true;
    let probeCalls = 0;
    let writes = 0;
    const h = await startHarness('pglite', {
      logger,
      retry: { baseMs: 300, maxMs: 2000, maxAttempts: 10 },
      probeIntervalMs: 150,
      probes: { fso: async () => { probeCalls++; if (down) throw refused(); } },
    });
    try {
      h.flow.hooks.beforeWrite = async () => { writes++; if (down) throw refused(); };
      const ids = await announce(h, 5);
      h.workers.control.processJobs();
      await until(() => h.workers.supervisor.getSnapshot().matches('outage'), 'the breaker opens');
      await sleep(800);
      // paused: one job tried, the others untouched in the queue
      assert.equal(writes, 1, 'only the first job reached FSO');
      // SPEC §4.1: the newest announcement is picked first
      const all = await rows(h, ids);
      const first = all[all.length - 1];
      const rest = all.slice(0, -1);
      assert.equal(first.job_state, 'error_retry');
      assert.equal(first.job_error_code, 'transformation');
      assert.match(first.job_error_text ?? '', /FSO x\.thing\.write at http:\/\/127\.0\.0\.1:9 is unavailable: connection refused/);
      assert.equal(first.job_retry_count, 1);
      assert.equal(first.job_run_count, 0, 'a retry starts a fresh attempt');
      assert.ok(first.job_retry_at && first.job_end && first.job_retry_at.getTime() - first.job_end.getTime() === 300, 'next attempt after the base delay');
      assert.deepEqual(rest.map((j) => j.job_state), ['new', 'new', 'new', 'new']);
      assert.ok(probeCalls >= 2, `probed while down (${probeCalls})`);
      const status = await h.workers.control.status();
      assert.equal(status.job_worker.activity, 'error');
      const fso = (status.job_worker.systems as Record<string, Record<string, unknown>>).fso;
      assert.equal(fso.up, false);
      assert.ok(fso.down_since instanceof Date && fso.next_probe_at instanceof Date && fso.next_probe_at > fso.down_since, JSON.stringify(fso));
      assert.match(String(fso.reason), /connection refused/);
      assert.deepEqual((status.job_worker.systems as Record<string, unknown>).fs, { up: true });

      down = false;
      await until(async () => (await rows(h, ids)).every((j) => j.job_state === 'done'), 'every job done after recovery');
      const retried = (await rows(h, ids)).find((j) => j.job_id === first.job_id)!;
      assert.equal(retried.job_error_text, null, 'done: no error text left');
      assert.match(retried.job_log ?? '', /transient failure 1 of at most \d+ \(transformation: FSO x\.thing\.write at .* connection refused\); next attempt at /,
        'the log keeps why the job was retried');
      assert.equal(h.flow.fso.records.size, 5, 'each record created once');
      const downLines = lines.filter((l) => /is down/.test(String(l.msg)));
      const upLines = lines.filter((l) => /is back/.test(String(l.msg)));
      assert.equal(downLines.length, 1, JSON.stringify(downLines));
      assert.equal(upLines.length, 1, JSON.stringify(upLines));
      assert.equal(downLines[0].system, 'fso');
    } finally {
      await h.close();
    }
  });

  test('a timeout is recorded as job_error_code timeout', async () => {
    let stalled = true;
    const h = await startHarness('pglite', { retry: { baseMs: 100, maxMs: 100, maxAttempts: 10 }, probeIntervalMs: 100 });
    try {
      h.flow.hooks.beforeWrite = async () => {
        if (stalled) throw new OnlineUnavailableError('http://127.0.0.1:9', 'no answer within 1000 ms', { call: 'x.thing.write', timedOut: true });
      };
      const [id] = await announce(h, 1);
      h.workers.control.processJobs();
      await until(async () => (await h.table.store.getJob(id))!.job_state === 'error_retry', 'error_retry');
      const job = (await h.table.store.getJob(id))!;
      assert.equal(job.job_error_code, 'timeout');
      assert.match(job.job_error_text ?? '', /no answer within 1000 ms/);
      stalled = false;
      await until(async () => (await h.table.store.getJob(id))!.job_state === 'done', 'done after the stall');
    } finally {
      await h.close();
    }
  });

  test('a deadlock is retried without pausing the worker; a data error ends in error at once', async () => {
    const h = await startHarness('pglite', { retry: { baseMs: 200, maxMs: 200, maxAttempts: 10 }, probeIntervalMs: 50 });
    try {
      const [deadlocked, invalid, plain] = await announce(h, 3);
      const deadlockedRecord = (await h.table.store.getJob(deadlocked))!.job_source_record_id;
      const invalidRecord = (await h.table.store.getJob(invalid))!.job_source_record_id;
      let deadlocks = 1;
      h.flow.hooks.beforeWrite = async (d) => {
        if (d.source.recordId === deadlockedRecord && deadlocks-- > 0) {
          throw new StudioQueryError('127.0.0.1:1433', 'Transaction (Process ID 57) was deadlocked on lock resources with another process and has been chosen as the deadlock victim. Rerun the transaction.', 1205);
        }
        if (d.source.recordId === invalidRecord) {
          throw new OnlineFaultError('ValidationError: bad value', 2, 'ValidationError: bad value\nTraceback ...', 'x.thing.write');
        }
      };
      let outages = 0;
      h.workers.supervisor.subscribe((s) => { if (s.matches('outage')) outages++; });
      h.workers.control.processJobs();
      await until(async () => (await h.table.store.getJob(deadlocked))!.job_state === 'done', 'the deadlocked job done on its retry');
      const [d, i, p] = await rows(h, [deadlocked, invalid, plain]);
      assert.equal(d.job_retry_count, 1);
      assert.equal(i.job_state, 'error');
      assert.equal(i.job_retry_at, null);
      assert.equal(i.job_retry_count, 0);
      assert.match(i.job_error_text ?? '', /FSO x\.thing\.write failed: ValidationError: bad value/);
      assert.equal(p.job_state, 'done');
      assert.equal(outages, 0, 'neither failure opened the breaker');
    } finally {
      await h.close();
    }
  });

  test('attempts run out: after retry_max_attempts the job ends in error; the run counter does not end it earlier', async () => {
    const h = await startHarness('pglite', { retry: { baseMs: 20, maxMs: 40, maxAttempts: 7 }, probeIntervalMs: 20 });
    try {
      let writes = 0;
      h.flow.hooks.beforeWrite = async () => { writes++; throw refused(); };
      const [id] = await announce(h, 1);
      h.workers.control.processJobs();
      await until(async () => (await h.table.store.getJob(id))!.job_state === 'error', 'error after the last attempt', 20_000);
      const job = (await h.table.store.getJob(id))!;
      assert.equal(writes, 7, 'seven attempts, more than the five starts the run counter allows');
      assert.equal(job.job_error_code, 'transformation');
      assert.match(job.job_error_text ?? '', /gave up after 7 attempts/);
      assert.equal(job.job_retry_count, 7);
      assert.equal(job.job_retry_at, null);
    } finally {
      await h.close();
    }
  });
});
