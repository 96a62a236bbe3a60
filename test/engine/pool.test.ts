/**
 * The pool of worker slots (pool.ts) as pure logic: slots whose picks and jobs are plain promises.
 * START goes to every slot; RECORDS_FREED (a slot let an ended job's records go) wakes only the
 * slots that may be waiting for work, never one busy with a job.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createActor, fromPromise } from 'xstate';
import type { JobRow } from '../../src/adapters/syncTable/index.ts';
import { createPoolMachine, slotId } from '../../src/machines/pool.ts';
import { supervisorMachine, type GateResult, type PickResult } from '../../src/machines/supervisor.ts';
import type { JobOutcome } from '../../src/machines/job.ts';

const job = (id: number) => ({ job_id: id, job_source_system: 'fs', job_source_model: 'dbo.Person', job_source_record_id: id }) as JobRow;

/** a slot that takes `picks` one after the other (then finds nothing) and whose jobs never end */
function slot(picks: Array<JobRow | null>, counter: { picks: number }) {
  return supervisorMachine.provide({
    actors: {
      pickNextJob: fromPromise(async (): Promise<PickResult> => ({ job: picks[counter.picks++] ?? null, at: new Date(), nextRetryAt: null })),
      checkDrift: fromPromise(async (): Promise<GateResult> => ({ checked: false })),
      job: fromPromise(() => new Promise<JobOutcome>(() => {})) as never,
      throttle: fromPromise(async () => {}),
    },
  });
}

const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 20));

describe('the pool of worker slots', () => {
  it('RECORDS_FREED wakes the idle slot and leaves the slots running a job alone; START reaches them all', async () => {
    const counters = [{ picks: 0 }, { picks: 0 }, { picks: 0 }];
    const pool = createActor(createPoolMachine([slot([job(1)], counters[0]), slot([job(2)], counters[1]), slot([], counters[2])], { throttleMs: 0 })).start();
    const slotSnapshot = (i: number) => (pool.getSnapshot().children[slotId(i)] as { getSnapshot(): ReturnType<typeof supervisorMachine['getInitialSnapshot']> }).getSnapshot();
    try {
      pool.send({ type: 'START' });
      await settle();
      assert.ok(slotSnapshot(0).matches({ pass: 'running' }) && slotSnapshot(1).matches({ pass: 'running' }), 'two slots run a job');
      assert.ok(slotSnapshot(2).matches('idle'), 'the third found nothing');
      assert.deepEqual(counters.map((c) => c.picks), [1, 1, 1]);

      pool.send({ type: 'RECORDS_FREED' });
      await settle();
      assert.equal(counters[2].picks, 2, 'the idle slot looked again');
      assert.ok(slotSnapshot(2).matches('idle'));
      assert.deepEqual([slotSnapshot(0).context.restartRequested, slotSnapshot(1).context.restartRequested], [false, false],
        'the running slots were not asked for another pass');

      pool.send({ type: 'START' });
      await settle();
      assert.equal(counters[2].picks, 3);
      assert.deepEqual([slotSnapshot(0).context.restartRequested, slotSnapshot(1).context.restartRequested], [true, true],
        'an operator\'s START reaches every slot, as with one worker (RunningRestartRequested)');
    } finally {
      pool.stop();
    }
  });
});
