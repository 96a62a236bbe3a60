/**
 * The supervisor owns a job-worker slot (SPEC §4.1, §4.4–§4.7). A pass picks the next open root
 * job, passes the drift gate, runs one job actor to its end, throttles, and picks again until no
 * open root job is left. It runs one job at a time: the slot is a state, not a lock. By default it
 * is the only one (the original's single worker); with `job_workers` > 1 the pool (pool.ts) runs
 * several, each picking through a claim that locks the job's records (claims.ts).
 *
 *   idle ──START──▶ pass: picking → gate → running → throttling → picking … → passEnd
 *                          │                   │                                 │
 *                          │                   ├─(job could not be recorded)─▶ faulted ─(retry)─▶ pass
 *                          │                   └─(job found FS or FSO down)─▶ outage: waiting ⇄ probing ─(probe ok)─▶ pass
 *                          └─(drift too large / no NTP)─▶ locked ─(expiry or FORCE_DRIFT_CHECK)─▶ pass
 *   passEnd with jobs waiting in error_retry ─▶ waitingForRetry ─(first one due)─▶ pass
 *   START during a pass → restart requested (another pass follows at once)
 *   STOP → stopped after the current job reaches its end
 *
 * The outage state is the circuit breaker: a job that failed because FS or FSO is not there opens
 * it for that system; instead of failing the queue job by job the worker waits and probes the
 * system with one call per interval, and closes the breaker (back to a pass) when the probe passes.
 * Every job needs both systems, so one open breaker pauses all work.
 *
 * Like the job machine it does no I/O: picking, the drift measurement, the probe, the throttle's
 * sleep and the clock are actors supplied through `provide()` (system.ts).
 */
import { assign, fromPromise, setup } from 'xstate';
import type { JobRow, SystemName } from '../adapters/syncTable/index.ts';
import { jobMachine, type JobOutcome } from './job.ts';

/** SPEC §4.4: a failed drift check locks synchronisation this long. */
export const DRIFT_LOCK_MS = 30 * 60_000 + 5_000;
/** SPEC §4.4: a drift check older than this is repeated before the next job. */
export const DRIFT_CHECK_INTERVAL_MS = 30 * 60_000;
/** After an infrastructure failure (sync table unreachable) the worker tries again this much later. */
export const FAULT_RETRY_MS = 10_000;
/** While a system is down it is probed this often. */
export const PROBE_INTERVAL_MS = 30_000;

/** An open circuit breaker: the system a job found down, since when, and when it is probed next. */
export interface SystemOutage {
  system: SystemName;
  since: Date;
  reason: string;
  nextProbeAt: Date;
  probes: number;
}

/** One probe call's result; a probe that cannot reach the system is `up: false`, not an error. */
export interface ProbeResult {
  up: boolean;
  at: Date;
  reason?: string;
}

/** What picking found: a job to run, or (with none) when the first job in error_retry is due. */
export interface PickResult {
  job: JobRow | null;
  at: Date;
  nextRetryAt: Date | null;
}

/** What the drift gate found; a measurement that could not be made is `ok: false` with the reason. */
export type GateResult =
  | { checked: false }
  | { checked: true; ok: true; at: Date; summary: string }
  | { checked: true; ok: false; at: Date; reason: string };

export interface SupervisorInput {
  throttleMs: number;
  driftLockMs?: number;
  faultRetryMs?: number;
  probeIntervalMs?: number;
}

export interface SupervisorContext {
  throttleMs: number;
  driftLockMs: number;
  faultRetryMs: number;
  probeIntervalMs: number;
  outage: SystemOutage | null;
  /** after a pass: the first job in error_retry is due this long after the last pick */
  retryWaitMs: number | null;
  nextRetryAt: Date | null;
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
    /** the gate's last check goes along: a single worker whose gate is sure to pass starts the job as it picks it */
    pickNextJob: fromPromise<PickResult, { lastDriftCheckAt: Date | null; forceDriftCheck: boolean }>(async () => {
      throw new Error('pickNextJob not provided');
    }),
    checkDrift: fromPromise<GateResult, { lastCheckAt: Date | null; force: boolean }>(async () => {
      throw new Error('checkDrift not provided');
    }),
    /** the job machine, provided with its outside world by jobActors.ts */
    job: jobMachine,
    throttle: fromPromise<void, { pickedAt: Date; throttleMs: number }>(async () => {
      throw new Error('throttle not provided');
    }),
    /** one cheap call to a system that was found down */
    probeSystem: fromPromise<ProbeResult, { system: SystemName }>(async () => {
      throw new Error('probeSystem not provided');
    }),
  },
  actions: {
    // side effects for operators; supervisorActors.ts provides them with the logger
    reportOutcome: (_, _params: { outcome: JobOutcome }) => {},
    reportDriftLock: (_, _params: { reason: string; until: Date }) => {},
    reportFault: (_, _params: { error: string }) => {},
    reportPass: (_, _params: { passes: number; jobsRun: number }) => {},
    reportSystemDown: (_, _params: { outage: SystemOutage }) => {},
    reportSystemUp: (_, _params: { outage: SystemOutage; at: Date }) => {},
    releaseRecords: () => {},
  },
  guards: {
    foundJob: (_, params: { job: JobRow | null }) => params.job !== null,
    driftCheckNotDue: (_, params: { gate: GateResult }) => !params.gate.checked,
    driftWithinTolerance: (_, params: { gate: GateResult }) => params.gate.checked && params.gate.ok,
    jobNotRecorded: (_, params: { outcome: JobOutcome }) => params.outcome.outcome === 'aborted',
    systemWentDown: (_, params: { outcome: JobOutcome }) => params.outcome.downSystem !== undefined,
    probeSucceeded: (_, params: { probe: ProbeResult }) => params.probe.up,
    retryWaiting: ({ context }) => context.retryWaitMs !== null,
    restartRequested: ({ context }) => context.restartRequested,
    stopRequested: ({ context }) => context.stopRequested,
  },
  delays: {
    driftLock: ({ context }) => context.driftLockMs,
    faultRetry: ({ context }) => context.faultRetryMs,
    probeInterval: ({ context }) => context.probeIntervalMs,
    retryDue: ({ context }) => context.retryWaitMs ?? 0,
  },
}).createMachine({
  id: 'supervisor',
  context: ({ input }) => ({
    throttleMs: input.throttleMs,
    driftLockMs: input.driftLockMs ?? DRIFT_LOCK_MS,
    faultRetryMs: input.faultRetryMs ?? FAULT_RETRY_MS,
    probeIntervalMs: input.probeIntervalMs ?? PROBE_INTERVAL_MS,
    outage: null,
    retryWaitMs: null,
    nextRetryAt: null,
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
            input: ({ context }) => ({ lastDriftCheckAt: context.lastDriftCheckAt, forceDriftCheck: context.forceDriftCheck }),
            onDone: [
              {
                guard: { type: 'foundJob', params: ({ event }) => ({ job: event.output.job }) },
                target: 'gate',
                actions: assign({ currentJob: ({ event }) => event.output.job, pickedAt: ({ event }) => event.output.at }),
              },
              {
                target: 'passEnd',
                actions: assign({
                  nextRetryAt: ({ event }) => event.output.nextRetryAt,
                  retryWaitMs: ({ event }) =>
                    event.output.nextRetryAt ? Math.max(0, event.output.nextRetryAt.getTime() - event.output.at.getTime()) : null,
                }),
              },
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
              { guard: { type: 'driftCheckNotDue', params: ({ event }) => ({ gate: event.output }) }, target: 'running' },
              {
                guard: { type: 'driftWithinTolerance', params: ({ event }) => ({ gate: event.output }) },
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
                  const gate = event.output as Extract<GateResult, { ok: false }>;
                  return {
                    lastDriftCheckAt: gate.at,
                    forceDriftCheck: false,
                    currentJob: null,
                    driftLock: { since: gate.at, until: new Date(gate.at.getTime() + context.driftLockMs), reason: gate.reason },
                  };
                }),
              },
            ],
            onError: { target: '#supervisor.faulted', actions: assign({ lastError: ({ event }) => `the drift gate failed: ${message(event.error)}` }) },
          },
        },
        running: {
          // with parallel workers the slot lets the job's records go (claims.ts); one worker holds none
          exit: 'releaseRecords',
          invoke: {
            src: 'job',
            input: ({ context }) => ({ job: context.currentJob!, ancestors: [] }),
            onDone: [
              // STOP came while the job ran: it has reached its end, so the worker ends now (SPEC §4.7),
              // whatever the outcome says about the systems or the sync table
              {
                guard: 'stopRequested',
                target: '#supervisor.stopped',
                actions: [
                  assign({ lastOutcome: ({ event }) => event.output, jobsRun: ({ context }) => context.jobsRun + 1 }),
                  { type: 'reportOutcome', params: ({ event }) => ({ outcome: event.output }) },
                ],
              },
              // a job whose row could not be written points at a broken sync table
              {
                guard: { type: 'jobNotRecorded', params: ({ event }) => ({ outcome: event.output }) },
                target: '#supervisor.faulted',
                actions: [
                  assign({
                    lastOutcome: ({ event }) => event.output,
                    lastError: ({ event }) => `job ${event.output.jobId} could not be recorded: ${event.output.message ?? ''}`,
                  }),
                  { type: 'reportOutcome', params: ({ event }) => ({ outcome: event.output }) },
                ],
              },
              // FS or FSO is not there: pause and probe instead of failing the next jobs too
              {
                guard: { type: 'systemWentDown', params: ({ event }) => ({ outcome: event.output }) },
                target: '#supervisor.outage',
                actions: [
                  assign({
                    lastOutcome: ({ event }) => event.output,
                    jobsRun: ({ context }) => context.jobsRun + 1,
                    currentJob: null,
                    outage: ({ event, context }) => {
                      const since = event.output.endedAt ?? context.pickedAt!;
                      return {
                        system: event.output.downSystem!,
                        since,
                        reason: event.output.message ?? 'unavailable',
                        nextProbeAt: new Date(since.getTime() + context.probeIntervalMs),
                        probes: 0,
                      };
                    },
                  }),
                  { type: 'reportOutcome', params: ({ event }) => ({ outcome: event.output }) },
                ],
              },
              {
                target: 'throttling',
                actions: [
                  assign({ lastOutcome: ({ event }) => event.output, jobsRun: ({ context }) => context.jobsRun + 1 }),
                  { type: 'reportOutcome', params: ({ event }) => ({ outcome: event.output }) },
                ],
              },
            ],
            onError: {
              target: '#supervisor.faulted',
              actions: assign({ lastError: ({ event, context }) => `job ${context.currentJob?.job_id} failed unexpectedly: ${message(event.error)}` }),
            },
          },
        },
        /** SPEC §4.6 */
        throttling: {
          on: { STOP: { target: '#supervisor.stopped' } },
          invoke: {
            src: 'throttle',
            input: ({ context }) => ({ pickedAt: context.pickedAt!, throttleMs: context.throttleMs }),
            onDone: { target: 'picking', actions: assign({ currentJob: null }) },
            onError: { target: 'picking', actions: assign({ currentJob: null }) },
          },
        },
        passEnd: {
          entry: { type: 'reportPass', params: ({ context }) => ({ passes: context.passes, jobsRun: context.jobsRun }) },
          always: [
            { guard: 'stopRequested', target: '#supervisor.stopped' },
            { guard: 'restartRequested', target: '#supervisor.pass', reenter: true },
            { guard: 'retryWaiting', target: '#supervisor.waitingForRetry' },
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
    /** no open job, but jobs in error_retry: idle until the first of them is due */
    waitingForRetry: {
      after: { retryDue: { target: 'pass' } },
      on: { START: { target: 'pass' } },
      exit: assign({ retryWaitMs: null, nextRetryAt: null }),
    },
    /** the circuit breaker is open: a job found FS or FSO down; jobs stay queued */
    outage: {
      entry: { type: 'reportSystemDown', params: ({ context }) => ({ outage: context.outage! }) },
      initial: 'waiting',
      on: { START: { actions: assign({ restartRequested: true }) } },
      states: {
        waiting: {
          after: { probeInterval: { target: 'probing' } },
        },
        probing: {
          invoke: {
            src: 'probeSystem',
            input: ({ context }) => ({ system: context.outage!.system }),
            onDone: [
              {
                guard: { type: 'probeSucceeded', params: ({ event }) => ({ probe: event.output }) },
                target: '#supervisor.pass',
                actions: [
                  { type: 'reportSystemUp', params: ({ context, event }) => ({ outage: context.outage!, at: event.output.at }) },
                  assign({ outage: null }),
                ],
              },
              {
                target: 'waiting',
                actions: assign({
                  outage: ({ context, event }) => ({
                    ...context.outage!,
                    reason: event.output.reason ?? context.outage!.reason,
                    nextProbeAt: new Date(event.output.at.getTime() + context.probeIntervalMs),
                    probes: context.outage!.probes + 1,
                  }),
                }),
              },
            ],
            onError: {
              target: 'waiting',
              actions: assign({
                outage: ({ context }) => ({
                  ...context.outage!,
                  nextProbeAt: new Date(context.outage!.nextProbeAt.getTime() + context.probeIntervalMs),
                  probes: context.outage!.probes + 1,
                }),
              }),
            },
          },
        },
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
