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
import pg from 'pg';
import { Logger, makeWorkerUtils, run, type Runner, type WorkerUtils } from 'graphile-worker';
import { openSyncTable } from '../src/adapters/syncTable/index.ts';
import { MemoryFlow } from '../test/support/memoryFlow.ts';
import { createTestDatabase } from '../test/support/postgres.ts';
import { benchWorkers } from './benchService.ts';
import type { Results } from './results.ts';
import { median, percentile } from './stats.ts';

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

/** where one sosync sample's time went, ms from the previous step */
export const SOSYNC_STEPS = [
  ['createJob', 'store.createJob: INSERT and commit'],
  ['toPick', 'wake → the supervisor starts its pick'],
  ['pick', 'store.pickAndStartJob: the pick, which starts the job (a prepared UPDATE … RETURNING and commit)'],
  ['toRead', 'pick → the job actor reads the record: drift gate (not due), job actor created, its start takes the row'],
] as const;
type Step = (typeof SOSYNC_STEPS)[number][0];

async function sosyncQueue(): Promise<Queue & { steps: Array<Record<Step, number>> }> {
  const database = await createTestDatabase('sosync_bench_latency');
  const table = await openSyncTable({ kind: 'postgres', ...database.config, database: database.name });
  const flow = new MemoryFlow('bench', { fs: 'dbo.Thing', fso: 'x.thing' });
  // the sample's moments, first occurrence each, until the job reads the record
  let marks: Map<string, number> | null = null;
  const mark = (name: string) => {
    if (marks && !marks.has(name)) marks.set(name, now());
  };
  const timed = <A extends unknown[], R>(name: string, fn: (...args: A) => Promise<R>) => async (...args: A): Promise<R> => {
    mark(`${name}>`);
    const result = await fn(...args);
    mark(`${name}<`);
    return result;
  };
  const store = table.store;
  // with a fresh drift check (every sample after the first) the pick starts the job (system.ts pickSingle)
  store.pickAndStartJob = timed('pick', store.pickAndStartJob.bind(store));
  let started: { id: number; resolve: (at: number) => void } | null = null;
  flow.hooks.onRead = async (system, id) => {
    if (system === 'fs' && started?.id === id) {
      started.resolve(now());
      started = null;
    }
  };
  const steps: Array<Record<Step, number>> = [];
  const workers = benchWorkers(table.store, flow);
  let announcements = 0;
  return {
    steps,
    async sample(i) {
      const record = flow.fs.insert({ i });
      const start = signal<number>(`sosync job ${i} start`);
      started = { id: record.id, resolve: start.resolve };
      marks = new Map();
      const announced = now();
      const job = await table.store.createJob({
        job_date: new Date(), job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: record.id, job_source_sosync_write_date: record.sosyncWriteDate,
      });
      mark('wake');
      workers.control.jobCreated(job);
      announcements++;
      const at = await start.promise;
      const m = marks;
      marks = null;
      const t = (name: string) => m.get(name) ?? NaN;
      steps.push({
        createJob: t('wake') - announced, toPick: t('pick>') - t('wake'), pick: t('pick<') - t('pick>'), toRead: at - t('pick<'),
      });
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
  // graphile-worker's connections come from this pool, ended before the database is dropped
  const pgPool = new pg.Pool({ connectionString: database.url });
  pgPool.on('error', () => undefined);
  let utils: WorkerUtils | null = null;
  let runner: Runner | null = null;
  const close = async () => {
    try {
      await runner?.stop();
      await utils?.release();
      await pgPool.end();
    } finally {
      await database.drop();
    }
  };
  try {
    utils = await makeWorkerUtils({ pgPool, logger });
    await utils.migrate();
    let started: ((at: number) => void) | null = null;
    let finished: (() => void) | null = null;
    runner = await run({
      pgPool,
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
async function sideBySideLatency(samples: number): Promise<{ sosync: number[]; graphile: number[]; steps: Array<Record<Step, number>> }> {
  const graphile = await graphileQueue();
  try {
    const sosync = await sosyncQueue();
    try {
      const out = { sosync: [] as number[], graphile: [] as number[], steps: sosync.steps };
      for (let i = 0; i < WARM_UP + samples; i++) {
        const g = await graphile.sample(i);
        const s = await sosync.sample(i);
        if (i >= WARM_UP) {
          out.graphile.push(g);
          out.sosync.push(s);
        }
      }
      out.steps.splice(0, WARM_UP);
      return out;
    } finally {
      await sosync.close();
    }
  } finally {
    await graphile.close();
  }
}

export async function measureLatency(results: Results, samples = LATENCY_SAMPLES): Promise<void> {
  const { sosync, graphile, steps } = await sideBySideLatency(samples);
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
  const rows = SOSYNC_STEPS.map(([key, what]) => `| ${what} | ${median(steps.map((r) => r[key])).toFixed(3)} ms |`);
  results.section('Announce-to-start latency: where sosync\'s time goes', [
    `Medians of the ${samples} sosync samples, step by step (the steps' medians need not add up to the median of the whole).`,
    '',
    '| step | median |',
    '|---|---|',
    ...rows,
    '',
    'Two round trips with two commits lie between an announcement and the job\'s first read, as with graphile-worker\'s',
    'add_job and get_job: the INSERT, and the pick that also starts the job (UPDATE … RETURNING). The drift gate (SPEC §4.4)',
    'stands between picking a job and starting it, so the pick starts the job only when the gate is sure to pass (its last',
    'check fresh, none asked for); the first sample, which measures the drift, picks and starts in two statements. The',
    'rest is the supervisor\'s and the job machine\'s transitions in between.',
  ].join('\n'));
}
