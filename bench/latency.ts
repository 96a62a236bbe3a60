/**
 * Announce-to-start latency on an idle queue (issue 14 point 2), PostgreSQL only, side by side with
 * graphile-worker on the same server in the same run, each on a fresh database dropped afterwards.
 *
 * sosync: the real worker system on the real PostgreSQL store with the in-memory bench flow. One
 * announcement is what /job/create does — store.createJob, then control.jobCreated wakes the
 * supervisor — and the job has started when its actor first reads the record (the flow's `onRead`
 * hook): after the pick, the drift gate and job_start are behind it.
 * graphile-worker: a runner with its defaults (LISTEN/NOTIFY, poll interval 2 s, concurrency 1);
 * one announcement is workerUtils.addJob, and the job has started when the task function is called.
 *
 * One announcement at a time: each waits until the previous job has finished, after a warm-up; the
 * two queues take turns, one announcement each.
 */
import { Logger, makeWorkerUtils, run, type Runner, type WorkerUtils } from 'graphile-worker';
import { openSyncTable } from '../src/adapters/syncTable/index.ts';
import { MemoryFlow } from '../test/support/memoryFlow.ts';
import { createTestDatabase } from '../test/support/postgres.ts';
import { benchWorkers } from './app.ts';
import { percentile, type Results } from './results.ts';

export const LATENCY_SAMPLES = Number(process.env.BENCH_LATENCY_N ?? 200);
const WARM_UP = 20;
/** no single job may take longer than this to start and finish */
const SAMPLE_TIMEOUT_MS = 10_000;

const now = () => Number(process.hrtime.bigint()) / 1e6;

/** a promise with its resolve, failing after SAMPLE_TIMEOUT_MS */
function signal<T>(what: string): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  let timer: NodeJS.Timeout;
  const promise = new Promise<T>((res, reject) => {
    resolve = (value) => {
      clearTimeout(timer);
      res(value);
    };
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${SAMPLE_TIMEOUT_MS} ms`)), SAMPLE_TIMEOUT_MS);
  });
  return { promise, resolve };
}

/** one queue under test: announce one job, resolve with ms to its start once it has finished */
interface Queue {
  sample(i: number): Promise<number>;
  close(): Promise<void>;
}

async function sosyncQueue(): Promise<Queue> {
  const database = await createTestDatabase('sosync_bench_latency');
  const table = await openSyncTable({ kind: 'postgres', ...database.config, database: database.name });
  const flow = new MemoryFlow('bench', { fs: 'dbo.Thing', fso: 'x.thing' });
  let started: { id: number; resolve: (at: number) => void } | null = null;
  flow.hooks.onRead = async (system, id) => {
    if (system === 'fs' && started?.id === id) {
      started.resolve(now());
      started = null;
    }
  };
  const workers = benchWorkers(table.store, flow);
  let announcements = 0;
  return {
    async sample(i) {
      const record = flow.fs.insert({ i });
      const start = signal<number>(`sosync job ${i} start`);
      started = { id: record.id, resolve: start.resolve };
      const announced = now();
      const job = await table.store.createJob({
        job_date: new Date(), job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: record.id, job_source_sosync_write_date: record.sosyncWriteDate,
      });
      workers.control.jobCreated(job);
      announcements++;
      const at = await start.promise;
      await workers.whenIdle();
      return at - announced;
    },
    async close() {
      try {
        const done = Number((await table.db.query<{ n: string }>(`SELECT count(*) AS n FROM sync_table WHERE job_state = 'done'`)).rows[0].n);
        if (done !== announcements) throw new Error(`expected ${announcements} done jobs, found ${done}`);
      } finally {
        await workers.stop();
        await table.db.close();
        await database.drop();
      }
    },
  };
}

async function graphileQueue(): Promise<Queue> {
  const database = await createTestDatabase('graphile_bench_latency');
  const logger = new Logger(() => () => undefined);
  let utils: WorkerUtils | null = null;
  let runner: Runner | null = null;
  const close = async () => {
    await runner?.stop();
    await utils?.release();
    await database.drop();
  };
  try {
    utils = await makeWorkerUtils({ connectionString: database.url, logger });
    await utils.migrate();
    let started: ((at: number) => void) | null = null;
    let finished: (() => void) | null = null;
    runner = await run({
      connectionString: database.url,
      concurrency: 1,
      noHandleSignals: true,
      logger,
      taskList: {
        bench: async () => {
          started?.(now());
          started = null;
        },
      },
    });
    runner.events.on('job:complete', () => {
      finished?.();
      finished = null;
    });
    const addJob = utils.addJob.bind(utils);
    return {
      async sample(i) {
        const start = signal<number>(`graphile-worker job ${i} start`);
        const end = signal<void>(`graphile-worker job ${i} end`);
        started = start.resolve;
        finished = end.resolve;
        const announced = now();
        await addJob('bench', { i });
        const at = await start.promise;
        await end.promise;
        return at - announced;
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * Both queues run side by side, idle but for the one job under way; their samples alternate so
 * that both see the same machine (load from elsewhere, the server's WAL flushes) through the run.
 */
async function sideBySideLatency(samples: number): Promise<{ sosync: number[]; graphile: number[] }> {
  const graphile = await graphileQueue();
  try {
    const sosync = await sosyncQueue();
    try {
      const out = { sosync: [] as number[], graphile: [] as number[] };
      for (let i = 0; i < WARM_UP + samples; i++) {
        const g = await graphile.sample(i);
        const s = await sosync.sample(i);
        if (i >= WARM_UP) {
          out.graphile.push(g);
          out.sosync.push(s);
        }
      }
      return out;
    } finally {
      await sosync.close();
    }
  } finally {
    await graphile.close();
  }
}

export async function measureLatency(results: Results, samples = LATENCY_SAMPLES): Promise<void> {
  const { sosync, graphile } = await sideBySideLatency(samples);
  const ms = (v: number) => `${v.toFixed(2)} ms`;
  for (const p of [50, 99]) {
    const s = percentile(sosync, p);
    const g = percentile(graphile, p);
    results.add({
      store: 'postgres',
      benchmark: `announce-to-start latency on an idle queue, p${p} of ${samples} (store.createJob + wake → job actor reads the record)`,
      value: ms(s),
      baseline: `graphile-worker 0.16 addJob → task start ${ms(g)}`,
      ratio: s / g,
      ...(p === 50 ? { target: '≤ 1.0', met: s <= g } : {}),
    });
  }
}
