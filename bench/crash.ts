/**
 * `npm run crash`: the crash harness (bench/crashHarness.ts) with the figures of issue 12 — one
 * sosync process, 1,000 announced jobs of a mix in both directions, 200 SIGKILLs at random moments.
 * Flags (or env): --store postgres|pglite (CRASH_STORE), --jobs N (CRASH_JOBS), --kills N
 * (CRASH_KILLS), --seed N (CRASH_SEED). Prints the figures; exits 1 when a check fails.
 */
import { parseArgs } from 'node:util';
import { runCrashHarness, type CrashStore } from './crashHarness.ts';

const { values } = parseArgs({
  options: {
    store: { type: 'string', default: process.env.CRASH_STORE ?? 'postgres' },
    jobs: { type: 'string', default: process.env.CRASH_JOBS ?? '1000' },
    kills: { type: 'string', default: process.env.CRASH_KILLS ?? '200' },
    seed: { type: 'string', default: process.env.CRASH_SEED ?? '12' },
  },
});
const store = values.store as CrashStore;
if (store !== 'postgres' && store !== 'pglite') {
  console.error(`crash: --store must be postgres or pglite, not "${store}"`);
  process.exit(2);
}
const [jobs, kills, seed] = [values.jobs, values.kills, values.seed].map(Number);
if (![jobs, kills, seed].every((n) => Number.isInteger(n) && n >= 0) || jobs < 1) {
  console.error('crash: --jobs, --kills and --seed must be whole numbers (jobs at least 1)');
  process.exit(2);
}

// Ctrl-C or SIGTERM: exit through 'exit', where the harness stops sosync and the stand-ins
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

const result = await runCrashHarness({ store, jobs, kills, seed, say: (line) => console.log(line) });
const show = (title: string, lines: string[]) => {
  if (lines.length === 0) return;
  console.log(`${title} (${lines.length}):`);
  for (const l of lines.slice(0, 40)) console.log(`  ${l}`);
  if (lines.length > 40) console.log(`  … ${lines.length - 40} more`);
};
show('lost jobs', result.lost);
show('records written without their link', result.orphans);
show('disagreements', result.disagreements);
console.log(`crash harness: sync table on ${store}, ${result.kills} SIGKILLs (${result.starts} starts), ${result.jobsAnnounced} jobs announced, ${result.seconds.toFixed(0)} s`);
console.log(`  changes: ${JSON.stringify(result.ops)}`);
console.log(`  sync table: ${result.rootJobs} root jobs ${JSON.stringify(result.jobStates)}, ${result.childJobs} child jobs`);
for (const [text, n] of Object.entries(result.errors)) console.log(`    error ×${n}: ${text}`);
console.log(`  lost jobs: ${result.lost.length}`);
console.log(`  duplicate targets: ${result.duplicateCount} by foreign id ${JSON.stringify(result.duplicates)}; ${result.orphans.length} written without their link`);
console.log(`  linked records compared: ${result.compared}; disagreements: ${result.disagreements.length}`);
const failed = result.lost.length > 0 || result.duplicateCount > 0 || result.orphans.length > 0 || result.disagreements.length > 0 || result.kills < kills || result.jobsAnnounced < jobs;
process.exit(failed ? 1 : 0);
