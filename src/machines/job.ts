/**
 * One sync job as a state machine: the steps of SPEC §4.2, one state each.
 *
 *   start → runCount → direction → children → consistency → transform → done
 *                                                                        ↓
 *   (any step failing) → failed ──────────────────────────────→ closeSuperseded → protocolReady → ended
 *   (inconsistent / unfinished children) → requeue → requeued (the row stays inprogress)
 *
 * The machine is pure: every read and write of the outside world is an invoked actor given by
 * `provide()` (see jobActors.ts). Child jobs run inline through this same machine.
 */
import { assign, fromPromise, setup } from 'xstate';
import type { JobErrorCode, JobPatch, JobRow, SystemName } from '../adapters/syncTable/index.ts';
import type { ModelInfo, RecordRef, SyncDirection, SyncEvidence } from '../flows/flow.ts';
import { decideDirection } from '../flows/direction.ts';

/** SPEC §4.2 step 2: a job that has already run this often is not run again. */
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
}

/** Facts of the direction step, as read by the readDirection actor. */
export interface DirectionFacts {
  /** the announced record on the announcing system (null: it does not exist) */
  announced: ModelInfo | null;
  /** its counterpart on the other system (by foreign id, or found pointing back) */
  other: ModelInfo | null;
  /** the other system's model name */
  otherModel: string;
}

export interface TimedEvidence {
  evidence: SyncEvidence;
  start: Date;
  end: Date;
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
  error?: { code: JobErrorCode; text: string };
  closedJobs: number[];
}

function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

function thisRecord(job: JobRow): RecordRef {
  return { system: job.job_source_system, model: job.job_source_model, recordId: job.job_source_record_id };
}

function sameRecord(a: RecordRef, b: RecordRef): boolean {
  return a.system === b.system && a.model === b.model && a.recordId === b.recordId;
}

const asJson = (value: unknown): string | null => (value === undefined ? null : JSON.stringify(value));

/** The one write that records how a job ended (or why it goes back to the queue). */
export function outcomePatch(context: JobContext): JobPatch {
  const patch: JobPatch = {
    // earlier runs' lines stay: they tell why a job ran again
    job_log: [context.job.job_log, ...context.log].filter(Boolean).join('\n') || null,
    child_job_start: context.childStart ?? null,
    child_job_end: context.childEnd ?? null,
  };
  const direction = context.direction;
  if (direction) {
    Object.assign(patch, {
      sync_source_system: direction.source.system,
      sync_source_model: direction.source.model,
      sync_source_record_id: direction.source.recordId,
      sync_target_system: direction.target.system,
      sync_target_model: direction.target.model,
      sync_target_record_id: context.evidence?.evidence.targetRecordId ?? direction.target.recordId,
    } satisfies JobPatch);
  }
  if (context.evidence) {
    const { evidence, start, end } = context.evidence;
    Object.assign(patch, {
      sync_source_data: asJson(evidence.sourceData),
      sync_target_data_before: asJson(evidence.targetDataBefore),
      sync_target_request: evidence.targetRequest,
      sync_target_answer: evidence.targetAnswer,
      sync_start: start,
      sync_end: end,
    } satisfies JobPatch);
  }
  if (context.outcome === 'done') {
    Object.assign(patch, { job_state: 'done', job_error_code: null, job_error_text: null } satisfies JobPatch);
  } else if (context.outcome === 'error' && context.error) {
    Object.assign(patch, { job_state: 'error', job_error_code: context.error.code, job_error_text: context.error.text } satisfies JobPatch);
  }
  return patch;
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
    /** this very machine; jobActors.ts wires it */
    childJob: fromPromise<JobOutcome, JobInput>(async () => {
      throw new Error('childJob not provided');
    }),
    readSourceInfo: fromPromise<ModelInfo | null, { job: JobRow; direction: SyncDirection }>(async () => {
      throw new Error('readSourceInfo not provided');
    }),
    writeTarget: fromPromise<TimedEvidence, { job: JobRow; direction: SyncDirection }>(async () => {
      throw new Error('writeTarget not provided');
    }),
    deleteCounterpart: fromPromise<TimedEvidence | null, { job: JobRow }>(async () => {
      throw new Error('deleteCounterpart not provided');
    }),
    recordOutcome: fromPromise<JobRow, { jobId: number; patch: JobPatch; ended: boolean }>(async () => {
      throw new Error('recordOutcome not provided');
    }),
    closeSuperseded: fromPromise<number[], { job: JobRow }>(async () => {
      throw new Error('closeSuperseded not provided');
    }),
    markProtocolReady: fromPromise<void, { jobId: number }>(async () => {
      throw new Error('markProtocolReady not provided');
    }),
  },
  guards: {
    runCountExceeded: ({ context }) => context.job.job_run_count > MAX_JOB_RUNS,
    isDeleteJob: ({ context }) => context.job.job_source_type === 'delete',
    announcedMissing: ({ context }) => context.facts?.announced === null,
    noMoreChildren: ({ context }) => context.childIndex >= context.children.length,
    childIsCycle: ({ context }) => {
      const child = context.children[context.childIndex];
      return [...context.ancestors, thisRecord(context.job)].some((r) => sameRecord(r, child));
    },
    childIsOpen: ({ context }) => context.currentChild !== undefined && ['new', 'inprogress'].includes(context.currentChild.job_state),
    childFailed: ({ context }) => context.currentChild?.job_state === 'error',
    childrenUnfinished: ({ context }) => context.unfinishedChildren.length > 0,
    outcomeIsError: ({ context }) => context.outcome === 'error',
  },
  actions: {
    fail: assign((_, params: { code: JobErrorCode; text: string }) => ({
      outcome: 'error' as const,
      error: { code: params.code, text: params.text },
    })),
    note: assign(({ context }, params: { line: string }) => ({ log: [...context.log, params.line] })),
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
        onError: { target: 'aborted', actions: assign({ error: ({ event }) => ({ code: 'unknown' as const, text: describeError(event.error) }) }) },
      },
    },
    /** step 2: at most MAX_JOB_RUNS runs */
    runCount: {
      always: [
        {
          guard: 'runCountExceeded',
          target: 'failed',
          actions: {
            type: 'fail',
            params: ({ context }) => ({ code: 'run_counter' as const, text: `job already ran ${context.job.job_run_count - 1} times (limit ${MAX_JOB_RUNS})` }),
          },
        },
        { guard: 'isDeleteJob', target: 'delete' },
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
            onDone: { target: 'deciding', actions: assign({ facts: ({ event }) => event.output }) },
            onError: {
              target: '#job.failed',
              actions: { type: 'fail', params: ({ event }) => ({ code: 'sync_source' as const, text: describeError(event.error) }) },
            },
          },
        },
        deciding: {
          always: [
            {
              guard: 'announcedMissing',
              target: '#job.failed',
              actions: {
                type: 'fail',
                params: ({ context }) => ({
                  code: 'sync_source' as const,
                  text: `${context.job.job_source_system} ${context.job.job_source_model} ${context.job.job_source_record_id} does not exist`,
                }),
              },
            },
            {
              target: 'decided',
              actions: assign(({ context }) => {
                const { job } = context;
                const facts = context.facts!;
                const announced = facts.announced!;
                const verdict = decideDirection(announced, facts.other, `${job.job_source_system} ${job.job_source_model}`, `${otherSystemOf(job.job_source_system)} ${facts.otherModel}`);
                const announcedSide = { system: job.job_source_system, model: job.job_source_model };
                const otherSide = { system: otherSystemOf(job.job_source_system), model: facts.otherModel };
                switch (verdict.kind) {
                  case 'invalid':
                    return { outcome: 'error' as const, error: { code: 'sync_source' as const, text: verdict.reason } };
                  case 'upToDate':
                    return {
                      outcome: 'done' as const,
                      log: [...context.log, `model up to date (sosync_write_date ${verdict.at.toISOString()} on both sides)`],
                    };
                  case 'announcedIsSource':
                    return {
                      direction: {
                        source: { ...announcedSide, recordId: announced.id, info: announced },
                        target: { ...otherSide, recordId: facts.other?.id ?? null, info: facts.other },
                      },
                    };
                  case 'otherIsSource':
                    return {
                      direction: {
                        source: { ...otherSide, recordId: facts.other!.id, info: facts.other! },
                        target: { ...announcedSide, recordId: announced.id, info: announced },
                      },
                    };
                }
              }),
            },
          ],
        },
        decided: {
          always: [
            { guard: 'outcomeIsError', target: '#job.failed' },
            { guard: ({ context }) => context.outcome === 'done', target: '#job.done' },
            { target: '#job.children' },
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
            onError: {
              target: '#job.failed',
              actions: { type: 'fail', params: ({ event }) => ({ code: 'child_job' as const, text: describeError(event.error) }) },
            },
          },
        },
        next: {
          always: [
            { guard: 'noMoreChildren', target: 'settled' },
            {
              guard: 'childIsCycle',
              target: '#job.failed',
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
            onError: {
              target: '#job.failed',
              actions: { type: 'fail', params: ({ event }) => ({ code: 'child_job' as const, text: describeError(event.error) }) },
            },
          },
        },
        opened: {
          always: [
            { guard: 'childIsOpen', target: 'running' },
            {
              guard: 'childFailed',
              target: '#job.failed',
              actions: {
                type: 'fail',
                params: ({ context }) => ({ code: 'child_job' as const, text: `child job ${context.currentChild!.job_id} failed: ${context.currentChild!.job_error_text ?? ''}` }),
              },
            },
            { target: 'next', actions: assign({ childIndex: ({ context }) => context.childIndex + 1 }) },
          ],
        },
        running: {
          invoke: {
            src: 'childJob',
            input: ({ context }) => ({ job: context.currentChild!, ancestors: [...context.ancestors, thisRecord(context.job)] }),
            onDone: [
              {
                guard: ({ event }) => event.output.outcome === 'error' || event.output.outcome === 'aborted',
                target: '#job.failed',
                actions: [
                  assign({ childEnd: ({ event }) => event.output.endedAt }),
                  {
                    type: 'fail',
                    params: ({ event }) => ({ code: 'child_job' as const, text: `child job ${event.output.jobId} failed: ${event.output.message ?? event.output.outcome}` }),
                  },
                ],
              },
              {
                target: 'next',
                actions: assign({
                  childEnd: ({ event }) => event.output.endedAt,
                  childIndex: ({ context }) => context.childIndex + 1,
                  unfinishedChildren: ({ context, event }) =>
                    event.output.outcome === 'requeued' ? [...context.unfinishedChildren, event.output.jobId] : context.unfinishedChildren,
                }),
              },
            ],
            onError: {
              target: '#job.failed',
              actions: { type: 'fail', params: ({ event }) => ({ code: 'child_job' as const, text: describeError(event.error) }) },
            },
          },
        },
        settled: {
          always: [
            {
              guard: 'childrenUnfinished',
              target: '#job.requeue',
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
            guard: ({ context, event }) => event.output?.sosyncWriteDate?.getTime() !== context.direction!.source.info.sosyncWriteDate?.getTime(),
            target: 'requeue',
            actions: { type: 'note', params: { line: 'source changed while the job ran; the job runs again with fresh data' } },
          },
          { target: 'transform' },
        ],
        onError: {
          target: 'failed',
          actions: { type: 'fail', params: ({ event }) => ({ code: 'sync_source' as const, text: describeError(event.error) }) },
        },
      },
    },
    /** step 6: transform and create or update the target */
    transform: {
      invoke: {
        src: 'writeTarget',
        input: ({ context }) => ({ job: context.job, direction: context.direction! }),
        onDone: {
          target: 'done',
          actions: assign({
            evidence: ({ event }) => event.output,
            log: ({ context, event }) => [...context.log, event.output.evidence.summary],
          }),
        },
        onError: {
          target: 'failed',
          actions: [
            assign({ evidence: ({ event }) => evidenceOfError(event.error) }),
            { type: 'fail', params: ({ event }) => ({ code: 'transformation' as const, text: describeError(event.error) }) },
          ],
        },
      },
    },
    /** SPEC §6.4: a delete job removes the counterpart */
    delete: {
      invoke: {
        src: 'deleteCounterpart',
        input: ({ context }) => ({ job: context.job }),
        onDone: {
          target: 'done',
          actions: assign({
            evidence: ({ event }) => event.output ?? undefined,
            log: ({ context, event }) => [...context.log, event.output?.evidence.summary ?? 'nothing to delete: no counterpart exists'],
          }),
        },
        onError: {
          target: 'failed',
          actions: { type: 'fail', params: ({ event }) => ({ code: 'transformation' as const, text: describeError(event.error) }) },
        },
      },
    },
    /** step 7 */
    done: {
      entry: assign({ outcome: 'done' as const }),
      invoke: {
        src: 'recordOutcome',
        input: ({ context }) => ({ jobId: context.job.job_id, patch: outcomePatch(context), ended: true }),
        onDone: { target: 'closeSuperseded', actions: assign({ job: ({ event }) => event.output }) },
        onError: { target: 'aborted', actions: assign({ error: ({ event }) => ({ code: 'unknown' as const, text: describeError(event.error) }) }) },
      },
    },
    failed: {
      invoke: {
        src: 'recordOutcome',
        input: ({ context }) => ({ jobId: context.job.job_id, patch: outcomePatch(context), ended: true }),
        onDone: { target: 'closeSuperseded', actions: assign({ job: ({ event }) => event.output }) },
        onError: { target: 'aborted', actions: assign({ error: ({ context, event }) => ({ code: context.error?.code ?? 'unknown', text: `${context.error?.text ?? ''}; and recording it failed: ${describeError(event.error)}` }) }) },
      },
    },
    /** step 8 */
    closeSuperseded: {
      invoke: {
        src: 'closeSuperseded',
        input: ({ context }) => ({ job: context.job }),
        onDone: { target: 'protocolReady', actions: assign({ closedJobs: ({ event }) => event.output }) },
        onError: { target: 'aborted', actions: assign({ error: ({ event }) => ({ code: 'cleanup' as const, text: describeError(event.error) }) }) },
      },
    },
    /** step 9 */
    protocolReady: {
      invoke: {
        src: 'markProtocolReady',
        input: ({ context }) => ({ jobId: context.job.job_id }),
        onDone: [{ guard: 'outcomeIsError', target: 'error' }, { target: 'synced' }],
        onError: { target: 'aborted', actions: assign({ error: ({ event }) => ({ code: 'cleanup' as const, text: describeError(event.error) }) }) },
      },
    },
    /** back to the queue: the row stays inprogress, decision and log recorded */
    requeue: {
      entry: assign({ outcome: 'requeued' as const }),
      invoke: {
        src: 'recordOutcome',
        input: ({ context }) => ({ jobId: context.job.job_id, patch: outcomePatch(context), ended: false }),
        onDone: { target: 'requeued' },
        onError: { target: 'aborted', actions: assign({ error: ({ event }) => ({ code: 'unknown' as const, text: describeError(event.error) }) }) },
      },
    },
    synced: { type: 'final' },
    error: { type: 'final' },
    requeued: { type: 'final' },
    /** the sync table itself failed: nothing more can be recorded; the row stays inprogress */
    aborted: { type: 'final', entry: assign({ outcome: 'aborted' as const }) },
  },
  output: ({ context }) => ({
    jobId: context.job.job_id,
    outcome: context.outcome ?? 'aborted',
    errorCode: context.error?.code,
    message: context.error?.text ?? context.log[context.log.length - 1],
    endedAt: context.job.job_end ?? undefined,
  }),
});

function otherSystemOf(system: SystemName): SystemName {
  return system === 'fs' ? 'fso' : 'fs';
}

/** A failed write may still carry what was sent and answered; keep it on the row. */
function evidenceOfError(error: unknown): TimedEvidence | undefined {
  const e = error as { evidence?: Partial<SyncEvidence>; syncStart?: Date; syncEnd?: Date } | null;
  if (!e?.evidence || !e.syncStart || !e.syncEnd) return undefined;
  return {
    evidence: {
      targetRecordId: e.evidence.targetRecordId ?? null,
      sourceData: e.evidence.sourceData,
      targetDataBefore: e.evidence.targetDataBefore,
      targetRequest: e.evidence.targetRequest ?? '',
      targetAnswer: e.evidence.targetAnswer ?? '',
      summary: e.evidence.summary ?? 'write failed',
    },
    start: e.syncStart,
    end: e.syncEnd,
  };
}
