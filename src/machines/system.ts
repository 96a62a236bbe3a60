/**
 * Wires the machines to their implementations: the supervisor (job worker, with job actors as its
 * children) and the protocol worker, provided with the store, the flows, the drift source and the
 * clock, plus the WorkerControl the HTTP routes use. Nothing here decides what a job does.
 */
import { createActor, fromPromise, waitFor, type InspectionEvent, type Observer } from 'xstate';
import { systemNow, type DriftSource } from '../adapters/clock/index.ts';
import type { ProtocolCopier } from '../adapters/online/index.ts';
import type { JobRow, SyncTableStore, SystemName } from '../adapters/syncTable/index.ts';
import type { FlowRegistry } from '../flows/registry.ts';
import type { Logger } from '../log.ts';
import { createJobLogic } from './jobActors.ts';
import type { RetryPolicy } from './retry.ts';
import { DRIFT_CHECK_INTERVAL_MS, supervisorMachine, type GateResult, type ProbeResult, type SystemOutage } from './supervisor.ts';
import { protocolMachine } from './protocol.ts';
import type { WorkerActivity, WorkerControl, WorkerReport } from './workers.ts';

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
  /** how transiently failed jobs are retried */
  retry?: RetryPolicy;
  /** while a system is down it is probed this often */
  probeIntervalMs?: number;
  /** one cheap call per system that resolves when it is reachable (FS: a SELECT; FSO: a login) */
  probes?: Partial<Record<SystemName, () => Promise<unknown>>>;
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

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

const systemLabel: Record<SystemName, string> = { fs: 'FS', fso: 'FSO' };

/** Each system's circuit breaker as /service/status shows it. */
function systemsStatus(outage: SystemOutage | null): Record<SystemName, Record<string, unknown>> {
  const of = (system: SystemName) =>
    outage?.system === system
      ? { up: false, down_since: outage.since, next_probe_at: outage.nextProbeAt, probes: outage.probes, reason: outage.reason }
      : { up: true };
  return { fs: of('fs'), fso: of('fso') };
}

export function createWorkerSystem(options: WorkerSystemOptions): WorkerSystem {
  const { store, logger } = options;
  const now = options.now ?? systemNow;

  const jobLogic = createJobLogic({ store, flows: options.flows, now, logger, retry: options.retry });

  const supervisorLogic = supervisorMachine.provide({
      actors: {
        job: jobLogic,
        pickNextJob: fromPromise(async () => {
          const job = await store.pickNextJob(now());
          const nextRetryAt = job ? null : await store.nextRetryAt();
          // the throttle counts from here, when the job is loaded (SPEC §4.6)
          return { job, at: now(), nextRetryAt };
        }),
        probeSystem: fromPromise(async ({ input }): Promise<ProbeResult> => {
          const probe = options.probes?.[input.system];
          try {
            if (probe) await probe();
            return { up: true, at: now() };
          } catch (err) {
            return { up: false, at: now(), reason: message(err) };
          }
        }),
        checkDrift: fromPromise(async ({ input }): Promise<GateResult> => {
          const due = input.force || input.lastCheckAt === null || now().getTime() - input.lastCheckAt.getTime() >= DRIFT_CHECK_INTERVAL_MS;
          if (!due) return { checked: false };
          try {
            const m = await options.drift.measure();
            if (m.ok) return { checked: true, ok: true, at: m.at, summary: JSON.stringify(m.sources) };
            return { checked: true, ok: false, at: m.at, reason: m.reason ?? 'drift check failed' };
          } catch (err) {
            // a measurement that cannot be made keeps the gate closed, like a drift too large
            return { checked: true, ok: false, at: now(), reason: `drift check failed: ${message(err)}` };
          }
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
          // SPEC §5: a finished job reaches FSO without waiting for the next announcement
          protocol?.send({ type: 'WAKE' });
        },
        reportDriftLock: (_, { reason, until }) => {
          logger.error({ until: until.toISOString(), reason }, 'time drift gate closed: synchronisation locked');
        },
        reportFault: (_, { error }) => logger.error({ error }, 'job worker fault; retrying'),
        reportPass: (_, { passes, jobsRun }) => logger.debug({ passes, jobs_run: jobsRun }, 'pass ended: no open job left'),
        reportSystemDown: (_, { outage }) => {
          logger.error({ system: outage.system, since: outage.since.toISOString(), next_probe_at: outage.nextProbeAt.toISOString(), reason: outage.reason },
            `${systemLabel[outage.system]} is down: job worker paused, probing it every ${supervisor.getSnapshot().context.probeIntervalMs} ms`);
        },
        reportSystemUp: (_, { outage, at }) => {
          logger.info({ system: outage.system, down_since: outage.since.toISOString(), down_ms: at.getTime() - outage.since.getTime(), probes: outage.probes + 1 },
            `${systemLabel[outage.system]} is back: job worker resumes`);
        },
      },
  });

  const supervisor = createActor(supervisorLogic, {
    input: { throttleMs: options.throttleMs, driftLockMs: options.driftLockMs, faultRetryMs: options.faultRetryMs, probeIntervalMs: options.probeIntervalMs },
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
            reportModelMissing: (_, { error }) => logger.error({ error }, 'protocol worker paused'),
          },
        }),
        { input: { retryMs: options.protocolRetryMs }, systemId: 'protocol', inspect: options.inspect },
      )
    : null;

  supervisor.start();
  protocol?.start();

  function supervisorStatus(): WorkerReport {
    const snapshot = supervisor.getSnapshot();
    const c = snapshot.context;
    let activity: WorkerActivity;
    if (snapshot.status === 'done' || snapshot.matches('stopped')) activity = 'stopping';
    else if (snapshot.matches('faulted') || snapshot.matches('outage')) activity = 'error';
    else if (snapshot.matches('pass')) activity = c.stopRequested ? 'stopping' : c.restartRequested ? 'restartRequested' : 'running';
    else activity = 'idle';
    return {
      activity,
      state: JSON.stringify(snapshot.value).replace(/"/g, ''),
      current_job_id: c.currentJob?.job_id ?? null,
      drift_locked: c.driftLock !== null,
      drift_lock_until: c.driftLock?.until ?? null,
      drift_lock_reason: c.driftLock?.reason ?? null,
      last_drift_check: c.lastDriftCheckAt,
      systems: systemsStatus(c.outage),
      next_retry_at: c.nextRetryAt,
      passes: c.passes,
      jobs_run: c.jobsRun,
      last_error: c.outage ? `${systemLabel[c.outage.system]} is down: ${c.outage.reason}` : c.lastError,
    };
  }

  function protocolStatus(): WorkerReport {
    if (!protocol) {
      return { activity: 'error', detail: 'protocol worker is not configured (no FSO connection)' };
    }
    const snapshot = protocol.getSnapshot();
    const c = snapshot.context;
    let activity: WorkerActivity;
    if (snapshot.status === 'done') activity = 'stopping';
    else if (snapshot.matches('faulted') || snapshot.matches('modelMissing')) activity = 'error';
    else if (snapshot.matches('running') || snapshot.matches('batchDone')) activity = c.stopRequested ? 'stopping' : c.restartRequested ? 'restartRequested' : 'running';
    else activity = 'idle';
    return { activity, copied: c.copied, last_error: c.lastError, fso_model_missing: snapshot.matches('modelMissing') };
  }

  const control: WorkerControl = {
    async status() {
      // with the sync table gone the status still answers: the counts are then unknown (null)
      const [open, pending] = await Promise.all([
        store.countOpenRootJobs().catch(() => null),
        protocol ? store.countProtocolPending().catch(() => null) : Promise.resolve(null),
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
      return { drift_locked: s.drift_locked, last_drift_check: s.last_drift_check, activity: s.activity };
    },
    async drift() {
      const m = await options.drift.measure();
      const drift: Record<string, number | string> = {};
      for (const [source, r] of Object.entries(m.sources)) drift[source] = 'error' in r ? r.error : r.offsetMs;
      return { drift, tolerance: options.toleranceMs, unit: 'millisecond', ok: m.ok, reason: m.reason ?? null, measured_at: m.at };
    },
    jobCreated(_job: JobRow) {
      supervisor.send({ type: 'START' });
      protocol?.send({ type: 'WAKE' });
    },
  };

  const supervisorIdle = (s: ReturnType<typeof supervisor.getSnapshot>) => s.matches('idle') || s.matches('waitingForRetry') || s.matches('locked') || s.status === 'done';
  const protocolIdle = (p: NonNullable<ReturnType<NonNullable<typeof protocol>['getSnapshot']>>) => p.matches('idle') || p.matches('modelMissing') || p.status === 'done';

  const bothIdle = () => supervisorIdle(supervisor.getSnapshot()) && (!protocol || protocolIdle(protocol.getSnapshot()));

  return {
    control,
    supervisor,
    protocol,
    async whenIdle() {
      // one worker may wake the other's work again: settle until both are idle at once
      while (!bothIdle()) {
        await waitFor(supervisor, supervisorIdle);
        if (protocol) await waitFor(protocol, protocolIdle);
      }
    },
    async stop(timeoutMs = 8000) {
      supervisor.send({ type: 'STOP' });
      protocol?.send({ type: 'STOP' });
      const stopped = Promise.all([
        waitFor(supervisor, (s) => s.status === 'done', { timeout: timeoutMs }),
        protocol ? waitFor(protocol, (p) => p.status === 'done', { timeout: timeoutMs }) : null,
      ]);
      const clean = await stopped.then(() => true, () => false);
      supervisor.stop();
      protocol?.stop();
      return clean;
    },
  };
}
