/**
 * The outside world of the job machine: sync_table through the store, the two systems through
 * the flows. `createJobLogic` provides these to jobMachine; tests and the sandbox pass their own
 * store and flows, the machine stays the same.
 */
import { fromPromise, type AnyActorLogic } from 'xstate';
import type { JobRow, SyncTableStore } from '../adapters/syncTable/index.ts';
import { FlowError, type Flow, type SyncDirection } from '../flows/flow.ts';
import { readRecordAndCounterpart } from '../flows/direction.ts';
import type { FlowRegistry } from '../flows/registry.ts';
import type { Logger } from '../log.ts';
import { jobMachine, type DirectionFacts, type JobInput, type JobOutcome, type TimedEvidence } from './job.ts';

export interface JobDependencies {
  store: SyncTableStore;
  flows: FlowRegistry;
  now: () => Date;
  logger: Logger;
}

export type JobLogic = ReturnType<typeof createJobLogic>;

function flowOf(flows: FlowRegistry, job: JobRow): Flow {
  const flow = flows.forModel(job.job_source_model);
  if (!flow) throw new FlowError(`no sync flow for model ${job.job_source_model}`);
  return flow;
}

export function createJobLogic(deps: JobDependencies) {
  const { store, flows, now } = deps;

  const machine = jobMachine.provide({
    actors: {
      startJob: fromPromise(async ({ input }) => store.startJob(input.jobId)),

      readDirection: fromPromise(async ({ input }): Promise<DirectionFacts> =>
        readRecordAndCounterpart(flowOf(flows, input.job), input.job.job_source_system, input.job.job_source_record_id)),

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
          const evidence = await flowOf(flows, input.job).write(input.direction as SyncDirection);
          return { evidence, start, end: now() };
        } catch (err) {
          throw Object.assign(err instanceof Error ? err : new Error(String(err)), { syncStart: start, syncEnd: now() });
        }
      }),

      deleteCounterpart: fromPromise(async ({ input }): Promise<TimedEvidence | null> => {
        const { job } = input;
        const start = now();
        const evidence = await flowOf(flows, job).deleteCounterpart(job.job_source_system, job.job_source_record_id, job.job_source_target_record_id);
        return evidence ? { evidence, start, end: now() } : null;
      }),

      recordOutcome: fromPromise(async ({ input }) =>
        store.updateJob(input.jobId, input.ended ? { ...input.patch, job_end: now() } : input.patch)),

      closeSuperseded: fromPromise(async ({ input }) => {
        const { job } = input;
        if (job.job_source_sosync_write_date === null) {
          deps.logger.warn({ job_id: job.job_id }, 'job has no job_source_sosync_write_date: it closes no superseded jobs');
          return [];
        }
        return store.closeSupersededJobs(job);
      }),

      markProtocolReady: fromPromise(async ({ input }) => {
        await store.updateJob(input.jobId, { job_to_fso_can_sync: true });
      }),
    },
  });

  // A child job runs through this very machine (an invoked child actor of its parent).
  (machine.implementations.actors as Record<string, AnyActorLogic>).childJob = machine;
  return machine;
}

export type { JobInput, JobOutcome };
