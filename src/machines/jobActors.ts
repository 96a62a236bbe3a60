/**
 * The outside world of the job machine: sync_table through the store, the two systems through
 * the flows. `createJobLogic` provides these to jobMachine; tests and the sandbox pass their own
 * store and flows, the machine stays the same. How a job's result maps to sync_table columns
 * lives here too, next to the actor that writes them.
 */
import { createActor, fromPromise, toPromise } from 'xstate';
import { recordKeyText, type JobPatch, type JobRow, type RecordKey, type SyncTableStore } from '../adapters/syncTable/index.ts';
import { FlowError, modelOf, otherSystem, type Flow } from '../flows/flow.ts';
import { readRecordAndCounterpart } from '../flows/direction.ts';
import type { FlowRegistry } from '../flows/registry.ts';
import type { Logger } from '../log.ts';
import { DEFAULT_RETRY_POLICY, retryDelayMs, type RetryPolicy } from './retry.ts';
import { jobMachine, SyncWriteError, type DirectionFacts, type JobInput, type JobOutcome, type JobResult, type TimedEvidence } from './job.ts';

export interface JobDependencies {
  store: SyncTableStore;
  flows: FlowRegistry;
  now: () => Date;
  logger: Logger;
  /** how transiently failed jobs are retried (default: 10 s doubling to 10 min, 10 attempts) */
  retry?: RetryPolicy;
  /**
   * With parallel workers: the slot's record locks (claims.ts). A root job's record is locked by
   * its claim; the job locks its counterpart and a child job its own record and counterpart,
   * before it reads what it decides on. Without it (one worker) nothing needs locking.
   */
  records?: RecordLocks;
  /** the row of a job its pick already started (one worker, drift gate sure to pass); null otherwise */
  takeStarted?: (jobId: number) => JobRow | null;
}

export interface RecordLocks {
  /** waits while another slot holds the record; says whether it had to */
  lock(key: RecordKey): Promise<{ waited: boolean }>;
}

/** Reads both sides, holding both records' locks while it does (see JobDependencies.records). */
async function readLocked(flow: Flow, job: JobRow, records: RecordLocks | undefined, now: () => Date): Promise<DirectionFacts> {
  const read = () => readRecordAndCounterpart(flow, job.job_source_system, job.job_source_record_id);
  if (!records) return read();
  const waits: string[] = [];
  const lock = async (key: RecordKey) => {
    const asked = now();
    const { waited } = await records.lock(key);
    if (waited) waits.push(`${recordKeyText(key)} ${now().getTime() - asked.getTime()} ms`);
    return waited;
  };
  if (job.parent_job_id !== null) await lock({ system: job.job_source_system, model: job.job_source_model, id: job.job_source_record_id });
  const locked = new Set<number>();
  let facts = await read();
  // a counterpart another slot was writing may have changed (or another one been linked): read again
  for (let rounds = 0; facts.other && !locked.has(facts.other.id) && rounds < 3; rounds += 1) {
    locked.add(facts.other.id);
    if (await lock({ system: otherSystem(job.job_source_system), model: facts.otherModel, id: facts.other.id })) facts = await read();
  }
  // the line says when the job had every record, so a reader of the log can tell waiting from running
  return waits.length === 0 ? facts : { ...facts, waited: `waited for records another worker held (${waits.join(', ')}); had them at ${now().toISOString()}, then read them` };
}

export type JobLogic = ReturnType<typeof createJobLogic>;

function flowOf(flows: FlowRegistry, job: JobRow): Flow {
  const flow = flows.forModel(job.job_source_model);
  if (!flow) throw new FlowError(`no sync flow for model ${job.job_source_model}`);
  return flow;
}

const asJson = (value: unknown): string | null => (value === undefined ? null : JSON.stringify(value));

/**
 * The sync_table columns of a job's result: decision, evidence, log and, once ended, its state.
 * A transient failure becomes error_retry with the next attempt time, until the attempts run out.
 */
export function outcomeColumns(result: JobResult, now: Date, retry: RetryPolicy = DEFAULT_RETRY_POLICY): JobPatch {
  const patch: JobPatch = {
    // earlier runs' lines stay: they tell why a job ran again
    job_log: [result.job.job_log, ...result.log].filter(Boolean).join('\n') || null,
    child_job_start: result.childStart ?? null,
    child_job_end: result.childEnd ?? null,
  };
  const { direction, evidence } = result;
  if (direction) {
    Object.assign(patch, {
      sync_source_system: direction.source.system,
      sync_source_model: direction.source.model,
      sync_source_record_id: direction.source.recordId,
      sync_target_system: direction.target.system,
      sync_target_model: direction.target.model,
      sync_target_record_id: evidence?.evidence.targetRecordId ?? direction.target.recordId,
    } satisfies JobPatch);
  }
  if (evidence) {
    Object.assign(patch, {
      sync_source_data: asJson(evidence.evidence.sourceData),
      sync_target_data_before: asJson(evidence.evidence.targetDataBefore),
      sync_target_request: evidence.evidence.targetRequest,
      sync_target_answer: evidence.evidence.targetAnswer,
      sync_start: evidence.start,
      sync_end: evidence.end,
    } satisfies JobPatch);
  }
  if (result.outcome === 'done') {
    Object.assign(patch, { job_state: 'done', job_error_code: null, job_error_text: null, job_retry_at: null } satisfies JobPatch);
  } else if (result.outcome === 'error' && result.error) {
    const { code, text, transient } = result.error;
    const failures = result.job.job_retry_count + 1;
    if (transient && failures < retry.maxAttempts) {
      const retryAt = new Date(now.getTime() + retryDelayMs(retry, failures));
      Object.assign(patch, {
        job_state: 'error_retry', job_error_code: code, job_error_text: text,
        job_retry_at: retryAt, job_retry_count: failures, job_run_count: 0,
      } satisfies JobPatch);
      // the reason stays in the log: job_error_text is cleared once a later attempt succeeds
      patch.job_log = [patch.job_log, `transient failure ${failures} of at most ${retry.maxAttempts} (${code}: ${text}); next attempt at ${retryAt.toISOString()}`].filter(Boolean).join('\n');
    } else {
      const gaveUp = transient ? ` (gave up after ${failures} attempts)` : '';
      Object.assign(patch, {
        job_state: 'error', job_error_code: code, job_error_text: text + gaveUp, job_retry_at: null,
        job_retry_count: transient ? failures : result.job.job_retry_count,
      } satisfies JobPatch);
    }
  }
  return patch;
}

/** A failed write keeps what it sent and got (a FlowError's partial evidence) with its timing. */
function writeFailure(error: unknown, start: Date, end: Date): SyncWriteError {
  const message = error instanceof Error ? error.message : String(error);
  const partial = error instanceof FlowError ? error.evidence : undefined;
  const evidence: TimedEvidence | undefined = partial
    ? {
        evidence: {
          targetRecordId: partial.targetRecordId ?? null,
          sourceData: partial.sourceData,
          targetDataBefore: partial.targetDataBefore,
          targetRequest: partial.targetRequest ?? '',
          targetAnswer: partial.targetAnswer ?? '',
          summary: partial.summary ?? 'write failed',
        },
        start,
        end,
      }
    : undefined;
  return new SyncWriteError(message, evidence, { cause: error });
}

export function createJobLogic(deps: JobDependencies) {
  const { store, flows, now } = deps;

  const machine = jobMachine.provide({
    actors: {
      startJob: fromPromise(async ({ input }) => {
        // with the outcome line, the log shows when each job ran in which process (HA harness)
        deps.logger.debug({ job_id: input.jobId }, 'job started');
        return deps.takeStarted?.(input.jobId) ?? store.startJob(input.jobId);
      }),

      readDirection: fromPromise(async ({ input }): Promise<DirectionFacts> => readLocked(flowOf(flows, input.job), input.job, deps.records, now)),

      listChildJobs: fromPromise(async ({ input }) => {
        const children = await flowOf(flows, input.job).childJobs(input.direction);
        return { children, at: now() };
      }),

      openChildJob: fromPromise(async ({ input }) => {
        const { parent, child } = input;
        const { job } = await store.findOrCreateChildJob(parent.job_id, child.system, child.model, child.recordId, now());
        return job;
      }),

      readSourceInfo: fromPromise(async ({ input }) => {
        const { source } = input.direction;
        return flowOf(flows, input.job).readModelInfo(source.system, source.recordId);
      }),

      writeTarget: fromPromise(async ({ input }): Promise<TimedEvidence> => {
        const start = now();
        try {
          const evidence = await flowOf(flows, input.job).write(input.direction);
          return { evidence, start, end: now() };
        } catch (err) {
          throw writeFailure(err, start, now());
        }
      }),

      deleteCounterpart: fromPromise(async ({ input }): Promise<TimedEvidence | null> => {
        const { job } = input;
        const flow = flowOf(flows, job);
        const counterpart = otherSystem(job.job_source_system);
        if (deps.records && job.parent_job_id !== null) await deps.records.lock({ system: job.job_source_system, model: job.job_source_model, id: job.job_source_record_id });
        if (deps.records && job.job_source_target_record_id !== null) {
          await deps.records.lock({ system: counterpart, model: modelOf(flow, counterpart), id: job.job_source_target_record_id });
        }
        const start = now();
        const evidence = await flow.deleteCounterpart(job.job_source_system, job.job_source_record_id, job.job_source_target_record_id);
        return evidence ? { evidence, start, end: now() } : null;
      }),

      // a requeued job's decision and log, without job_end: the row stays inprogress
      recordOutcome: fromPromise(async ({ input }) => store.updateJob(input.job.job_id, outcomeColumns(input, now(), deps.retry))),

      finishJob: fromPromise(async ({ input }) => {
        const { job } = input;
        if (job.job_source_sosync_write_date === null) {
          deps.logger.warn({ job_id: job.job_id }, 'job has no job_source_sosync_write_date: it closes no superseded jobs');
        }
        const at = now();
        return store.finishJob(job, { ...outcomeColumns(input, at, deps.retry), job_end: at });
      }),

      // A child job runs through this very machine, as an actor of the parent's system (so the
      // live view shows it); stopping the parent stops the child.
      childJob: fromPromise<JobOutcome, JobInput>(async ({ input, self, signal }) => {
        const child = createActor(machine, { input, parent: self });
        signal.addEventListener('abort', () => child.stop(), { once: true });
        return toPromise(child.start());
      }),
    },
  });
  return machine;
}

export type { JobInput, JobOutcome };
