/**
 * sandbox_fs_latency_ms / sandbox_fso_latency_ms: the stand-ins (as `npm run standins` runs them,
 * through the benchmarks' harness) hold every FS request and every FSO call for the given time
 * before answering, so a benchmark on loopback sees a network's round trips; 0 (the default) adds
 * nothing. Only lower bounds of the injected delay are asserted — the time a call takes beyond it
 * is the machine's business. "0 adds nothing": the fastest of five calls to stand-ins started without
 * the keys stays below the delays injected here (far above a loopback call, even on a busy machine).
 */
import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type sql from 'mssql';
import type { OnlineClient } from '../../src/adapters/online/index.ts';
import { connectSystems, ensureBuilt, startStandIns, type StandInsProcess } from '../../bench/harness/processes.ts';
import { readConfig } from '../../src/config/index.ts';

const FS_LATENCY_MS = 200;
const FSO_LATENCY_MS = 300;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sosync-latency-'));
const started: StandInsProcess[] = [];
const clients: Array<{ fsPool: sql.ConnectionPool; online: OnlineClient }> = [];

async function timed(call: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await call();
  return performance.now() - t0;
}

/** the fastest of `n` calls: what the stand-in adds at least to every call */
async function fastest(n: number, call: () => Promise<unknown>): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < n; i++) best = Math.min(best, await timed(call));
  return best;
}

let slow: { fsPool: sql.ConnectionPool; online: OnlineClient };
let plain: { fsPool: sql.ConnectionPool; online: OnlineClient };

before(async () => {
  ensureBuilt();
  const [delayed, undelayed] = await Promise.all([
    startStandIns(path.join(dir, 'slow'), { persons: 3, sosyncPort: 1, fsLatencyMs: FS_LATENCY_MS, fsoLatencyMs: FSO_LATENCY_MS }),
    startStandIns(path.join(dir, 'plain'), { persons: 3, sosyncPort: 1 }),
  ]);
  started.push(delayed, undelayed);
  slow = await connectSystems(delayed);
  plain = await connectSystems(undelayed);
  clients.push(slow, plain);
});

after(async () => {
  for (const c of clients) {
    await c.fsPool.close().catch(() => undefined);
    await c.online.close();
  }
  for (const s of started) {
    s.child.kill('SIGTERM');
    if (s.child.exitCode === null && s.child.signalCode === null) await new Promise((resolve) => s.child.once('exit', resolve));
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('stand-in latency injection', () => {
  test('the keys default to 0 and take a number of milliseconds', () => {
    const { config } = readConfig([]);
    assert.equal(config.sandboxOptions.fsLatencyMs, 0);
    assert.equal(config.sandboxOptions.fsoLatencyMs, 0);
    const { config: set } = readConfig(['--sandbox_fs_latency_ms', '5', '--sandbox_fso_latency_ms', '20']);
    assert.equal(set.sandboxOptions.fsLatencyMs, 5);
    assert.equal(set.sandboxOptions.fsoLatencyMs, 20);
    assert.throws(() => readConfig(['--sandbox_fso_latency_ms', '-1']), /negative/);
  });

  test('every FS request waits at least sandbox_fs_latency_ms: a batch, an RPC, a transaction', async () => {
    const { fsPool } = slow;
    // timers may fire up to a millisecond early against performance.now()
    const atLeast = FS_LATENCY_MS - 1;
    assert.ok(await timed(() => fsPool.request().query('SELECT 1 AS one')) >= atLeast, 'SQL batch');
    assert.ok(await timed(() => fsPool.request().input('id', 1).query('SELECT @id AS id')) >= atLeast, 'RPC (sp_executesql)');
    // begin, one statement, commit: three requests
    const transaction = await timed(async () => {
      const tx = fsPool.transaction();
      await tx.begin();
      await tx.request().query('SELECT 1 AS one');
      await tx.commit();
    });
    assert.ok(transaction >= 3 * atLeast, `a transaction of three requests took ${transaction.toFixed(0)} ms`);
  });

  test('every FSO XML-RPC call waits at least sandbox_fso_latency_ms', async () => {
    const { online } = slow;
    const atLeast = FSO_LATENCY_MS - 1;
    assert.ok(await timed(() => online.version()) >= atLeast, 'common.version');
    await online.search('res.partner', [], { limit: 1 }); // logs in first
    assert.ok(await timed(() => online.search('res.partner', [], { limit: 1 })) >= atLeast, 'object.execute_kw');
  });

  test('latency 0 (the default) adds none', async () => {
    const fsBest = await fastest(5, () => plain.fsPool.request().query('SELECT 1 AS one'));
    const fsoBest = await fastest(5, () => plain.online.search('res.partner', [], { limit: 1 }));
    assert.ok(fsBest < FS_LATENCY_MS, `FS: fastest of 5 calls ${fsBest.toFixed(1)} ms`);
    assert.ok(fsoBest < FSO_LATENCY_MS, `FSO: fastest of 5 calls ${fsoBest.toFixed(1)} ms`);
  });
});
