/**
 * What live inspection costs per job: the same jobs through the job engine (supervisor, job
 * machines, an in-memory flow over a real sync table) with inspection off, on with nobody
 * watching, and on with one viewer subscribed. Rounds alternate the three (in a rotating order)
 * on the same table, so load from elsewhere on the machine hits each alike; each figure is the
 * median per-job time over the rounds, and the ratios are against inspection off in the same run.
 * Both the wall time and the process's CPU time are taken: on PGlite the whole job runs in this
 * process, so its CPU time is the cost itself and is less disturbed by other work on the machine.
 *
 * Target (issue 14): on with nobody watching ≤ 1.05 × off.
 * Run alone: `npx tsx bench/inspection.ts` (BENCH_JOBS, BENCH_ROUNDS, BENCH_STORE=pglite|postgres,
 * BENCH_MODES=off,unwatched to run only some modes, e.g. under a CPU profiler).
 *
 * With nobody watching, an attached system runs exactly the per-job code of inspection off (XState
 * is asked for no inspection event), so the unwatched ratio shows this bench's noise: on a busy
 * 2-core machine single runs spread about ±6 % around 1.
 */
import { fileURLToPath } from 'node:url';
import { createInspection } from '../src/inspection/index.ts';
import { createWorkerSystem } from '../src/machines/system.ts';
import { FlowRegistry } from '../src/flows/registry.ts';
import { silentLogger } from '../src/log.ts';
import { openTable, type StoreKind } from '../test/support/engine.ts';
import { MemoryFlow } from '../test/support/memoryFlow.ts';
import { median } from './stats.ts';

type Mode = 'off' | 'unwatched' | 'watched';
const modes: readonly Mode[] = ['off', 'unwatched', 'watched'];

export interface InspectionCost {
  kind: StoreKind;
  jobs: number;
  rounds: number;
  /** median µs per job, wall and CPU */
  wallUs: Record<Mode, number>;
  cpuUs: Record<Mode, number>;
  /** messages the viewer received in its rounds (proves the watched rounds did serialize) */
  watchedMessages: number;
}

export async function measureInspectionCost(kind: StoreKind, jobs = 200, rounds = 7, only: readonly Mode[] = modes): Promise<InspectionCost> {
  const logger = silentLogger();
  const { table, drop } = await openTable(kind);
  const flow = new MemoryFlow('bench', { fs: 'dbo.Thing', fso: 'x.thing' });
  const wall: Record<Mode, number[]> = { off: [], unwatched: [], watched: [] };
  const cpu: Record<Mode, number[]> = { off: [], unwatched: [], watched: [] };
  let watchedMessages = 0;

  async function round(mode: Mode): Promise<void> {
    await table.db.query('DELETE FROM sync_table');
    flow.fs.reset();
    flow.fso.reset();
    const records = Array.from({ length: jobs }, (_, i) => flow.fs.insert({ i }));
    const inspection = mode === 'off' ? null : createInspection(logger);
    const unsubscribe = mode === 'watched' ? inspection!.subscribe(() => watchedMessages++) : null;
    const workers = createWorkerSystem({
      store: table.store, flows: new FlowRegistry([flow]), logger, protocol: null, throttleMs: 0, toleranceMs: 30,
      drift: { measure: async () => ({ at: new Date(), sources: {}, ok: true }) },
    });
    // as the service wires it: the system is inspected only while somebody is subscribed
    inspection?.attach(workers.supervisor);
    for (const r of records) {
      await table.store.createJob({ job_date: new Date(), job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: r.id, job_source_sosync_write_date: r.sosyncWriteDate });
    }
    const start = process.hrtime.bigint();
    const cpuStart = process.cpuUsage();
    workers.control.processJobs();
    await workers.whenIdle();
    const cpuUsed = process.cpuUsage(cpuStart);
    const elapsed = Number(process.hrtime.bigint() - start) / 1e3;
    const done = Number((await table.db.query<{ n: string }>(`SELECT count(*) AS n FROM sync_table WHERE job_state = 'done'`)).rows[0].n);
    await workers.stop();
    unsubscribe?.();
    if (done !== jobs) throw new Error(`inspection ${mode}: expected ${jobs} done jobs, found ${done}`);
    wall[mode].push(elapsed / jobs);
    cpu[mode].push((cpuUsed.user + cpuUsed.system) / jobs);
  }

  try {
    // one warm-up round of each, not counted: JIT and the table's first pages
    for (const mode of only) await round(mode);
    for (const mode of modes) {
      wall[mode] = [];
      cpu[mode] = [];
    }
    watchedMessages = 0;
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < only.length; i++) await round(only[(r + i) % only.length]);
    }
  } finally {
    await drop();
  }
  const medians = (s: Record<Mode, number[]>) => ({ off: median(s.off), unwatched: median(s.unwatched), watched: median(s.watched) });
  return { kind, jobs, rounds, wallUs: medians(wall), cpuUs: medians(cpu), watchedMessages };
}

export function formatInspectionCost(c: InspectionCost): string {
  // a mode left out (BENCH_MODES) has no median and is left out here too
  const ran = (figure: number, text: string) => (Number.isNaN(figure) ? [] : [text]);
  const line = (what: string, t: Record<Mode, number>) => `  inspection ${what}  ` + [
    ...ran(t.off, `off ${t.off.toFixed(0)} µs/job`),
    ...ran(t.unwatched, `on unwatched ${t.unwatched.toFixed(0)} µs/job ratio ${(t.unwatched / t.off).toFixed(3)} (target ≤ 1.05)`),
    ...ran(t.watched, `on with a viewer ${t.watched.toFixed(0)} µs/job ratio ${(t.watched / t.off).toFixed(2)}`),
  ].join(', ');
  return [
    line('wall', c.wallUs),
    line('CPU ', c.cpuUs),
    `  inspection      median of ${c.rounds} alternating rounds × ${c.jobs} jobs; the viewer received ${c.watchedMessages} messages`,
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const kind = (process.env.BENCH_STORE ?? 'pglite') as StoreKind;
  const only = process.env.BENCH_MODES ? (process.env.BENCH_MODES.split(',') as Mode[]) : modes;
  const cost = await measureInspectionCost(kind, Number(process.env.BENCH_JOBS ?? 200), Number(process.env.BENCH_ROUNDS ?? 7), only);
  console.log(`[${kind}]`);
  console.log(formatInspectionCost(cost));
}
