/**
 * One sync job as a state machine: the steps of SPEC §4.2, one state each.
 *
 *   start → runCount ─┬─▶ direction ─▶ children ─▶ consistency ─▶ writing ─┐
 *                     │   reading       listing → next → opening           │
 *                     │   deciding      → opened → running → settled       │
 *                     └─▶ deleting (delete jobs, SPEC §6.4) ────────────────┤
 *                                                                          ▼
 *   finishing (outcome, superseded jobs closed, protocol flag: one write) ─▶ synced | error
 *
 *   a step fails            ─▶ finishing, with job_error_code of that step (`timeout` when a call
 *                              timed out); a transient failure is recorded as error_retry (retry.ts)
 *   up to date              ─▶ finishing, done without a write
 *   source changed / children unfinished ─▶ requeueing ─▶ requeued (row stays inprogress)
 *   the sync table itself fails          ─▶ aborted (row stays inprogress)
 *
 * The machine is pure: every read and write of the outside world is an invoked actor given by
 * `provide()` (jobActors.ts); guards are named so the live page can show them on the edges.
 */
import { assign, fromPromise, setup } from 'xstate';
import { openStates, type JobErrorCode, type JobRow, type SystemName } from '../adapters/syncTable/index.ts';
import type { ModelInfo, RecordRef, SyncDirection, SyncEvidence } from '../flows/flow.ts';
import { decideDirection, type DirectionVerdict } from '../flows/direction.ts';
import { failureTraits } from '../adapters/failure.ts';

/** SPEC §4.2 step 2: the fifth start of a job ends it without syncing. */
export const MAX_JOB_RUNS = 5;

export interface JobInput {
  job: JobRow;
  /** the records of the parent jobs, outermost first (cycle guard) */
  ancestors: RecordRef[];
}

export type JobOutcomeKind = 'done' | 'error' | 'requeued' | 'aborted';

export interface JobOutcome {
  jobId: number;
  outcome: JobOutcomeKind;
  errorCode?: JobErrorCode;
  message?: string;
  /** job_end as recorded */
  endedAt?: Date;
  /** the failure may pass when tried again (the row is in error_retry unless attempts ran out) */
  transient?: boolean;
  /** the failure showed this system to be down: the worker pauses until a probe succeeds */
  downSystem?: SystemName;
}

/** What the finishing write stored: the job's row and the ids of the jobs it closed (superseded ones, and its own children still open). */
export interface FinishedJob {
  job: JobRow;
  closedJobs: number[];
}

/** A step's failure as the job records it. */
export interface JobFailure {
  code: JobErrorCode;
  text: string;
  transient?: boolean;
  downSystem?: SystemName;
}

/** Facts of the direction step, as read by the readDirection actor. */
export interface DirectionFacts {
  /** the announced record on the announcing system (null: it does not exist) */
  announced: ModelInfo | null;
  /** its counterpart on the other system (by foreign id, or found pointing back) */
  other: ModelInfo | null;
  /** the other system's model name */
  otherModel: string;
  /** parallel workers: the records this job waited for while another job held them (a log line) */
  waited?: string;
}

export interface TimedEvidence {
  evidence: SyncEvidence;
  start: Date;
  end: Date;
}

/** A failed write, with what was sent and answered and when, so the row keeps the evidence. */
export class SyncWriteError extends Error {
  constructor(message: string, readonly evidence: TimedEvidence | undefined, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SyncWriteError';
  }
}

/** What the machine knows when it records a job's end (or its return to the queue). */
export interface JobResult {
  job: JobRow;
  outcome: Exclude<JobOutcomeKind, 'aborted'>;
  error?: JobFailure;
  direction?: SyncDirection;
  evidence?: TimedEvidence;
  /** this run's job_log lines */
  log: string[];
  childStart?: Date;
  childEnd?: Date;
}

interface JobContext {
  job: JobRow;
  ancestors: RecordRef[];
  facts?: DirectionFacts;
  direction?: SyncDirection;
  children: RecordRef[];
  childIndex: number;
  currentChild?: JobRow;
  unfinishedChildren: number[];
  childStart?: Date;
  childEnd?: Date;
  evidence?: TimedEvidence;
  log: string[];
  outcome?: JobOutcomeKind;
  error?: JobFailure;
  closedJobs: number[];
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function otherSystemOf(system: SystemName): SystemName {
  return system === 'fs' ? 'fso' : 'fs';
}

function thisRecord(job: JobRow): RecordRef {
  return { system: job.job_source_system, model: job.job_source_model, recordId: job.job_source_record_id };
}

function sameRecord(a: RecordRef, b: RecordRef): boolean {
  return a.system === b.system && a.model === b.model && a.recordId === b.recordId;
}

/** SPEC §4.2 step 3, judged on what the reading state found (the announced record exists). */
function verdictOf(context: JobContext): DirectionVerdict {
  const { job, facts } = context;
  return decideDirection(
    facts!.announced!,
    facts!.other,
    `${job.job_source_system} ${job.job_source_model}`,
    `${otherSystemOf(job.job_source_system)} ${facts!.otherModel}`,
  );
}

/** The system holding the newer record, when the verdict names one. */
function sourceSystemOf(context: JobContext): SystemName | null {
  const verdict = verdictOf(context);
  if (verdict.kind === 'announcedIsSource') return context.job.job_source_system;
  if (verdict.kind === 'otherIsSource') return otherSystemOf(context.job.job_source_system);
  return null;
}

function directionFrom(context: JobContext, sourceSystem: SystemName): SyncDirection {
  const { job, facts } = context;
  const announced = { system: job.job_source_system, model: job.job_source_model, info: facts!.announced! };
  const other = { system: otherSystemOf(job.job_source_system), model: facts!.otherModel, info: facts!.other };
  if (sourceSystem === announced.system) {
    return {
      source: { ...announced, recordId: announced.info.id },
      target: { ...other, recordId: other.info?.id ?? null },
    };
  }
  return {
    source: { ...other, recordId: other.info!.id, info: other.info! },
    target: { ...announced, recordId: announced.info.id },
  };
}

function resultOf(context: JobContext): JobResult {
  return {
    job: context.job,
    outcome: context.outcome === 'error' ? 'error' : context.outcome === 'done' ? 'done' : 'requeued',
    error: context.error,
    direction: context.direction,
    evidence: context.evidence,
    log: context.log,
    childStart: context.childStart,
    childEnd: context.childEnd,
  };
}

/** A step's failure, classified by the adapter error it carries: `timeout`, transient, system down. */
function failureOf(code: JobErrorCode, error: unknown): JobFailure {
  const traits = failureTraits(error);
  return {
    code: traits?.timeout ? 'timeout' : code,
    text: describeError(error),
    transient: traits?.transient ?? false,
    downSystem: traits?.unavailable ? traits.system : undefined,
  };
}

/** "When this actor fails, the job fails with `code`": one shape for every step. */
function failOnError(code: JobErrorCode) {
  return {
    target: '#job.finishing' as const,
    actions: { type: 'fail' as const, params: ({ event }: { event: { error: unknown } }) => failureOf(code, event.error) },
  };
}

/** "When the sync table cannot be written, nothing more can be recorded": one shape for every write. */
function abortOnError(code: JobErrorCode = 'unknown') {
  return {
    target: '#job.aborted' as const,
    actions: { type: 'abort' as const, params: ({ event }: { event: { error: unknown } }) => ({ code, text: describeError(event.error) }) },
  };
}

export const jobMachine = setup({
  types: {
    context: {} as JobContext,
    input: {} as JobInput,
    output: {} as JobOutcome,
  },
  actors: {
    startJob: fromPromise<JobRow, { jobId: number }>(async () => {
      throw new Error('startJob not provided');
    }),
    readDirection: fromPromise<DirectionFacts, { job: JobRow }>(async () => {
      throw new Error('readDirection not provided');
    }),
    listChildJobs: fromPromise<{ children: RecordRef[]; at: Date }, { job: JobRow; direction: SyncDirection }>(async () => {
      throw new Error('listChildJobs not provided');
    }),
    openChildJob: fromPromise<JobRow, { parent: JobRow; child: RecordRef }>(async () => {
      throw new Error('openChildJob not provided');
    }),
    /** a child job, run to its end through this same machine (jobActors.ts) */
    childJob: fromPromise<JobOutcome, JobInput>(async () => {
      throw new Error('childJob not provided');
    }),
    readSourceInfo: fromPromise<ModelInfo | null, { job: JobRow; direction: SyncDirection }>(async () => {
      throw new Error('readSourceInfo not provided');
    }),
    /** throws SyncWriteError when the write fails */
    writeTarget: fromPromise<TimedEvidence, { job: JobRow; direction: SyncDirection }>(async () => {
      throw new Error('writeTarget not provided');
    }),
    deleteCounterpart: fromPromise<TimedEvidence | null, { job: JobRow }>(async () => {
      throw new Error('deleteCounterpart not provided');
    }),
    /** a requeued job: writes its decision and log (no job_end); returns the row as stored */
    recordOutcome: fromPromise<JobRow, JobResult>(async () => {
      throw new Error('recordOutcome not provided');
    }),
    /** steps 7–9 as one write: the outcome, the superseded jobs closed, the protocol flag */
    finishJob: fromPromise<FinishedJob, JobResult>(async () => {
      throw new Error('finishJob not provided');
    }),
  },
  guards: {
    runCountExceeded: ({ context }) => context.job.job_run_count >= MAX_JOB_RUNS,
    isDeleteJob: ({ context }) => context.job.job_source_type === 'delete',
    announcedMissing: ({ context }) => context.facts?.announced === null,
    stateInvalid: ({ context }) => verdictOf(context).kind === 'invalid',
    upToDate: ({ context }) => verdictOf(context).kind === 'upToDate',
    fsIsSource: ({ context }) => sourceSystemOf(context) === 'fs',
    fsoIsSource: ({ context }) => sourceSystemOf(context) === 'fso',
    noMoreChildren: ({ context }) => context.childIndex >= context.children.length,
    childIsCycle: ({ context }) => {
      const child = context.children[context.childIndex];
      return [...context.ancestors, thisRecord(context.job)].some((r) => sameRecord(r, child));
    },
    // a child waiting in error_retry runs again with its parent's attempt
    childIsOpen: ({ context }) => context.currentChild !== undefined && ([...openStates, 'error_retry'] as readonly string[]).includes(context.currentChild.job_state),
    childFailed: ({ context }) => context.currentChild?.job_state === 'error',
    childEndedBadly: (_, params: { outcome: JobOutcome }) => params.outcome.outcome === 'error' || params.outcome.outcome === 'aborted',
    childrenUnfinished: ({ context }) => context.unfinishedChildren.length > 0,
    sourceChanged: ({ context }, params: { current: ModelInfo | null }) =>
      params.current?.sosyncWriteDate?.getTime() !== context.direction!.source.info.sosyncWriteDate?.getTime(),
    outcomeIsError: ({ context }) => context.outcome === 'error',
  },
  actions: {
    fail: assign((_, params: JobFailure) => ({
      outcome: 'error' as const,
      error: { code: params.code, text: params.text, transient: params.transient, downSystem: params.downSystem },
    })),
    succeed: assign({ outcome: 'done' as const }),
    keepFreshSource: assign(({ context }, params: { fresh: ModelInfo | null }) => {
      const direction = context.direction!;
      return { direction: params.fresh ? { ...direction, source: { ...direction.source, info: params.fresh } } : direction };
    }),
    requeue: assign({ outcome: 'requeued' as const }),
    abort: assign(({ context }, params: { code: JobErrorCode; text: string }) => ({
      outcome: 'aborted' as const,
      // an error found earlier is kept: it is what the row could not record
      error: context.error
        ? { code: context.error.code, text: `${context.error.text}; and recording it failed: ${params.text}` }
        : { code: params.code, text: params.text },
    })),
    note: assign(({ context }, params: { line: string }) => ({ log: [...context.log, params.line] })),
    decideSourceIs: assign(({ context }, params: { system: SystemName }) => ({ direction: directionFrom(context, params.system) })),
    keepEvidence: assign(({ context }, params: { evidence: TimedEvidence | null | undefined; fallbackLine: string }) => ({
      evidence: params.evidence ?? undefined,
      log: [...context.log, params.evidence?.evidence.summary ?? params.fallbackLine],
    })),
    nextChild: assign(({ context }) => ({ childIndex: context.childIndex + 1 })),
    keepFinished: assign((_, params: FinishedJob) => ({ job: params.job, closedJobs: params.closedJobs })),
  },
}).createMachine({
  id: 'job',
  context: ({ input }) => ({
    job: input.job,
    ancestors: input.ancestors,
    children: [],
    childIndex: 0,
    unfinishedChildren: [],
    log: [],
    closedJobs: [],
  }),
  initial: 'start',
  states: {
    /** step 1: inprogress, job_start, run count + 1 */
    start: {
      invoke: {
        src: 'startJob',
        input: ({ context }) => ({ jobId: context.job.job_id }),
        onDone: { target: 'runCount', actions: assign({ job: ({ event }) => event.output }) },
        onError: abortOnError(),
      },
    },
    /** step 2: the fifth start ends the job */
    runCount: {
      always: [
        {
          guard: 'runCountExceeded',
          target: 'finishing',
          actions: {
            type: 'fail',
            params: ({ context }) => ({ code: 'run_counter' as const, text: `job started for the ${context.job.job_run_count}th time (limit ${MAX_JOB_RUNS}): not synced again` }),
          },
        },
        { guard: 'isDeleteJob', target: 'deleting' },
        { target: 'direction' },
      ],
    },
    /** step 3: which side is newer */
    direction: {
      initial: 'reading',
      states: {
        reading: {
          invoke: {
            src: 'readDirection',
            input: ({ context }) => ({ job: context.job }),
            onDone: {
              target: 'deciding',
              actions: assign({
                facts: ({ event }) => event.output,
                log: ({ context, event }) => (event.output.waited ? [...context.log, event.output.waited] : context.log),
              }),
            },
            onError: failOnError('sync_source'),
          },
        },
        deciding: {
          always: [
            {
              guard: 'announcedMissing',
              target: '#job.finishing',
              actions: {
                type: 'fail',
                params: ({ context }) => ({
                  code: 'sync_source' as const,
                  text: `${context.job.job_source_system} ${context.job.job_source_model} ${context.job.job_source_record_id} does not exist`,
                }),
              },
            },
            {
              guard: 'stateInvalid',
              target: '#job.finishing',
              actions: {
                type: 'fail',
                params: ({ context }) => {
                  const verdict = verdictOf(context);
                  return { code: 'sync_source' as const, text: verdict.kind === 'invalid' ? verdict.reason : 'invalid state' };
                },
              },
            },
            {
              guard: 'upToDate',
              target: '#job.finishing',
              actions: [
                'succeed',
                {
                  type: 'note',
                  params: ({ context }) => {
                    const verdict = verdictOf(context);
                    const at = verdict.kind === 'upToDate' ? verdict.at.toISOString() : '';
                    return { line: `model up to date (sosync_write_date ${at} on both sides)` };
                  },
                },
              ],
            },
            { guard: 'fsIsSource', target: '#job.children', actions: { type: 'decideSourceIs', params: { system: 'fs' } } },
            { guard: 'fsoIsSource', target: '#job.children', actions: { type: 'decideSourceIs', params: { system: 'fso' } } },
          ],
        },
      },
    },
    /** step 4: records the flow needs synced first, run inline */
    children: {
      initial: 'listing',
      states: {
        listing: {
          invoke: {
            src: 'listChildJobs',
            input: ({ context }) => ({ job: context.job, direction: context.direction! }),
            onDone: {
              target: 'next',
              actions: assign({
                children: ({ event }) => event.output.children,
                childIndex: 0,
                childStart: ({ event }) => (event.output.children.length ? event.output.at : undefined),
              }),
            },
            onError: failOnError('child_job'),
          },
        },
        next: {
          always: [
            { guard: 'noMoreChildren', target: 'settled' },
            {
              guard: 'childIsCycle',
              target: '#job.finishing',
              actions: {
                type: 'fail',
                params: ({ context }) => {
                  const c = context.children[context.childIndex];
                  return { code: 'child_job' as const, text: `child job for ${c.system} ${c.model} ${c.recordId} would be a cycle: that record is already being synced by a parent job` };
                },
              },
            },
            { target: 'opening' },
          ],
        },
        opening: {
          invoke: {
            src: 'openChildJob',
            input: ({ context }) => ({ parent: context.job, child: context.children[context.childIndex] }),
            onDone: { target: 'opened', actions: assign({ currentChild: ({ event }) => event.output }) },
            onError: failOnError('child_job'),
          },
        },
        opened: {
          always: [
            { guard: 'childIsOpen', target: 'running' },
            {
              guard: 'childFailed',
              target: '#job.finishing',
              actions: {
                type: 'fail',
                params: ({ context }) => ({ code: 'child_job' as const, text: `child job ${context.currentChild!.job_id} failed: ${context.currentChild!.job_error_text ?? ''}` }),
              },
            },
            // done or skipped earlier: nothing to run
            { target: 'next', actions: 'nextChild' },
          ],
        },
        running: {
          invoke: {
            src: 'childJob',
            input: ({ context }) => ({ job: context.currentChild!, ancestors: [...context.ancestors, thisRecord(context.job)] }),
            onDone: [
              {
                guard: { type: 'childEndedBadly', params: ({ event }) => ({ outcome: event.output }) },
                target: '#job.finishing',
                actions: [
                  assign({ childEnd: ({ event }) => event.output.endedAt }),
                  {
                    type: 'fail',
                    // a child that failed transiently leaves its parent to be retried with it
                    params: ({ event }) => ({
                      code: 'child_job' as const,
                      text: `child job ${event.output.jobId} failed: ${event.output.message ?? event.output.outcome}`,
                      transient: event.output.transient,
                      downSystem: event.output.downSystem,
                    }),
                  },
                ],
              },
              {
                target: 'next',
                actions: [
                  assign({
                    childEnd: ({ event }) => event.output.endedAt,
                    unfinishedChildren: ({ context, event }) =>
                      event.output.outcome === 'requeued' ? [...context.unfinishedChildren, event.output.jobId] : context.unfinishedChildren,
                  }),
                  'nextChild',
                ],
              },
            ],
            onError: failOnError('child_job'),
          },
        },
        settled: {
          always: [
            {
              guard: 'childrenUnfinished',
              target: '#job.requeueing',
              actions: { type: 'note', params: ({ context }) => ({ line: `child jobs unfinished (${context.unfinishedChildren.join(', ')}); the job runs again` }) },
            },
            { target: '#job.consistency' },
          ],
        },
      },
    },
    /** step 5: the source must not have changed since step 3 */
    consistency: {
      invoke: {
        src: 'readSourceInfo',
        input: ({ context }) => ({ job: context.job, direction: context.direction! }),
        onDone: [
          {
            guard: { type: 'sourceChanged', params: ({ event }) => ({ current: event.output }) },
            target: 'requeueing',
            actions: { type: 'note', params: { line: 'source changed while the job ran; the job runs again with fresh data' } },
          },
          // the write works from this fresh read (the flow's record, when the read fetched it along)
          { target: 'writing', actions: { type: 'keepFreshSource', params: ({ event }) => ({ fresh: event.output }) } },
        ],
        onError: failOnError('sync_source'),
      },
    },
    /** step 6: transform and create or update the target */
    writing: {
      invoke: {
        src: 'writeTarget',
        input: ({ context }) => ({ job: context.job, direction: context.direction! }),
        onDone: {
          target: 'finishing',
          actions: ['succeed', { type: 'keepEvidence', params: ({ event }) => ({ evidence: event.output, fallbackLine: 'written' }) }],
        },
        onError: {
          target: 'finishing',
          actions: [
            assign({ evidence: ({ event }) => (event.error instanceof SyncWriteError ? event.error.evidence : undefined) }),
            { type: 'fail', params: ({ event }) => failureOf('transformation', event.error) },
          ],
        },
      },
    },
    /** SPEC §6.4: a delete job removes the counterpart */
    deleting: {
      invoke: {
        src: 'deleteCounterpart',
        input: ({ context }) => ({ job: context.job }),
        onDone: {
          target: 'finishing',
          actions: ['succeed', { type: 'keepEvidence', params: ({ event }) => ({ evidence: event.output, fallbackLine: 'nothing to delete: no counterpart exists' }) }],
        },
        onError: failOnError('transformation'),
      },
    },
    /**
     * steps 7–9 in one write: record the outcome, close superseded jobs, hand the row to the
     * protocol worker; when the write fails nothing of it is stored (the row stays inprogress)
     */
    finishing: {
      invoke: {
        src: 'finishJob',
        input: ({ context }) => resultOf(context),
        onDone: [
          { guard: 'outcomeIsError', target: 'error', actions: { type: 'keepFinished', params: ({ event }) => event.output } },
          { target: 'synced', actions: { type: 'keepFinished', params: ({ event }) => event.output } },
        ],
        onError: abortOnError(),
      },
    },
    /** back to the queue: the row stays inprogress, decision and log recorded */
    requeueing: {
      entry: 'requeue',
      invoke: {
        src: 'recordOutcome',
        input: ({ context }) => resultOf(context),
        onDone: { target: 'requeued' },
        onError: abortOnError(),
      },
    },
    synced: { type: 'final' },
    error: { type: 'final' },
    requeued: { type: 'final' },
    /** the sync table itself failed: nothing more can be recorded; the row stays inprogress */
    aborted: { type: 'final' },
  },
  output: ({ context }) => ({
    jobId: context.job.job_id,
    outcome: context.outcome ?? 'aborted',
    errorCode: context.error?.code,
    message: context.error?.text ?? context.log[context.log.length - 1],
    endedAt: context.job.job_end ?? undefined,
    transient: context.error?.transient,
    downSystem: context.error?.downSystem,
  }),
});

export type JobMachine = typeof jobMachine;
