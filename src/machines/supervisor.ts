/**
 * The supervisor owns the one job-worker slot (SPEC §4.1, §4.4–§4.7). A pass picks the next open
 * root job, passes the drift gate, runs one job actor to its end, throttles, and picks again until
 * no open root job is left. Only this actor ever runs a job, and it runs one at a time: the slot is
 * a state, not a lock.
 *
 *   idle ──START──▶ pass: picking → gate → running → throttling → picking … → passEnd
 *                          │                                                   │
 *                          └─(drift too large / no NTP)─▶ locked ─(expiry or FORCE_DRIFT_CHECK)─▶ pass
 *   START during a pass → restart requested (another pass follows at once)
 *   STOP → stopped after the current job reaches its end
 */
import { assign, fromPromise, setup, type AnyActorLogic } from 'xstate';
import type { JobRow } from '../adapters/syncTable/index.ts';
import type { JobInput, JobOutcome } from './job.ts';

/** SPEC §4.4: a failed drift check locks synchronisation this long. */
export const DRIFT_LOCK_MS = 30 * 60_000 + 5_000;
/** SPEC §4.4: a drift check older than this is repeated before the next job. */
export const DRIFT_CHECK_INTERVAL_MS = 30 * 60_000;
/** After an infrastructure failure (sync table unreachable) the worker tries again this much later. */
export const FAULT_RETRY_MS = 10_000;

export type GateResult =
  | { checked: false }
  | { checked: true; ok: true; at: Date; summary: string }
  | { checked: true; ok: false; at: Date; reason: string };

export interface SupervisorInput {
  throttleMs: number;
  driftLockMs?: number;
  faultRetryMs?: number;
}

export interface SupervisorContext {
  throttleMs: number;
  driftLockMs: number;
  faultRetryMs: number;
  restartRequested: boolean;
  stopRequested: boolean;
  forceDriftCheck: boolean;
  lastDriftCheckAt: Date | null;
  driftLock: { since: Date; until: Date; reason: string } | null;
  currentJob: JobRow | null;
  pickedAt: Date | null;
  lastOutcome: JobOutcome | null;
  lastError: string | null;
  passes: number;
  jobsRun: number;
}

export type SupervisorEvent =
  | { type: 'START' }
  | { type: 'STOP' }
  | { type: 'FORCE_DRIFT_CHECK' };

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export const supervisorMachine = setup({
  types: {
    context: {} as SupervisorContext,
    events: {} as SupervisorEvent,
    input: {} as SupervisorInput,
  },
  actors: {
    pickNextJob: fromPromise<{ job: JobRow | null; at: Date }>(async () => {
      throw new Error('pickNextJob not provided');
    }),
    checkDrift: fromPromise<GateResult, { lastCheckAt: Date | null; force: boolean }>(async () => {
      throw new Error('checkDrift not provided');
    }),
    /** the job machine (jobActors.ts) */
    job: fromPromise<JobOutcome, JobInput>(async () => {
      throw new Error('job not provided');
    }),
    throttle: fromPromise<void, { pickedAt: Date; throttleMs: number }>(async () => {
      throw new Error('throttle not provided');
    }),
  },
  actions: {
    // side effects for operators; supervisorActors.ts provides them with the logger
    reportOutcome: (_, _params: { outcome: JobOutcome }) => {},
    reportDriftLock: (_, _params: { reason: string; until: Date }) => {},
    reportFault: (_, _params: { error: string }) => {},
    reportPass: (_, _params: { passes: number; jobsRun: number }) => {},
  },
  guards: {
    foundJob: (_, params: { job: JobRow | null }) => params.job !== null,
    restartRequested: ({ context }) => context.restartRequested,
    stopRequested: ({ context }) => context.stopRequested,
  },
  delays: {
    driftLock: ({ context }) => context.driftLockMs,
    faultRetry: ({ context }) => context.faultRetryMs,
  },
}).createMachine({
  id: 'supervisor',
  context: ({ input }) => ({
    throttleMs: input.throttleMs,
    driftLockMs: input.driftLockMs ?? DRIFT_LOCK_MS,
    faultRetryMs: input.faultRetryMs ?? FAULT_RETRY_MS,
    restartRequested: false,
    stopRequested: false,
    forceDriftCheck: false,
    lastDriftCheckAt: null,
    driftLock: null,
    currentJob: null,
    pickedAt: null,
    lastOutcome: null,
    lastError: null,
    passes: 0,
    jobsRun: 0,
  }),
  initial: 'idle',
  on: {
    STOP: { target: '.stopped' },
    FORCE_DRIFT_CHECK: { actions: assign({ lastDriftCheckAt: null, forceDriftCheck: true }) },
  },
  states: {
    idle: {
      on: { START: { target: 'pass' } },
    },
    pass: {
      entry: assign({ restartRequested: false, passes: ({ context }) => context.passes + 1 }),
      initial: 'picking',
      on: {
        START: { actions: assign({ restartRequested: true }) },
        STOP: { actions: assign({ stopRequested: true }) },
      },
      states: {
        picking: {
          on: { STOP: { target: '#supervisor.stopped' } },
          invoke: {
            src: 'pickNextJob',
            onDone: [
              {
                guard: { type: 'foundJob', params: ({ event }) => ({ job: event.output.job }) },
                target: 'gate',
                actions: assign({ currentJob: ({ event }) => event.output.job, pickedAt: ({ event }) => event.output.at }),
              },
              { target: 'passEnd' },
            ],
            onError: { target: '#supervisor.faulted', actions: assign({ lastError: ({ event }) => `picking the next job failed: ${message(event.error)}` }) },
          },
        },
        /** SPEC §4.4: no job runs on a clock that disagrees with the others */
        gate: {
          on: { STOP: { target: '#supervisor.stopped' } },
          invoke: {
            src: 'checkDrift',
            input: ({ context }) => ({ lastCheckAt: context.lastDriftCheckAt, force: context.forceDriftCheck }),
            onDone: [
              { guard: ({ event }) => !event.output.checked, target: 'running' },
              {
                guard: ({ event }) => event.output.checked && event.output.ok,
                target: 'running',
                actions: assign({
                  lastDriftCheckAt: ({ event }) => (event.output.checked ? event.output.at : null),
                  forceDriftCheck: false,
                  driftLock: null,
                }),
              },
              {
                target: '#supervisor.locked',
                actions: assign(({ event, context }) => {
                  const output = event.output as Extract<GateResult, { ok: false }>;
                  return {
                    lastDriftCheckAt: output.at,
                    forceDriftCheck: false,
                    currentJob: null,
                    driftLock: { since: output.at, until: new Date(output.at.getTime() + context.driftLockMs), reason: output.reason },
                  };
                }),
              },
            ],
            onError: {
              target: '#supervisor.locked',
              actions: assign(({ event, context }) => {
                const at = new Date();
                return { currentJob: null, driftLock: { since: at, until: new Date(at.getTime() + context.driftLockMs), reason: `drift check failed: ${message(event.error)}` } };
              }),
            },
          },
        },
        running: {
          invoke: {
            src: 'job',
            systemId: 'current-job',
            input: ({ context }) => ({ job: context.currentJob!, ancestors: [] }),
            onDone: {
              target: 'throttling',
              actions: [
                assign({ lastOutcome: ({ event }) => event.output, jobsRun: ({ context }) => context.jobsRun + 1 }),
                { type: 'reportOutcome', params: ({ event }) => ({ outcome: event.output }) },
              ],
            },
            onError: {
              target: '#supervisor.faulted',
              actions: assign({ lastError: ({ event, context }) => `job ${context.currentJob?.job_id} failed unexpectedly: ${message(event.error)}` }),
            },
          },
        },
        /** SPEC §4.6 */
        throttling: {
          always: [{ guard: 'stopRequested', target: '#supervisor.stopped' }],
          on: { STOP: { target: '#supervisor.stopped' } },
          invoke: {
            src: 'throttle',
            input: ({ context }) => ({ pickedAt: context.pickedAt!, throttleMs: context.throttleMs }),
            onDone: [
              // a job whose row could not be written points at a broken sync table
              {
                guard: ({ context }) => context.lastOutcome?.outcome === 'aborted',
                target: '#supervisor.faulted',
                actions: assign({ lastError: ({ context }) => `job ${context.lastOutcome?.jobId} could not be recorded: ${context.lastOutcome?.message ?? ''}` }),
              },
              { target: 'picking', actions: assign({ currentJob: null }) },
            ],
            onError: { target: 'picking', actions: assign({ currentJob: null }) },
          },
        },
        passEnd: {
          entry: { type: 'reportPass', params: ({ context }) => ({ passes: context.passes, jobsRun: context.jobsRun }) },
          always: [
            { guard: 'stopRequested', target: '#supervisor.stopped' },
            { guard: 'restartRequested', target: '#supervisor.pass', reenter: true },
            { target: '#supervisor.idle' },
          ],
        },
      },
    },
    /** SPEC §4.4: drift too large or no NTP answer; jobs stay open */
    locked: {
      entry: { type: 'reportDriftLock', params: ({ context }) => ({ reason: context.driftLock!.reason, until: context.driftLock!.until }) },
      after: { driftLock: { target: 'pass', actions: assign({ driftLock: null }) } },
      on: {
        FORCE_DRIFT_CHECK: { target: 'pass', actions: assign({ driftLock: null, lastDriftCheckAt: null, forceDriftCheck: true }) },
        START: { actions: assign({ restartRequested: true }) },
      },
    },
    /** the sync table (or the worker itself) failed; try again shortly */
    faulted: {
      entry: { type: 'reportFault', params: ({ context }) => ({ error: context.lastError ?? 'unknown failure' }) },
      after: { faultRetry: { target: 'pass' } },
      on: { START: { target: 'pass' } },
    },
    stopped: { type: 'final', entry: assign({ currentJob: null }) },
  },
});

export type SupervisorLogic = typeof supervisorMachine;

/** Wires the job logic (child actor) into the supervisor. */
export function withJobLogic<T extends SupervisorLogic>(logic: T, jobLogic: AnyActorLogic): T {
  const provided = logic.provide({}) as T;
  (provided.implementations.actors as Record<string, AnyActorLogic>).job = jobLogic;
  return provided;
}
