/**
 * Builds the actor system: the supervisor (job worker, with job actors as its children) and the
 * protocol worker, provided with their outside world, plus the WorkerControl the HTTP routes use.
 */
import { createActor, fromPromise, type InspectionEvent, type Observer } from 'xstate';
import type { JobRow, SyncTableStore } from '../adapters/syncTable/index.ts';
import type { FlowRegistry } from '../flows/registry.ts';
import type { Logger } from '../log.ts';
import type { WorkerControl, WorkerStatus, WorkerStatusCode } from '../server/app.ts';
import { workerStatusText } from '../server/app.ts';
import { createJobLogic } from './jobActors.ts';
import { DRIFT_CHECK_INTERVAL_MS, supervisorMachine, withJobLogic, type GateResult } from './supervisor.ts';
import { protocolMachine, type BatchResult } from './protocol.ts';

/** What the drift gate needs: the clock adapter's measurement and judgement. */
export interface DriftSource {
  /** measures every source; never throws for an unreachable server (reports it instead) */
  measure(): Promise<DriftMeasurement>;
}

export interface DriftMeasurement {
  at: Date;
  /** offset per source in ms, or the reason it could not be measured */
  sources: Record<string, { offsetMs: number; server?: string } | { error: string }>;
  /** the judgement against the tolerance */
  ok: boolean;
  reason?: string;
}

export interface ProtocolCopier {
  copyBatch(): Promise<BatchResult>;
}

export interface WorkerSystemOptions {
  store: SyncTableStore;
  flows: FlowRegistry;
  drift: DriftSource;
  toleranceMs: number;
  throttleMs: number;
  now?: () => Date;
  logger: Logger;
  /** null: no protocol worker (it says so in the status) */
  protocol: ProtocolCopier | null;
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /** told about every job run that ended (metrics); seconds from picking to the outcome */
  onJobEnded?: (ended: { model: string; outcome: string; seconds: number }) => void;
  driftLockMs?: number;
  faultRetryMs?: number;
  protocolRetryMs?: number;
}

export interface WorkerSystem {
  control: WorkerControl;
  supervisor: ReturnType<typeof createActor<typeof supervisorMachine>>;
  protocol: ReturnType<typeof createActor<typeof protocolMachine>> | null;
  /** resolves when both workers are idle (tests) */
  whenIdle(): Promise<void>;
  /** graceful stop: no new jobs, the current one finishes (SPEC §4.7) */
  stop(timeoutMs?: number): Promise<boolean>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function createWorkerSystem(options: WorkerSystemOptions): WorkerSystem {
  const { store, logger } = options;
  const now = options.now ?? (() => new Date());

  const jobLogic = createJobLogic({ store, flows: options.flows, now, logger });

  const supervisorLogic = withJobLogic(
    supervisorMachine.provide({
      actors: {
        pickNextJob: fromPromise(async () => ({ job: await store.pickNextJob(), at: now() })),
        checkDrift: fromPromise(async ({ input }): Promise<GateResult> => {
          const due = input.force || input.lastCheckAt === null || now().getTime() - input.lastCheckAt.getTime() >= DRIFT_CHECK_INTERVAL_MS;
          if (!due) return { checked: false };
          const m = await options.drift.measure();
          if (m.ok) return { checked: true, ok: true, at: m.at, summary: JSON.stringify(m.sources) };
          return { checked: true, ok: false, at: m.at, reason: m.reason ?? 'drift check failed' };
        }),
        throttle: fromPromise(async ({ input }) => {
          if (input.throttleMs <= 0) return;
          const rest = input.throttleMs - (now().getTime() - input.pickedAt.getTime());
          if (rest > 0) await sleep(rest);
        }),
      },
      actions: {
        reportOutcome: ({ context }, { outcome }) => {
          if (context.currentJob && context.pickedAt) {
            const seconds = (now().getTime() - context.pickedAt.getTime()) / 1000;
            options.onJobEnded?.({ model: context.currentJob.job_source_model, outcome: outcome.outcome, seconds });
          }
          const line = { job_id: outcome.jobId, outcome: outcome.outcome, error_code: outcome.errorCode, detail: outcome.message };
          if (outcome.outcome === 'error' || outcome.outcome === 'aborted') logger.warn(line, 'job ended with an error');
          else logger.info(line, `job ${outcome.outcome}`);
        },
        reportDriftLock: (_, { reason, until }) => {
          logger.error({ until: until.toISOString(), reason }, 'time drift gate closed: synchronisation locked');
        },
        reportFault: (_, { error }) => logger.error({ error }, 'job worker fault; retrying'),
        reportPass: (_, { passes, jobsRun }) => logger.debug({ passes, jobs_run: jobsRun }, 'pass ended: no open job left'),
      },
    }),
    jobLogic,
  );

  const supervisor = createActor(supervisorLogic, {
    input: { throttleMs: options.throttleMs, driftLockMs: options.driftLockMs, faultRetryMs: options.faultRetryMs },
    systemId: 'supervisor',
    inspect: options.inspect,
  });

  const protocol = options.protocol
    ? createActor(
        protocolMachine.provide({
          actors: { copyBatch: fromPromise(async () => options.protocol!.copyBatch()) },
          actions: {
            reportBatch: (_, { batch }) => {
              if (batch.failed) logger.warn({ ...batch }, 'protocol batch had failures; those rows stay pending');
              else if (batch.copied) logger.debug({ ...batch }, 'protocol batch copied');
            },
            reportFault: (_, { error }) => logger.error({ error }, 'protocol worker cannot reach FSO; rows stay pending'),
          },
        }),
        { input: { retryMs: options.protocolRetryMs }, systemId: 'protocol', inspect: options.inspect },
      )
    : null;

  supervisor.start();
  protocol?.start();

  function supervisorStatus(): WorkerStatus {
    const snapshot = supervisor.getSnapshot();
    const c = snapshot.context;
    let code: WorkerStatusCode;
    if (snapshot.status === 'done' || snapshot.matches('stopped')) code = 3;
    else if (snapshot.matches('faulted')) code = 4;
    else if (snapshot.matches('pass')) code = c.stopRequested ? 3 : c.restartRequested ? 2 : 1;
    else code = 0;
    return {
      status: code,
      status_text: workerStatusText[code],
      state: JSON.stringify(snapshot.value).replace(/"/g, ''),
      current_job_id: c.currentJob?.job_id ?? null,
      drift_locked: c.driftLock !== null,
      drift_lock_until: c.driftLock?.until ?? null,
      drift_lock_reason: c.driftLock?.reason ?? null,
      last_drift_check: c.lastDriftCheckAt,
      passes: c.passes,
      jobs_run: c.jobsRun,
      last_error: c.lastError,
    };
  }

  function protocolStatus(): WorkerStatus {
    if (!protocol) {
      return { status: 4, status_text: workerStatusText[4], detail: 'protocol worker is not configured (no FSO connection)' };
    }
    const snapshot = protocol.getSnapshot();
    const c = snapshot.context;
    let code: WorkerStatusCode;
    if (snapshot.status === 'done') code = 3;
    else if (snapshot.matches('faulted')) code = 4;
    else if (snapshot.matches('running') || snapshot.matches('batchDone')) code = c.stopRequested ? 3 : c.restartRequested ? 2 : 1;
    else code = 0;
    return { status: code, status_text: workerStatusText[code], copied: c.copied, last_error: c.lastError };
  }

  const control: WorkerControl = {
    async status() {
      const [open, pending] = await Promise.all([
        store.countOpenRootJobs(),
        protocol ? store.countProtocolPending() : Promise.resolve(null),
      ]);
      return {
        job_worker: { ...supervisorStatus(), open_jobs: open },
        protocol_worker: { ...protocolStatus(), pending_rows: pending },
      };
    },
    processJobs() {
      supervisor.send({ type: 'START' });
      return supervisorStatus();
    },
    processProtocol() {
      protocol?.send({ type: 'START' });
      return protocolStatus();
    },
    async forceDriftCheck() {
      supervisor.send({ type: 'FORCE_DRIFT_CHECK' });
      const s = supervisorStatus();
      return { drift_locked: s.drift_locked, last_drift_check: s.last_drift_check, status: s.status, status_text: s.status_text };
    },
    async drift() {
      const m = await options.drift.measure();
      const drift: Record<string, number | string> = {};
      for (const [source, r] of Object.entries(m.sources)) drift[source] = 'error' in r ? r.error : r.offsetMs;
      return { drift, tolerance: options.toleranceMs, unit: 'millisecond', ok: m.ok, reason: m.reason ?? null, measured_at: m.at };
    },
    jobCreated(_job: JobRow) {
      supervisor.send({ type: 'START' });
      protocol?.send({ type: 'START' });
    },
  };

  const isIdle = () => {
    const s = supervisor.getSnapshot();
    const p = protocol?.getSnapshot();
    return (s.matches('idle') || s.matches('locked') || s.status === 'done') && (!p || p.matches('idle') || p.status === 'done');
  };

  return {
    control,
    supervisor,
    protocol,
    async whenIdle() {
      while (!isIdle()) await sleep(10);
    },
    async stop(timeoutMs = 8000) {
      supervisor.send({ type: 'STOP' });
      protocol?.send({ type: 'STOP' });
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const done = supervisor.getSnapshot().status === 'done' && (!protocol || protocol.getSnapshot().status === 'done');
        if (done) break;
        await sleep(20);
      }
      const clean = supervisor.getSnapshot().status === 'done';
      supervisor.stop();
      protocol?.stop();
      return clean;
    },
  };
}
