/**
 * Parallel job workers (`job_workers` = N > 1): N worker slots, each a supervisor of its own
 * (supervisor.ts) with the whole pass — picking, the drift gate, one job, the throttle — and the
 * circuit breaker. What keeps them apart is in the database, not here: each slot claims its job
 * `FOR UPDATE SKIP LOCKED` and holds the job's records with advisory locks (claims.ts), so no job
 * and no record is ever in two slots.
 *
 *   workers (parallel) ─┬─ slot-1: working ─(its supervisor stopped)─▶ stopped
 *                       ├─ slot-2: working ─▶ stopped
 *                       └─ …                                   all stopped ─▶ done
 *
 * START, STOP and FORCE_DRIFT_CHECK go to every slot. RECORDS_FREED (a slot let an ended job's
 * records go) goes, as START, only to the slots that may be waiting for work: a slot busy with a job
 * (at its drift gate, running it, or throttling after it) claims again once its job is over and
 * sees the records free then, so waking it would only cost it one more claim at the end of its pass.
 */
import { enqueueActions, setup, type ActorRefFrom } from 'xstate';
import type { SupervisorEvent, SupervisorInput, SupervisorLogic } from './supervisor.ts';

export const slotId = (index: number) => `slot-${index + 1}`;

export type SlotActor = ActorRefFrom<SupervisorLogic>;

export type PoolEvent = SupervisorEvent | { type: 'RECORDS_FREED' };

/** a slot between picking its job and claiming the next: it looks at the queue again by itself */
const busyWithJob = (slot: SlotActor) => {
  const s = slot.getSnapshot();
  return s.matches({ pass: 'gate' }) || s.matches({ pass: 'running' }) || s.matches({ pass: 'throttling' });
};

/** The pool of `slots.length` slots; each slot's supervisor comes with its own claims provided. */
export function createPoolMachine(slots: SupervisorLogic[], input: SupervisorInput) {
  const actors = Object.fromEntries(slots.map((logic, i) => [slotId(i), logic]));
  const regions = Object.fromEntries(slots.map((_, i) => [slotId(i), {
    initial: 'working',
    states: {
      working: { invoke: { id: slotId(i), src: slotId(i), input, onDone: 'stopped' } },
      stopped: { type: 'final' as const },
    },
  }]));
  return setup({
    types: { events: {} as PoolEvent },
    actors,
    actions: {
      /** an event for the job worker goes to every slot still working */
      forwardToSlots: enqueueActions(({ enqueue, event, self }) => {
        for (const child of Object.values(self.getSnapshot().children)) if (child) enqueue.sendTo(child, event);
      }),
      /** records were let go: START for the slots that may be waiting for them */
      wakeWaitingSlots: enqueueActions(({ enqueue, self }) => {
        for (const child of Object.values(self.getSnapshot().children)) {
          if (child && !busyWithJob(child as SlotActor)) enqueue.sendTo(child, { type: 'START' });
        }
      }),
    },
  }).createMachine({
    id: 'workers',
    type: 'parallel',
    on: {
      START: { actions: 'forwardToSlots' },
      STOP: { actions: 'forwardToSlots' },
      FORCE_DRIFT_CHECK: { actions: 'forwardToSlots' },
      RECORDS_FREED: { actions: 'wakeWaitingSlots' },
    },
    states: regions,
  });
}
