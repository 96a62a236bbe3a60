/**
 * Engine overhead (issue 14 point 4): per-job time of up-to-date and update jobs of each flow, run
 * through the job machine with the real flows against the FS and FSO stand-ins, against the bare
 * client round trips such a job cannot avoid (bench/overheadScenarios.ts) — same clients, same
 * stand-ins, same run, PostgreSQL sync table. Round trips are counted where they arrive (TDS
 * requests at the FS stand-in, XML-RPC calls at the FSO stand-in), sync-table writes at the store.
 * Engine and bare take turns, one job each, so both see the same machine.
 */
import { Session } from 'node:inspector/promises';
import { median } from './stats.ts';
import { monotonicUs, selfTimeOf, type Profile, type SelfTime, type Window } from './cpuProfile.ts';
import { countsBetween, startOverheadSystem, type Counts } from './overheadHarness.ts';
import { overheadScenarios, type FlowName, type ScenarioKind } from './overheadScenarios.ts';
import type { Results } from './results.ts';

const ROUNDS = Number(process.env.BENCH_OVERHEAD_N ?? 40);
/**
 * `BENCH_OVERHEAD_PROFILE=1`: the run is CPU-profiled (node:inspector) and the section gets the
 * self time, per job, of the engine's turns against the bare turns (round trips and the job's
 * sync-table statements), by where the code lives: what the engine spends beyond what the job
 * cannot avoid. Everything runs in this process, the stand-ins' answers included, in both turns
 * alike. The profiler slows every turn: the figures of such a run are not the target's.
 */
const PROFILE = process.env.BENCH_OVERHEAD_PROFILE === '1';
const WARM_UP = 3;
export const OVERHEAD_TARGET = 1.3;

export interface OverheadRow {
  flow: FlowName;
  kind: ScenarioKind;
  engineMs: number;
  bareMs: number;
  /** the sync-table statements such a job cannot avoid (start and end of its row and its children's), alone, straight on the store */
  writesMs: number;
  engine: Counts;
  bare: Counts;
}

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

export async function measureOverhead(results: Results): Promise<OverheadRow[]> {
  const system = await startOverheadSystem({ persons: 5 });
  const rows: OverheadRow[] = [];
  const windows = { engine: [] as Window[], bare: [] as Window[] };
  const profiler = PROFILE ? new Session() : null;
  if (profiler) {
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.start');
  }
  try {
    for (const scenario of await overheadScenarios(system)) {
      const engineTimes: number[] = [];
      const bareTimes: number[] = [];
      const writeTimes: number[] = [];
      let engine: Counts | null = null;
      let bare: Counts | null = null;
      for (let i = 0; i < WARM_UP + ROUNDS; i++) {
        const job = await scenario.prepare(i);
        const engineFrom = monotonicUs();
        const run = await system.runJob(job.system, job.model, job.id);
        const engineWindow = { from: engineFrom, to: monotonicUs() };
        const engineMs = run.ms;
        if (run.outcome.outcome !== 'done') throw new Error(`${scenario.flow}, ${scenario.kind}: the job ended ${run.outcome.outcome}: ${run.outcome.message}`);
        const before = system.counts();
        const b0 = process.hrtime.bigint();
        await scenario.bare();
        const bareMs = ms(b0);
        const writesMs = await system.bareSyncTableWrites(job.model, job.id, scenario.children);
        const bareWindow = { from: engineWindow.to + 1, to: monotonicUs() };
        if (i < WARM_UP) continue;
        windows.engine.push(engineWindow);
        windows.bare.push(bareWindow);
        writeTimes.push(writesMs);
        engineTimes.push(engineMs);
        bareTimes.push(bareMs);
        engine = run.counts;
        bare = countsBetween(before, system.counts());
      }
      const row: OverheadRow = {
        flow: scenario.flow, kind: scenario.kind, engineMs: median(engineTimes), bareMs: median(bareTimes), writesMs: median(writeTimes), engine: engine!, bare: bare!,
      };
      rows.push(row);
      const ratio = row.engineMs / row.bareMs;
      results.add({
        store: 'postgres',
        benchmark: `engine overhead, ${row.flow}, ${row.kind} (median of ${ROUNDS} jobs)`,
        value: `${row.engineMs.toFixed(2)} ms/job (FS ${row.engine.fs} + FSO ${row.engine.fso} round trips, ${row.engine.syncTableWrites} sync-table writes)`,
        baseline: `bare round trips ${row.bareMs.toFixed(2)} ms (FS ${row.bare.fs} + FSO ${row.bare.fso})`,
        ratio, target: `≤ ${OVERHEAD_TARGET}`, met: ratio <= OVERHEAD_TARGET,
      });
    }
  } finally {
    await system.close();
  }
  if (profiler) {
    const { profile } = await profiler.post('Profiler.stop') as { profile: Profile };
    profiler.disconnect();
    results.section('Engine overhead: where the engine\'s time goes (BENCH_OVERHEAD_PROFILE=1)', profileComparison(
      selfTimeOf(profile, windows.engine), selfTimeOf(profile, windows.bare), windows.engine.length));
  }
  for (const flow of [...new Set(rows.map((r) => r.flow))]) {
    const of = rows.filter((r) => r.flow === flow);
    const engineMs = of.reduce((a, r) => a + r.engineMs, 0);
    const bareMs = of.reduce((a, r) => a + r.bareMs, 0);
    results.add({
      store: 'postgres', benchmark: `engine overhead, ${flow}, its ${of.length} jobs together`,
      value: `${engineMs.toFixed(2)} ms`, baseline: `bare ${bareMs.toFixed(2)} ms`,
      ratio: engineMs / bareMs, target: `≤ ${OVERHEAD_TARGET}`, met: engineMs / bareMs <= OVERHEAD_TARGET,
    });
  }
  results.section('Engine overhead per flow (round trips and sync-table writes per job)', overheadTable(rows));
  return rows;
}

/** Busy time per job of the engine's turns and the bare turns, by area, the largest differences first. */
function profileComparison(engine: SelfTime, bare: SelfTime, jobs: number): string {
  const perJob = (t: SelfTime) => new Map(t.areas.map((a) => [a.name, a.ms / jobs]));
  const [e, b] = [perJob(engine), perJob(bare)];
  const areas = [...new Set([...e.keys(), ...b.keys()])]
    .map((name) => ({ name, engine: e.get(name) ?? 0, bare: b.get(name) ?? 0 }))
    .sort((x, y) => (y.engine - y.bare) - (x.engine - x.bare));
  const busy = (t: SelfTime) => (t.totalMs - t.idleMs) / jobs;
  return [
    `${jobs} timed jobs (every scenario's), profiled in this process, the stand-ins' answers included. Busy CPU per job, on average over them: engine turns ${busy(engine).toFixed(2)} ms, `
      + `bare turns (round trips and the job's sync-table statements) ${busy(bare).toFixed(2)} ms; idle (waiting for an answer) ${(engine.idleMs / jobs).toFixed(2)} vs ${(bare.idleMs / jobs).toFixed(2)} ms.`,
    '',
    '| where the code lives | engine turn, ms/job | bare turn, ms/job | difference |',
    '|---|---|---|---|',
    ...areas.slice(0, 15).map((a) => `| \`${a.name}\` | ${a.engine.toFixed(3)} | ${a.bare.toFixed(3)} | ${(a.engine - a.bare).toFixed(3)} |`),
  ].join('\n');
}

export function overheadTable(rows: OverheadRow[]): string {
  const lines = [
    '| flow | job | engine ms/job | bare ms | ratio | its sync-table statements alone, ms | ratio with those in the baseline | engine − bare − statements, ms | FS round trips (bare) | FSO round trips (bare) | sync-table writes |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.flow} | ${r.kind} | ${r.engineMs.toFixed(2)} | ${r.bareMs.toFixed(2)} | ${(r.engineMs / r.bareMs).toFixed(2)} | `
      + `${r.writesMs.toFixed(2)} | ${(r.engineMs / (r.bareMs + r.writesMs)).toFixed(2)} | ${(r.engineMs - r.bareMs - r.writesMs).toFixed(2)} | `
      + `${r.engine.fs} (${r.bare.fs}) | ${r.engine.fso} (${r.bare.fso}) | ${r.engine.syncTableWrites} |`),
    '',
    'The target is judged on "ratio": the job against its bare FS and FSO round trips. The sync-table statements column times, straight on the store, the statements SPEC §4.2 asks of every such job (its row started and ended, and each child row found or created, started and ended); "ratio with those in the baseline" shows how much of the gap they are.',
  ];
  return lines.join('\n');
}
