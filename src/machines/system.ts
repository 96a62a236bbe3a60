/**
 * Wires the machines to their implementations: the supervisor (job worker, with job actors as its
 * children) and the protocol worker, provided with the store, the flows, the drift source and the
 * clock, plus the WorkerControl the HTTP routes use. Nothing here decides what a job does.
 */
import { createActor, fromPromise, waitFor, type Actor, type InspectionEvent, type Observer } from 'xstate';
import { systemNow, type DriftSource } from '../adapters/clock/index.ts';
import type { ProtocolCopier } from '../adapters/online/index.ts';
import type { JobRow, SyncTableStore, SystemName } from '../adapters/syncTable/index.ts';
import type { FlowRegistry } from '../flows/registry.ts';
import type { Logger } from '../log.ts';
import { createJobLogic, type RecordLocks } from './jobActors.ts';
import { createPoolMachine, slotId } from './pool.ts';
import type { RetryPolicy } from './retry.ts';
import { DRIFT_CHECK_INTERVAL_MS, PROBE_INTERVAL_MS, supervisorMachine, type GateResult, type ProbeResult, type SystemOutage } from './supervisor.ts';
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
  /** how long a WAKE waits for more ended jobs before the protocol batch (default PROTOCOL_GATHER_MS) */
  protocolGatherMs?: number;
  /** how transiently failed jobs are retried */
  retry?: RetryPolicy;
  /** while a system is down it is probed this often */
  probeIntervalMs?: number;
  /** one cheap call per system that resolves when it is reachable (FS: a SELECT; FSO: a login) */
  probes?: Partial<Record<SystemName, () => Promise<unknown>>>;
  /**
   * Parallel workers (`job_workers`, default 1): with more than one, each slot claims its jobs
   * and locks their records through a claim session of its own (PostgreSQL only, claims.ts).
   */
  parallel?: { workers: number; openClaims(slot: string): SlotClaims };
}

/** A worker slot's claims (ClaimSession): its next job, its records' locks, letting them go. */
export interface SlotClaims extends RecordLocks {
  /** the next job; `runningHere`: the jobs the other slots run, passed over unread */
  claim(at: Date, runningHere: readonly number[]): Promise<JobRow | null>;
  /** lets the ended job's records go, in the next claim's round trip when the slot claims at once */
  releaseSoon(): Promise<void>;
  close(): Promise<void>;
}

type SupervisorActor = Actor<typeof supervisorMachine>;

export interface WorkerSystem {
  control: WorkerControl;
  /** the job worker (the first slot's supervisor when there are several) */
  supervisor: SupervisorActor;
  /** every worker slot's supervisor, in slot order */
  slots(): SupervisorActor[];
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

/** The job worker as one report: what the busiest slot does, with every slot listed. */
function mergeSlots(reports: WorkerReport[]): WorkerReport {
  const slots = reports.map((r, i) => ({
    slot: r.slot ?? slotId(i), activity: r.activity, state: r.state, current_job_id: r.current_job_id, jobs_run: r.jobs_run, last_error: r.last_error,
  }));
  if (reports.length === 1) {
    const { slot: _slot, ...only } = reports[0];
    return { ...only, workers: 1, slots };
  }
  const order: WorkerActivity[] = ['error', 'running', 'restartRequested', 'stopping', 'idle'];
  const activity = reports.every((s) => s.activity === 'stopping')
    ? 'stopping'
    : order.find((a) => reports.some((s) => s.activity === a)) ?? 'idle';
  const systems = (system: SystemName) => reports.map((s) => (s.systems as Record<SystemName, Record<string, unknown>>)[system]).find((x) => x.up === false) ?? { up: true };
  const dates = (key: string) => reports.map((s) => s[key] as Date | null).filter((d): d is Date => d !== null).sort((a, b) => a.getTime() - b.getTime());
  const locked = reports.find((s) => s.drift_locked);
  return {
    activity,
    workers: reports.length,
    current_job_ids: reports.map((s) => s.current_job_id).filter((id) => id !== null),
    drift_locked: locked !== undefined,
    drift_lock_until: locked?.drift_lock_until ?? null,
    drift_lock_reason: locked?.drift_lock_reason ?? null,
    last_drift_check: dates('last_drift_check').at(-1) ?? null,
    systems: { fs: systems('fs'), fso: systems('fso') },
    next_retry_at: dates('next_retry_at')[0] ?? null,
    passes: reports.reduce((n, s) => n + (s.passes as number), 0),
    jobs_run: reports.reduce((n, s) => n + (s.jobs_run as number), 0),
    last_error: reports.map((s) => s.last_error).find((e) => e !== null) ?? null,
    slots,
  };
}

/** a pick starts its job only when the gate's next check is at least this far off */
const GATE_MARGIN_MS = 5_000;

export function createWorkerSystem(options: WorkerSystemOptions): WorkerSystem {
  const { store, logger } = options;
  const now = options.now ?? systemNow;
  const workers = options.parallel?.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`job_workers must be a whole number of at least 1, not ${workers}`);
  const probeIntervalMs = options.probeIntervalMs ?? PROBE_INTERVAL_MS;

  // one drift measurement serves every slot: the slots share the gate's last result
  let lastGate: { at: Date; result: GateResult } | null = null;
  let measuring: Promise<GateResult> | null = null;

  // a single worker's job the pick started (pickSingle), until the job's start takes it
  let startedByPick: JobRow | null = null;
  // the job each slot claimed last, until the slot lets its records go: the others' claims pass over them
  const claimedHere = new Map<SlotClaims, number>();

  const slotLogic = (claims: SlotClaims | null) => supervisorMachine.provide({
      actors: {
        job: createJobLogic({ store, flows: options.flows, now, logger, retry: options.retry, records: claims ?? undefined, takeStarted }),
        pickNextJob: fromPromise(async ({ input }) => {
          const job = claims ? await claimFor(claims) : await pickSingle(input.lastDriftCheckAt, input.forceDriftCheck);
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
          const due = (since: Date | null) => since === null || now().getTime() - since.getTime() >= DRIFT_CHECK_INTERVAL_MS;
          if (!input.force && !due(input.lastCheckAt)) return { checked: false };
          // another slot measured within the interval, or is measuring now: its result holds for this one too
          if (!input.force && lastGate && !due(lastGate.at)) return lastGate.result;
          if (!input.force && measuring) return measuring;
          const measurement = measureDrift().then((result) => {
            if (result.checked) lastGate = { at: result.at, result };
            return result;
          });
          measuring = measurement;
          try {
            return await measurement;
          } finally {
            if (measuring === measurement) measuring = null;
          }
        }),
        throttle: fromPromise(async ({ input }) => {
          if (input.throttleMs <= 0) return;
          const rest = input.throttleMs - (now().getTime() - input.pickedAt.getTime());
          if (rest > 0) await sleep(rest);
        }),
      },
      actions: {
        releaseRecords: () => {
          // a slot that found every open job held may be idle now: the records just let go may free one
          if (claims) claimedHere.delete(claims);
          claims?.releaseSoon()
            .then(() => pool?.send({ type: 'RECORDS_FREED' }))
            .catch((err: Error) => logger.warn({ err: err.message }, 'letting a job\'s records go failed; its claim session is renewed'));
        },
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
            `${systemLabel[outage.system]} is down: job worker paused, probing it every ${probeIntervalMs} ms`);
        },
        reportSystemUp: (_, { outage, at }) => {
          logger.info({ system: outage.system, down_since: outage.since.toISOString(), down_ms: at.getTime() - outage.since.getTime(), probes: outage.probes + 1 },
            `${systemLabel[outage.system]} is back: job worker resumes`);
        },
      },
  });

  /**
   * A single worker's pick. When the drift gate is sure to pass the job (its last check is fresh
   * and no check was asked for), the pick starts the job in the same statement (SPEC §4.2 step 1)
   * and the job's own start takes that row: one round trip fewer between an announcement and
   * its job. Should that statement fail, a plain pick follows and the job's start reports why.
   * Should STOP or FORCE_DRIFT_CHECK arrive in the moment between this pick and the gate, the job
   * stays inprogress, started once more than it ran, and the next pass resumes it first.
   */
  async function pickSingle(lastDriftCheckAt: Date | null, forceDriftCheck: boolean): Promise<JobRow | null> {
    startedByPick = null;
    const at = now();
    const gatePasses = !forceDriftCheck && lastDriftCheckAt !== null
      && at.getTime() - lastDriftCheckAt.getTime() < DRIFT_CHECK_INTERVAL_MS - GATE_MARGIN_MS;
    if (gatePasses) {
      try {
        startedByPick = await store.pickAndStartJob(at);
        return startedByPick;
      } catch (err) {
        logger.debug({ err: message(err) }, 'picking and starting in one statement failed; picking alone');
      }
    }
    return store.pickNextJob(at);
  }

  /** the row of a job the pick started, once, for that job's start */
  function takeStarted(jobId: number): JobRow | null {
    const row = startedByPick?.job_id === jobId ? startedByPick : null;
    if (row) startedByPick = null;
    return row;
  }

  async function claimFor(claims: SlotClaims): Promise<JobRow | null> {
    claimedHere.delete(claims);
    const job = await claims.claim(now(), [...claimedHere.values()]);
    if (job) claimedHere.set(claims, job.job_id);
    return job;
  }

  async function measureDrift(): Promise<GateResult> {
    try {
      const m = await options.drift.measure();
      if (m.ok) return { checked: true, ok: true, at: m.at, summary: JSON.stringify(m.sources) };
      return { checked: true, ok: false, at: m.at, reason: m.reason ?? 'drift check failed' };
    } catch (err) {
      // a measurement that cannot be made keeps the gate closed, like a drift too large
      return { checked: true, ok: false, at: now(), reason: `drift check failed: ${message(err)}` };
    }
  }

  const input = { throttleMs: options.throttleMs, driftLockMs: options.driftLockMs, faultRetryMs: options.faultRetryMs, probeIntervalMs: options.probeIntervalMs };
  const claimSessions = options.parallel && workers > 1
    ? Array.from({ length: workers }, (_, i) => options.parallel!.openClaims(slotId(i)))
    : [];
  // one worker: the supervisor is the root actor, as it always was; several: a pool of slots
  const pool = claimSessions.length === 0
    ? null
    : createActor(createPoolMachine(claimSessions.map(slotLogic), input), { systemId: 'workers', inspect: options.inspect });
  const root = pool ?? createActor(slotLogic(null), { input, systemId: 'supervisor', inspect: options.inspect });
  const slots = (): SupervisorActor[] => claimSessions.length === 0
    ? [root as SupervisorActor]
    : claimSessions.map((_, i) => root.getSnapshot().children[slotId(i)] as SupervisorActor | undefined).filter((s) => s !== undefined);

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
        { input: { retryMs: options.protocolRetryMs, gatherMs: options.protocolGatherMs }, systemId: 'protocol', inspect: options.inspect },
      )
    : null;

  root.start();
  protocol?.start();
  const supervisor = slots()[0];

  function slotStatus(slot: SupervisorActor, index: number): WorkerReport {
    const snapshot = slot.getSnapshot();
    const c = snapshot.context;
    let activity: WorkerActivity;
    if (snapshot.status === 'done' || snapshot.matches('stopped')) activity = 'stopping';
    else if (snapshot.matches('faulted') || snapshot.matches('outage')) activity = 'error';
    else if (snapshot.matches('pass')) activity = c.stopRequested ? 'stopping' : c.restartRequested ? 'restartRequested' : 'running';
    else activity = 'idle';
    return {
      slot: slotId(index),
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

  /** after a stop a slot's actor is gone; it reports as stopping */
  function supervisorStatus(): WorkerReport {
    const live = slots();
    if (live.length === 0) return mergeSlots([{ activity: 'stopping', state: 'stopped', current_job_id: null, drift_locked: false, systems: systemsStatus(null), passes: 0, jobs_run: 0, last_error: null }]);
    return mergeSlots(live.map(slotStatus));
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
    // a batch starts in a moment, with the jobs that end meanwhile
    else if (snapshot.matches('gathering')) activity = 'running';
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
      root.send({ type: 'START' });
      return supervisorStatus();
    },
    processProtocol() {
      protocol?.send({ type: 'START' });
      return protocolStatus();
    },
    async forceDriftCheck() {
      root.send({ type: 'FORCE_DRIFT_CHECK' });
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
      root.send({ type: 'START' });
      protocol?.send({ type: 'WAKE' });
    },
  };

  const supervisorIdle = (s: ReturnType<SupervisorActor['getSnapshot']>) => s.matches('idle') || s.matches('waitingForRetry') || s.matches('locked') || s.status === 'done';
  const protocolIdle = (p: NonNullable<ReturnType<NonNullable<typeof protocol>['getSnapshot']>>) => p.matches('idle') || p.matches('modelMissing') || p.status === 'done';

  const allIdle = () => slots().every((slot) => supervisorIdle(slot.getSnapshot())) && (!protocol || protocolIdle(protocol.getSnapshot()));

  return {
    control,
    supervisor,
    slots,
    protocol,
    async whenIdle() {
      // one worker may wake another's work again: settle until all are idle at once
      while (!allIdle()) {
        for (const slot of slots()) await waitFor(slot, supervisorIdle);
        if (protocol) await waitFor(protocol, protocolIdle);
      }
    },
    async stop(timeoutMs = 8000) {
      root.send({ type: 'STOP' });
      protocol?.send({ type: 'STOP' });
      const stopped = Promise.all([
        waitFor(root, (s) => s.status === 'done', { timeout: timeoutMs }),
        protocol ? waitFor(protocol, (p) => p.status === 'done', { timeout: timeoutMs }) : null,
      ]);
      const clean = await stopped.then(() => true, () => false);
      root.stop();
      protocol?.stop();
      await Promise.all(claimSessions.map((c) => c.close().catch(() => undefined)));
      return clean;
    },
  };
}
