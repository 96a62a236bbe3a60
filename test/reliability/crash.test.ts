/**
 * The crash harness, short: one built sosync process on a PostgreSQL sync table, the stand-ins in
 * their own process, a mix of about 100 changes in both systems (all flows, bPK child jobs,
 * deletes) while sosync is SIGKILLed 10 times at random moments and restarted. Nothing is lost,
 * nothing is created twice, and both systems agree on every linked record afterwards.
 * (`npm run crash` is the long run: 1,000 jobs, 200 kills.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCrashHarness } from '../../bench/crashHarness.ts';

test('SIGKILL of sosync at random moments: no job lost, no duplicate target, both systems agree', { timeout: 240_000 }, async () => {
  const jobs = 100;
  const kills = 10;
  const result = await runCrashHarness({ store: 'postgres', jobs, kills, seed: 7, drainMs: 60_000, quietMs: 2000, maxKillDelayMs: 700 });
  assert.equal(result.kills, kills);
  assert.equal(result.jobsAnnounced, jobs);
  assert.deepEqual(result.lost, [], 'jobs lost');
  assert.equal(result.duplicateCount, 0, `duplicate targets: ${JSON.stringify(result.duplicates)}`);
  assert.deepEqual(result.orphans, [], 'records written without their link');
  assert.deepEqual(result.disagreements, [], 'records the systems disagree on');
  assert.ok(result.compared > 0, 'linked records were compared');
  assert.ok((result.jobStates.done ?? 0) > 0, JSON.stringify(result.jobStates));
});
