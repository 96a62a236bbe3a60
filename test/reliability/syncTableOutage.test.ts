/**
 * PostgreSQL going away under the sync table: a TCP relay on 127.0.0.1 between sosync and the
 * server is cut (listening stops, open connections are dropped) and restored. The job worker shows
 * status 4 with the reason, no job is lost, and work resumes by itself when the database returns.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { openSyncTable } from '../../src/adapters/syncTable/index.ts';
import { createClock, createDriftSource } from '../../src/adapters/clock/index.ts';
import { FlowRegistry } from '../../src/flows/registry.ts';
import { createWorkerSystem } from '../../src/machines/system.ts';
import { serviceStatus } from '../../src/server/workerStatus.ts';
import { silentLogger } from '../../src/log.ts';
import { startNtpStandIn } from '../../sandbox/ntp/ntpStandIn.ts';
import { MemoryFlow } from '../support/memoryFlow.ts';
import { createTestDatabase } from '../support/postgres.ts';
import { until } from '../support/wait.ts';

/** A TCP relay to `target` that can be cut (refuses and drops connections) and restored. */
async function startRelay(target: { host: string; port: number }) {
  const sockets = new Set<net.Socket>();
  let cut = false;
  const server = net.createServer((client) => {
    if (cut) return client.destroy();
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => { sockets.delete(s); client.destroy(); upstream.destroy(); });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      cut = true;
      for (const s of sockets) s.destroy();
    },
    restore() { cut = false; },
    close: () => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}

describe('PostgreSQL goes away', () => {
  test('status 4 while it is gone, nothing lost, work resumes by itself, no record written twice', async () => {
    const database = await createTestDatabase();
    const relay = await startRelay(database.config);
    const table = await openSyncTable({ kind: 'postgres', ...database.config, port: relay.port, database: database.name, connectTimeoutMs: 1000, statementTimeoutMs: 2000 });
    const ntp = await startNtpStandIn();
    const clock = createClock({ ntpServers: [`127.0.0.1:${ntp.port}`], timeoutMs: 300, sampleCount: 1, logger: silentLogger() });
    const flow = new MemoryFlow('memory', { fs: 'dbo.Thing', fso: 'x.thing' });
    const workers = createWorkerSystem({
      store: table.store, flows: new FlowRegistry([flow]), drift: createDriftSource({ clock, toleranceMs: 1000 }),
      toleranceMs: 1000, throttleMs: 0, logger: silentLogger(), protocol: null, faultRetryMs: 300,
    });
    try {
      const ids: number[] = [];
      for (let i = 0; i < 6; i++) {
        const record = flow.fs.insert({ n: i });
        ids.push((await table.store.createJob({ job_date: new Date(), job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: record.id })).job_id);
      }
      // the database goes away while the third job writes its target: its outcome cannot be recorded
      let writes = 0;
      let interrupted: number | null = null;
      flow.hooks.beforeWrite = async (direction) => {
        if (++writes !== 3) return;
        interrupted = direction.source.recordId;
        relay.cut();
      };
      workers.control.processJobs();
      await until(() => workers.supervisor.getSnapshot().matches('faulted'), 'the worker faults');
      const report = await workers.control.status();
      const shown = serviceStatus(report.job_worker);
      assert.equal(shown.status, 4, JSON.stringify(shown));
      assert.equal(shown.open_jobs, null, 'the queue length is unknown while the database is gone');
      assert.match(String(shown.last_error), /could not be recorded|failed/);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.ok(workers.supervisor.getSnapshot().matches('faulted') || workers.supervisor.getSnapshot().matches('pass'), 'still retrying, not stopped');

      relay.restore();
      await until(async () => {
        const rows = await Promise.all(ids.map((id) => table.store.getJob(id)));
        return rows.every((r) => r?.job_state === 'done');
      }, 'every job done after the database returned', 20_000);
      assert.equal(flow.fso.records.size, 6, 'each record written once, the interrupted job included');
      // the job whose write the database went away in (jobs announced in one millisecond tie on job_date)
      const rows = await Promise.all(ids.map((id) => table.store.getJob(id)));
      const third = rows.find((r) => r!.job_source_record_id === interrupted)!;
      assert.equal(third.job_run_count, 2, 'the interrupted job ran again');
      assert.deepEqual(rows.filter((r) => r !== third).map((r) => r!.job_run_count), [1, 1, 1, 1, 1], 'the others ran once');
    } finally {
      await workers.stop(2000);
      await ntp.close();
      await table.db.close();
      await relay.close();
      await database.drop();
    }
  });
});
