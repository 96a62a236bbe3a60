/**
 * The tables of the two worker machines. Their paths are event sequences over one long-lived actor,
 * so each row adds one step to the scenario: `prepare` runs before the step that leads into the
 * row's source state (an actor's outcome must be set up before the actor starts), `act` runs once
 * the real actor is in the row's source state (an outside event through the HTTP API, or what a
 * delayed retry needs).
 */
import type { AnyMachineSnapshot } from 'xstate';
import { supervisorMachine } from '../../src/machines/supervisor.ts';
import { protocolMachine } from '../../src/machines/protocol.ts';
import { OdooException } from '../../sandbox/online/faults.ts';
import type { EndToEnd } from '../support/endToEnd.ts';
import type { CaseRow, MachineModel } from './model.ts';

export interface WorkerStep {
  prepare?: (e: EndToEnd) => Promise<void>;
  /** prepare at the last step the test controls (an act), for outcomes that follow others at once */
  early?: boolean;
  act?: (e: EndToEnd) => Promise<void>;
}
export interface WorkerScenario { steps: WorkerStep[] }

type Snap = AnyMachineSnapshot & { context: any };
type Row = CaseRow<WorkerScenario, Snap>;

const step = (s: WorkerStep) => (sc: WorkerScenario) => { sc.steps.push(s); };
const T = new Date('2026-05-01T10:00:00Z');
const get = (path: string) => async (e: EndToEnd) => { await e.get(path); };

const fault = (check: string) => async (e: EndToEnd) => {
  await e.service.table.db.query(`ALTER TABLE sync_table ADD CONSTRAINT mbt_fault CHECK (${check}) NOT VALID`);
};
/** every fault a worker step may have set, undone */
export async function clearWorkerFaults(e: EndToEnd): Promise<void> {
  const db = e.service.table.db;
  await db.query('ALTER TABLE IF EXISTS sync_table_away RENAME TO sync_table');
  await db.query('ALTER TABLE sync_table DROP CONSTRAINT IF EXISTS mbt_fault');
  e.ntp.setSilent(false);
  e.fso.faults.onCall(null);
  await e.fso.faults.refuseConnections(false);
}
const healthy = clearWorkerFaults;
const ntpAnswers = async (e: EndToEnd) => e.ntp.setSilent(false);
/** the sync table works again (the slow FSO of a queued job stays) */
const tableBack = async (e: EndToEnd) => {
  const db = e.service.table.db;
  await db.query('ALTER TABLE IF EXISTS sync_table_away RENAME TO sync_table');
  await db.query('ALTER TABLE sync_table DROP CONSTRAINT IF EXISTS mbt_fault');
  e.ntp.setSilent(false);
};
/**
 * STOP as the service sends it when it shuts down (SPEC §4.7; `workers.stop()` sends it, then
 * waits), to one worker so that the other's path stays its own. It ends the worker for good, so a
 * path with STOP runs on a service of its own (machinePaths.test.ts), with a throttle long enough to
 * be caught in.
 */
export const STOP_THROTTLE_MS = 1500;
export const stopsTheWorker = (path: { rows: string[] }) => path.rows.some((r) => r.startsWith('STOP('));
const stopSupervisor = async (e: EndToEnd) => { e.service.workers()!.supervisor.send({ type: 'STOP' }); };
const stopProtocol = async (e: EndToEnd) => { e.service.workers()!.protocol!.send({ type: 'STOP' }); };
/** WAKE as the job worker sends it when a job ends (system.ts, reportOutcome) */
const wakeProtocol = (e: EndToEnd) => { e.service.workers()!.protocol!.send({ type: 'WAKE' }); };

/** outside events are sent only where the worker stays long enough for them to arrive there */
const settledIn = (...states: string[]) => (s: Snap) => states.some((v) => s.matches(v));

/** Root jobs in error_retry (a job of a path that found a system down, or one a row put there). */
async function retryRows(e: EndToEnd): Promise<number[]> {
  const rows = await e.service.table.db.query<{ job_id: number }>(`SELECT job_id FROM sync_table WHERE parent_job_id IS NULL AND job_state = 'error_retry'`);
  return rows.rows.map((r) => r.job_id);
}

/** Each slow job its own record: a later job of the same record would close the earlier one (SPEC §4.2 step 8). */
let slowRecord = 876_543;

/**
 * A root job that takes a moment (FSO answers its reads slowly), so that events can reach a pass.
 * A job waiting in error_retry is made due instead: it is the one the next pick finds.
 */
async function queueSlowJob(e: EndToEnd): Promise<void> {
  e.fso.faults.onCall(async (call) => {
    if (call.model === 'res.company') await new Promise((resolve) => setTimeout(resolve, 400));
  });
  const waiting = await retryRows(e);
  if (waiting.length > 0) {
    await e.service.table.db.query(`UPDATE sync_table SET job_retry_at = $1 WHERE job_id = ANY($2::int[])`, [new Date(Date.now() - 1000), waiting]);
    return;
  }
  await e.service.table.store.createJob({ job_date: new Date(), job_source_system: 'fso', job_source_model: 'res.company', job_source_record_id: slowRecord++, job_source_sosync_write_date: new Date() });
}

/** One root job in error_retry, due in a few seconds (long enough to reach it with START). */
async function queueRetryLater(e: EndToEnd): Promise<void> {
  await tableBack(e);
  const job = await e.service.table.store.createJob({ job_date: new Date(), job_source_system: 'fso', job_source_model: 'res.company', job_source_record_id: slowRecord++, job_source_sosync_write_date: new Date() });
  await e.service.table.store.updateJob(job.job_id, { job_state: 'error_retry', job_retry_at: new Date(Date.now() + 4000), job_error_code: 'sync_source', job_error_text: 'model-based test: waits for its retry' });
}

/** What a drift lock, a fault or a system outage left open or waiting is closed, as an operator would. */
async function closeOpenJobs(e: EndToEnd): Promise<void> {
  await e.service.table.db.query(`UPDATE sync_table SET job_state = 'skipped' WHERE job_state IN ('new', 'inprogress', 'error_retry')`);
}

const supervisorRows: Row[] = [
  // (after STOP nothing but the job's end matters)
  { on: 'START', case: 'processJobs', when: (s) => !s.context.stopRequested && settledIn('idle', 'locked', 'faulted', 'pass.running', 'waitingForRetry', 'outage.waiting')(s), arrange: step({ act: get('/service/processjobs') }) },
  {
    // once per way of stopping, where the worker stays long enough (a forced drift check waits for
    // NTP, which is silent for it); locked, faulted and the others stop by the same transition as idle
    on: 'STOP', case: 'serviceStops',
    when: (s) => !s.context.restartRequested && (s.matches('pass.gate') ? s.context.forceDriftCheck
      : !s.context.forceDriftCheck && (settledIn('pass.running', 'pass.throttling')(s) || (s.matches('idle') && s.context.jobsRun === 0))),
    arrange: step({ prepare: async (e) => e.ntp.setSilent(true), early: true, act: stopSupervisor }),
  },
  { on: 'FORCE_DRIFT_CHECK', case: 'forceDriftCheck', when: (s) => !s.context.stopRequested && settledIn('idle', 'locked', 'pass.running')(s), arrange: step({ act: get('/service/forcedriftcheck') }) },
  // a pick that finds out needs a sync table that works
  { on: 'done:pickNextJob', case: 'found', output: () => ({ job: { job_id: 1 }, at: T }), arrange: step({ prepare: async (e) => { await tableBack(e); await queueSlowJob(e); }, early: true }) },
  {
    on: 'done:pickNextJob', case: 'noneOpen', output: () => ({ job: null, at: T }),
    // a job a drift lock, a fault or an outage left open or waiting is closed, so that none is open
    arrange: step({ prepare: async (e) => { await tableBack(e); await closeOpenJobs(e); } }),
  },
  {
    // prepared at the last act: the pick that follows a job's end comes at once
    // not with a restart requested: that pass would pick at once, before the retry is due (restarts are covered without it)
    on: 'done:pickNextJob', case: 'noneOpenRetryLater', when: (s) => !s.context.restartRequested, output: () => ({ job: null, at: T, nextRetryAt: new Date(T.getTime() + 4000) }),
    arrange: step({ prepare: queueRetryLater, early: true }),
  },
  {
    // only before the path's first job: after one, picking follows at once and leaves no moment to break the table
    on: 'error:pickNextJob', case: 'syncTableGone', when: (s) => s.context.jobsRun === 0,
    arrange: step({ prepare: async (e) => { await e.service.table.db.query('ALTER TABLE sync_table RENAME TO sync_table_away'); } }),
  },
  { on: 'done:checkDrift', case: 'notDue', when: (s) => !s.context.forceDriftCheck, output: () => ({ checked: false }), arrange: step({ prepare: ntpAnswers }) },
  { on: 'done:checkDrift', case: 'withinTolerance', when: (s) => s.context.forceDriftCheck, output: () => ({ checked: true, ok: true, at: T, summary: '{}' }), arrange: step({ prepare: ntpAnswers }) },
  {
    on: 'done:checkDrift', case: 'noNtpAnswer', when: (s) => s.context.forceDriftCheck, output: () => ({ checked: true, ok: false, at: T, reason: 'no NTP answer' }),
    // silenced at the last act: with nothing for the test to wait on between, a busy machine's
    // worker may already be measuring by the time the test sees the pick
    arrange: step({ prepare: async (e) => e.ntp.setSilent(true), early: true }),
  },
  { on: 'done:job', case: 'ended', output: () => ({ jobId: 1, outcome: 'error' }), arrange: step({}) },
  { on: 'done:job', case: 'notRecorded', output: () => ({ jobId: 1, outcome: 'aborted' }), arrange: step({ prepare: fault(`job_state NOT IN ('done', 'error')`) }) },
  // FSO refuses connections before the pass starts: the job finds it down and opens the breaker
  {
    on: 'done:job', case: 'fsoDown', output: () => ({ jobId: 1, outcome: 'error', downSystem: 'fso', endedAt: T }),
    arrange: step({ prepare: async (e) => { await e.fso.faults.refuseConnections(true); }, early: true }),
  },
  // the job that found FSO down waits in error_retry; it is closed while the worker waits to probe,
  // since the pick that follows the probe comes at once
  {
    on: 'done:probeSystem', case: 'fsoBack', output: () => ({ up: true, at: T }),
    arrange: step({ prepare: async (e) => { await healthy(e); await e.service.table.db.query(`UPDATE sync_table SET job_state = 'skipped' WHERE job_state = 'error_retry'`); } }),
  },
  { on: 'done:probeSystem', case: 'stillDown', output: () => ({ up: false, at: T, reason: 'connection refused' }), arrange: step({}) },
  { on: 'done:throttle', case: 'waited', arrange: step({}) },
  // delays: what makes the retry work is put right once the worker waits for it
  { on: 'after:driftLock', case: 'lockExpired', arrange: step({ act: tableBack }) },
  { on: 'after:faultRetry', case: 'retried', arrange: step({ act: tableBack }) },
  { on: 'after:probeInterval', case: 'probed', arrange: step({ act: async () => {} }) },
  // an act that does nothing: what the next pick needs is prepared here, once the worker waits
  { on: 'after:retryDue', case: 'due', arrange: step({ act: async () => {} }) },
];

export const supervisorModel: MachineModel<WorkerScenario, Snap> = {
  machine: supervisorMachine,
  input: { throttleMs: 0 },
  rows: supervisorRows,
  abstract: (s) => [s.context.restartRequested, s.context.stopRequested, s.context.forceDriftCheck, s.context.driftLock !== null, s.context.jobsRun === 0, s.context.retryWaitMs !== null, s.context.outage !== null],
  edgeContext: (s) => [s.context.restartRequested, s.context.forceDriftCheck],
  // every path goes back to idle (a lock or a fault is followed until the worker works again) or stops
  rests: (s) => s.matches('idle') || s.status === 'done',
  unreachable: {
    'pass.gate --error:checkDrift [else]--> faulted': 'the drift actor turns a failed measurement into a closed gate; it does not throw',
    'pass.running --error:job [else]--> faulted': 'the job machine ends with an output even when a step fails',
    'pass.throttling --error:throttle [else]--> pass.picking': 'the throttle only sleeps',
    'outage.probing --error:probeSystem [else]--> outage.waiting': 'the probe actor turns a failed call into up: false; it does not throw',
    'pass.picking --STOP [else]--> stopped': 'picking is one indexed query; nothing outside holds it long enough for STOP to arrive there',
    'pass.passEnd --always [stopRequested]--> stopped':
      'stopRequested is set only while a job runs, and a job that ends with it set stops the worker at once',
  },
};

async function pendingRows(e: EndToEnd, count: number): Promise<void> {
  const store = e.service.table.store;
  for (let i = 0; i < count; i++) {
    const job = await store.createJob({ job_date: new Date(), job_source_system: 'fs', job_source_model: 'dbo.xBPKAccount', job_source_record_id: 900_000 + i });
    await store.updateJob(job.job_id, { job_state: 'done', job_end: new Date(), job_to_fso_can_sync: true });
  }
}

/** FSO answers its first sosync.job call only when the test lets it, so that START can reach a running batch. */
function holdFirstCopy(e: EndToEnd): { release: () => void } {
  let release = () => {};
  const held = new Promise<void>((resolve) => { release = resolve; });
  let first = true;
  e.fso.faults.onCall(async (call) => {
    if (call.model === 'sosync.job' && first) {
      first = false;
      await held;
    }
  });
  return { release: () => release() };
}
let holding: { release: () => void } | null = null;

const morePending = (s: Snap) => s.context.lastBatch?.copied > 0 && s.context.lastBatch?.remaining > 0;

const protocolRows: Row[] = [
  { on: 'STOP', case: 'serviceStops', when: (s) => s.matches('idle') && !s.context.restartRequested, arrange: step({ act: stopProtocol }) },
  {
    // a batch held at FSO's first answer: STOP is noted, the batch ends, then the worker stops
    on: 'STOP', case: 'duringABatch', when: (s) => s.matches('running') && !s.context.restartRequested && !s.context.stopRequested,
    arrange: step({
      prepare: async (e) => { await pendingRows(e, 1); holding = holdFirstCopy(e); },
      act: async (e) => { await stopProtocol(e); holding?.release(); },
    }),
  },
  { on: 'START', case: 'processProtocol', when: settledIn('idle', 'faulted', 'modelMissing'), arrange: step({ act: get('/service/processprotocol') }) },
  {
    // one batch held at a time: not after STOP, which holds one too
    on: 'START', case: 'duringABatch', when: (s) => s.matches('running') && !s.context.stopRequested,
    arrange: step({
      prepare: async (e) => { await pendingRows(e, 1); holding = holdFirstCopy(e); },
      act: async (e) => { await e.get('/service/processprotocol'); holding?.release(); },
    }),
  },
  {
    // a job that ends wakes the protocol worker (SPEC §5), as the job worker sends it: the batch
    // starts once the jobs ending meanwhile could join it
    on: 'WAKE', case: 'jobEnds', when: settledIn('idle'),
    arrange: step({ prepare: async (e) => { await pendingRows(e, 1); }, act: async (e) => { wakeProtocol(e); } }),
  },
  { on: 'START', case: 'processProtocolWhileGathering', when: settledIn('gathering'), arrange: step({ act: get('/service/processprotocol') }) },
  { on: 'after:gather', case: 'gathered', arrange: step({}) },
  {
    // during a batch a job that ends asks for another gathering after it
    on: 'WAKE', case: 'jobEndsDuringABatch', when: (s) => s.matches('running') && !s.context.stopRequested,
    arrange: step({
      prepare: async (e) => { await pendingRows(e, 1); holding = holdFirstCopy(e); },
      act: async (e) => { wakeProtocol(e); holding?.release(); },
    }),
  },
  {
    on: 'done:copyBatch', case: 'copied', output: () => ({ copied: 1, failed: 0, remaining: 0 }),
    // a row held in a running batch is the one it copies
    arrange: step({ prepare: async (e) => { await healthy(e); if ((await e.service.table.store.countProtocolPending()) === 0) await pendingRows(e, 1); } }),
  },
  { on: 'done:copyBatch', case: 'nothingPending', output: () => ({ copied: 0, failed: 0, remaining: 0 }), arrange: step({ prepare: healthy }) },
  {
    on: 'done:copyBatch', case: 'morePending', output: () => ({ copied: 100, failed: 0, remaining: 1 }),
    arrange: step({ prepare: async (e) => { await healthy(e); await pendingRows(e, 101); } }),
  },
  // the failures below replace FSO's call hook, which a batch held for START still waits in
  {
    on: 'done:copyBatch', case: 'fsoRefusesRows', when: (s) => !morePending(s) && !s.context.restartRequested && !s.context.wakeRequested, output: () => ({ copied: 0, failed: 1, remaining: 1, lastError: 'refused' }),
    arrange: step({
      prepare: async (e) => {
        await pendingRows(e, 1);
        e.fso.faults.onCall((call) => { if (call.model === 'sosync.job') throw new Error('FSO: sosync.job refused (model-based test)'); });
      },
    }),
  },
  {
    on: 'done:copyBatch', case: 'fsoDown', when: (s) => !morePending(s) && !s.context.restartRequested && !s.context.wakeRequested, output: () => ({ copied: 0, failed: 1, remaining: 1, lastError: 'down' }),
    arrange: step({ prepare: async (e) => { await pendingRows(e, 1); await e.fso.faults.refuseConnections(true); } }),
  },
  {
    // FSO answers as Odoo does for a model it does not have
    on: 'done:copyBatch', case: 'sosyncJobMissing', when: (s) => !morePending(s) && !s.context.restartRequested && !s.context.wakeRequested,
    output: () => ({ copied: 0, failed: 1, remaining: 1, modelMissing: true, lastError: 'FSO has no model sosync.job' }),
    arrange: step({
      prepare: async (e) => {
        await pendingRows(e, 1);
        e.fso.faults.onCall((call) => { if (call.model === 'sosync.job') throw new OdooException(`Object ${call.model} doesn't exist`, 'KeyError'); });
      },
    }),
  },
  {
    on: 'error:copyBatch', case: 'syncTableGone', when: (s) => !morePending(s) && !s.context.restartRequested && !s.context.wakeRequested,
    arrange: step({ prepare: async (e) => { await e.service.table.db.query('ALTER TABLE sync_table RENAME TO sync_table_away'); } }),
  },
  { on: 'after:retry', case: 'retried', arrange: step({ act: healthy }) },
];

export const protocolModel: MachineModel<WorkerScenario, Snap> = {
  machine: protocolMachine,
  input: {},
  rows: protocolRows,
  abstract: (s) => [s.context.restartRequested, s.context.wakeRequested, s.context.stopRequested, morePending(s)],
  edgeContext: (s) => [s.context.restartRequested, s.context.wakeRequested],
  // every path goes back to idle (FSO down is followed until it is back) or stops
  rests: (s) => s.matches('idle') || s.status === 'done',
};

