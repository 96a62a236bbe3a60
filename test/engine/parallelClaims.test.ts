/**
 * The worker system's slots and their claims on a real PostgreSQL sync table: while one slot runs
 * a job, another slot's claim passes over it without locking its row, so the running job's own
 * writes never wait for somebody else's claim (a claim that locked it would hold the row until it
 * commits; with eight slots that made every job wait for the others' claims). And slots that reach
 * the drift gate together share one measurement.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ClaimSession, openSyncTable, type OpenedSyncTable } from '../../src/adapters/syncTable/index.ts';
import type { DriftSource } from '../../src/adapters/clock/index.ts';
import { FlowRegistry } from '../../src/flows/registry.ts';
import { silentLogger } from '../../src/log.ts';
import { createWorkerSystem, type WorkerSystem } from '../../src/machines/system.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { MemoryFlow } from '../support/memoryFlow.ts';
import { until } from '../support/wait.ts';

describe('parallel slots on PostgreSQL', () => {
  let database: TestDatabase;
  let table: OpenedSyncTable;
  let workers: WorkerSystem | null = null;
  let others: WorkerSystem | null = null;
  const sessions: ClaimSession[] = [];
  before(async () => {
    database = await createTestDatabase('sosync_parallel_claims');
    table = await openSyncTable({ kind: 'postgres', ...database.config });
  });
  after(async () => {
    await workers?.stop();
    await others?.stop();
    for (const s of sessions) await s.close();
    await table.db.close();
    await database.drop();
  });

  /** `workers` slots over the real table, each with a claim session of its own */
  const slots = (flow: MemoryFlow, count: number, measure: DriftSource['measure']) => createWorkerSystem({
    store: table.store, flows: new FlowRegistry([flow]), logger: silentLogger(), protocol: null, throttleMs: 0, toleranceMs: 30,
    drift: { measure },
    parallel: {
      workers: count,
      openClaims: (slot) => {
        const s = new ClaimSession(database.config, `${slot} parallelClaims`);
        sessions.push(s);
        return s;
      },
    },
  });

  it('a slot claims the next job without locking the row of the job another slot runs', async () => {
    let releaseFirst!: () => void;
    const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve));
    const reads: number[] = [];
    const flow = new MemoryFlow('claims', { fs: 'dbo.Thing', fso: 'x.thing' }, {
      onRead: async (system, id) => {
        if (system !== 'fs') return;
        reads.push(id);
        if (id === first.id) await firstHeld;
      },
    });
    const first = flow.fs.insert({ n: 1 });
    const second = flow.fs.insert({ n: 2 });
    const announce = (id: number, minutesAgo: number) => table.store.createJob({
      job_date: new Date(Date.now() - minutesAgo * 60_000), job_source_system: 'fs', job_source_model: 'dbo.Thing',
      job_source_record_id: id, job_source_sosync_write_date: flow.fs.records.get(id)!.sosyncWriteDate,
    });
    const firstJob = await announce(first.id, 1);
    const xmax = async (jobId: number) => (await table.db.query<{ xmax: string; job_state: string }>(
      'SELECT xmax::text AS xmax, job_state FROM sync_table WHERE job_id = $1', [jobId])).rows[0];

    workers = slots(flow, 2, async () => ({ at: new Date(), sources: {}, ok: true }));
    try {
      workers.control.processJobs();
      // the first job runs in one slot (started, then held in its read); the other slot found nothing
      // and is idle. Its claim may have raced the first slot's (sent before that claim was known), so
      // the row's lock marker (xmax) is read now, and no claim made from here on may change it.
      const idleSlots = () => workers!.slots().filter((slot) => slot.getSnapshot().matches('idle')).length;
      await until(async () => reads.includes(first.id) && idleSlots() === 1, 'the first job is held in its read, the other slot idle', 20_000);
      const running = await xmax(firstJob.job_id);
      assert.equal(running.job_state, 'inprogress');

      const secondJob = await announce(second.id, 2);
      workers.control.processJobs();
      await until(async () => reads.includes(second.id), 'the other slot claimed and read the second job', 20_000);
      const after = await xmax(firstJob.job_id);
      assert.equal(after.job_state, 'inprogress');
      assert.equal(after.xmax, running.xmax, 'no claim locked the row of the job the other slot runs');
      releaseFirst();
      await workers.whenIdle();
      const states = (await table.db.query<{ job_id: number; job_state: string }>('SELECT job_id, job_state FROM sync_table ORDER BY job_id')).rows;
      assert.deepEqual(states.map((r) => [Number(r.job_id), r.job_state]), [[Number(firstJob.job_id), 'done'], [Number(secondJob.job_id), 'done']]);
    } finally {
      releaseFirst();
      // a failed check must not leave these slots claiming the next test's jobs
      await workers.stop();
      workers = null;
    }
  });

  it('slots that reach the drift gate at once share one measurement', async () => {
    await table.db.query('DELETE FROM sync_table');
    const flow = new MemoryFlow('gate', { fs: 'dbo.Gate', fso: 'x.gate' });
    for (let i = 0; i < 8; i += 1) {
      const record = flow.fs.insert({ i });
      await table.store.createJob({
        job_date: new Date(), job_source_system: 'fs', job_source_model: 'dbo.Gate',
        job_source_record_id: record.id, job_source_sosync_write_date: record.sosyncWriteDate,
      });
    }
    let measurements = 0;
    // a measurement takes a while (NTP servers and FS answer over the network): every slot reaches the gate meanwhile
    others = slots(flow, 4, async () => {
      measurements += 1;
      await new Promise((r) => setTimeout(r, 200));
      return { at: new Date(), sources: {}, ok: true };
    });
    others.control.processJobs();
    await others.whenIdle();
    const done = (await table.db.query<{ n: string }>(`SELECT count(*) AS n FROM sync_table WHERE job_state = 'done'`)).rows[0].n;
    assert.equal(Number(done), 8);
    assert.equal(measurements, 1, 'four slots, one drift measurement');
  });
});
