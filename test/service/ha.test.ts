/**
 * The high-availability harness, short: two built sosync processes on one PostgreSQL sync table,
 * the stand-ins in their own process, the active process SIGKILLed three times while jobs run.
 * Every job finishes, no two processes run jobs at the same time, no target exists twice.
 * (`npm run ha` is the long run: 3 processes, 500 jobs, 50 kills.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runHaHarness } from '../../bench/haHarness.ts';

test('SIGKILL of the active process: a standby takes over, nothing runs twice, nothing is created twice', async () => {
  const jobs = 24;
  const result = await runHaHarness({ processes: 2, jobs, kills: 3 });
  assert.deepEqual(result.overlaps, [], 'jobs ran in two processes at once');
  assert.equal(result.duplicateFsoPartners, 0, 'FSO partners with the same sosync_fs_id');
  assert.equal(result.duplicateFsPersons, 0, 'FS persons with the same sosync_fso_id');
  assert.equal(result.unfinished, 0);
  assert.deepEqual(result.jobStates, { done: jobs });
  assert.equal(result.takeoverMs.length, 3, 'three takeovers');
  assert.ok(result.lockTakeoverMs.every((ms) => Number.isFinite(ms)), 'each takeover is in a log');
});
