/**
 * A single worker whose drift gate is sure to pass starts the job in the statement that picks it
 * (one round trip fewer between an announcement and its job); when the gate has to measure first,
 * the pick only picks and the job starts itself after the gate (SPEC §4.2 step 1, §4.4). Either
 * way the job's row says it started once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SyncTableStore } from '../../src/adapters/syncTable/index.ts';
import { FlowRegistry } from '../../src/flows/registry.ts';
import { silentLogger } from '../../src/log.ts';
import { createWorkerSystem } from '../../src/machines/system.ts';
import { openTable } from '../support/engine.ts';
import { MemoryFlow } from '../support/memoryFlow.ts';

/** The real store, with the calls the worker makes of it counted by name. */
function counted(store: SyncTableStore): { store: SyncTableStore; calls: string[] } {
  const calls: string[] = [];
  const proxy = new Proxy(store, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.push(String(name));
        return value.apply(target, args);
      };
    },
  });
  return { store: proxy, calls };
}

for (const kind of ['postgres', 'pglite'] as const) {
  describe(`pick and start in one statement (${kind})`, () => {
    it('the first job waits for the gate\'s measurement and starts itself; the next is started by its pick', async () => {
      const { table, drop } = await openTable(kind);
      const flow = new MemoryFlow('pick', { fs: 'dbo.Thing', fso: 'x.thing' });
      const { store, calls } = counted(table.store);
      let measurements = 0;
      const workers = createWorkerSystem({
        store, flows: new FlowRegistry([flow]), logger: silentLogger(), protocol: null, throttleMs: 0, toleranceMs: 30,
        drift: { measure: async () => { measurements += 1; return { at: new Date(), sources: {}, ok: true }; } },
      });
      try {
        const announce = async () => {
          const record = flow.fs.insert({ n: 1 });
          return table.store.createJob({
            job_date: new Date(), job_source_system: 'fs', job_source_model: 'dbo.Thing',
            job_source_record_id: record.id, job_source_sosync_write_date: record.sosyncWriteDate,
          });
        };
        const runOne = async () => {
          const job = await announce();
          calls.length = 0;
          workers.control.processJobs();
          await workers.whenIdle();
          const row = (await table.store.getJob(job.job_id))!;
          assert.equal(row.job_state, 'done');
          assert.equal(row.job_run_count, 1, 'the job started once');
          assert.ok(row.job_start, 'job_start is set');
          return calls.filter((c) => c === 'pickNextJob' || c === 'pickAndStartJob' || c === 'startJob');
        };

        // the pick that finds the queue empty comes after the check, so it is one that would start a job
        assert.deepEqual(await runOne(), ['pickNextJob', 'startJob', 'pickAndStartJob'], 'no check yet: pick, gate (measures), start');
        assert.equal(measurements, 1);
        assert.deepEqual(await runOne(), ['pickAndStartJob', 'pickAndStartJob'], 'the gate passes for sure: the pick starts the job');
        assert.equal(measurements, 1, 'no second measurement within the interval');

        workers.control.forceDriftCheck();
        await workers.whenIdle();
        assert.deepEqual(await runOne(), ['pickNextJob', 'startJob', 'pickAndStartJob'], 'a check was asked for: the gate measures before the job starts');
        assert.equal(measurements, 2);
      } finally {
        await workers.stop();
        await drop();
      }
    });
  });
}
