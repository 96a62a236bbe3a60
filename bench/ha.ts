/**
 * `npm run ha`: the high-availability harness (bench/haHarness.ts) with the figures of issue 15 —
 * 3 sosync processes on one PostgreSQL sync table, 500 jobs, 50 SIGKILLs of the active process.
 * HA_PROCESSES, HA_JOBS and HA_KILLS change them. Exits 1 when a check fails.
 */
import os from 'node:os';
import { runHaHarness } from './haHarness.ts';
import { median } from './stats.ts';

const processes = Number(process.env.HA_PROCESSES ?? 3);
const jobs = Number(process.env.HA_JOBS ?? 500);
const kills = Number(process.env.HA_KILLS ?? 50);

const result = await runHaHarness({ processes, jobs, kills, say: (line) => console.log(line) });
const t = result.takeoverMs;
console.log(JSON.stringify({ ...result, takeoverMs: undefined, lockTakeoverMs: undefined }, null, 1));
console.log(`HA harness: ${processes} processes, ${jobs} jobs, ${result.kills} SIGKILLs of the active process in ${result.seconds.toFixed(0)} s`);
console.log(`  job states: ${JSON.stringify(result.jobStates)}; unfinished ${result.unfinished}`);
console.log(`  jobs run in two processes at once: ${result.overlaps.length}`);
console.log(`  duplicate targets: FSO partners ${result.duplicateFsoPartners}, FS persons ${result.duplicateFsPersons}`);
const l = result.lockTakeoverMs;
console.log(`  takeover, kill → a standby holds the worker lock (its log): median ${median(l).toFixed(0)} ms, max ${Math.max(...l).toFixed(0)} ms`);
console.log(`  takeover, kill → a standby answers /service/status as active: median ${median(t).toFixed(0)} ms, max ${Math.max(...t).toFixed(0)} ms`);
console.log(`  load average at the end: ${os.loadavg().map((v) => v.toFixed(1)).join(' ')} on ${os.cpus().length} CPUs`);
const failed = result.unfinished > 0 || result.overlaps.length > 0 || result.duplicateFsoPartners > 0 || result.duplicateFsPersons > 0
  || (result.jobStates.done ?? 0) !== jobs;
process.exit(failed ? 1 : 0);
