/**
 * GET /metrics in Prometheus text format (prom-client). Counters and histograms are fed by hooks
 * (job ended, FS/FSO call, drift measured); gauges are refreshed per scrape from the worker status
 * and one query over the open jobs only — never a scan of the finished history.
 */
import type { Request, Response } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { systemNow } from '../adapters/clock/index.ts';
import type { SyncTableStore } from '../adapters/syncTable/index.ts';
import type { ObservedCall } from '../adapters/callObserver.ts';
import type { WorkerControl } from '../machines/workers.ts';
import { serviceStatus } from './workerStatus.ts';

export interface EndedJob {
  model: string;
  /** done, error, requeued or aborted */
  outcome: string;
  seconds: number;
}

export interface DriftReading {
  sources: Record<string, { offsetMs: number } | { error: string }>;
  ok: boolean;
}

export interface MetricsSources {
  store: Pick<SyncTableStore, 'openJobStatistics'>;
  workers: Pick<WorkerControl, 'status'>;
  /**
   * Circuit state per system (0 closed, 1 half open, 2 open) once the clients have circuit
   * breakers; the gauge sosync_circuit_state is registered only when this is given.
   */
  circuits?: () => Record<string, number>;
  now?: () => Date;
}

export interface Metrics {
  registry: Registry;
  jobEnded(job: EndedJob): void;
  callObserved(call: ObservedCall): void;
  driftMeasured(reading: DriftReading): void;
  /** the express handler of GET /metrics */
  route(req: Request, res: Response): Promise<void>;
}

const callBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const jobBuckets = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/**
 * How often the default metrics sample the event loop's delay, ms. node's histogram records the
 * time between two samples, so each nodejs_eventloop_lag_* figure is this interval plus the delay.
 */
export const EVENT_LOOP_RESOLUTION_MS = 10;

export function createMetrics(sources: MetricsSources): Metrics {
  const registry = new Registry();
  const now = sources.now ?? systemNow;
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_RESOLUTION_MS });
  const registers = [registry];

  const jobs = new Gauge({ name: 'sosync_jobs', help: 'Jobs in an open state (new, inprogress, error_retry), by state and model', labelNames: ['state', 'model'], registers });
  const finished = new Counter({ name: 'sosync_jobs_finished_total', help: 'Job runs ended since start, by model and outcome', labelNames: ['model', 'outcome'], registers });
  const duration = new Histogram({ name: 'sosync_job_duration_seconds', help: 'Wall time of one job run, by model and outcome', labelNames: ['model', 'outcome'], buckets: jobBuckets, registers });
  const queue = new Gauge({ name: 'sosync_queue_length', help: 'Open root jobs waiting for or in the job worker', registers });
  const oldest = new Gauge({ name: 'sosync_oldest_open_job_age_seconds', help: 'Age of the oldest open root job (since job_fetched); 0 when none', registers });
  const pending = new Gauge({ name: 'sosync_protocol_pending_rows', help: 'Job rows waiting to be copied to FSO', registers });
  const worker = new Gauge({ name: 'sosync_worker_status', help: 'Worker status: 0 Idle, 1 Running, 2 RunningRestartRequested, 3 Stopping, 4 Error', labelNames: ['worker'], registers });
  const driftLocked = new Gauge({ name: 'sosync_drift_locked', help: '1 while the time drift gate holds synchronisation', registers });
  const drift = new Gauge({ name: 'sosync_drift_milliseconds', help: 'Clock offset per source at the last drift measurement', labelNames: ['source'], registers });
  const driftOk = new Gauge({ name: 'sosync_drift_ok', help: '1 when the last drift measurement was within tolerance', registers });
  const callSeconds = new Histogram({ name: 'sosync_system_call_duration_seconds', help: 'Duration of FS and FSO client calls, by system and operation', labelNames: ['system', 'operation'], buckets: callBuckets, registers });
  const callErrors = new Counter({ name: 'sosync_system_call_errors_total', help: 'Failed FS and FSO client calls, by system, operation and error class', labelNames: ['system', 'operation', 'error'], registers });
  const circuit = sources.circuits
    ? new Gauge({ name: 'sosync_circuit_state', help: 'Circuit breaker per system: 0 closed, 1 half open, 2 open', labelNames: ['system'], registers })
    : null;

  async function refresh(): Promise<void> {
    const [status, open] = await Promise.all([sources.workers.status(), sources.store.openJobStatistics()]);
    jobs.reset();
    for (const { state, model, n } of open.counts) jobs.set({ state, model }, n);
    queue.set(Number(status.job_worker.open_jobs ?? 0));
    oldest.set(open.oldestOpenFetched ? Math.max(0, (now().getTime() - open.oldestOpenFetched.getTime()) / 1000) : 0);
    pending.set(Number(status.protocol_worker.pending_rows ?? 0));
    worker.set({ worker: 'job' }, serviceStatus(status.job_worker).status);
    worker.set({ worker: 'protocol' }, serviceStatus(status.protocol_worker).status);
    driftLocked.set(status.job_worker.drift_locked ? 1 : 0);
    if (circuit && sources.circuits) {
      for (const [system, state] of Object.entries(sources.circuits())) circuit.set({ system }, state);
    }
  }

  return {
    registry,
    jobEnded({ model, outcome, seconds }) {
      finished.inc({ model, outcome });
      duration.observe({ model, outcome }, seconds);
    },
    callObserved({ system, operation, seconds, error }) {
      callSeconds.observe({ system, operation }, seconds);
      if (error) callErrors.inc({ system, operation, error });
    },
    driftMeasured({ sources: measured, ok }) {
      drift.reset();
      for (const [source, reading] of Object.entries(measured)) {
        if ('offsetMs' in reading) drift.set({ source }, reading.offsetMs);
      }
      driftOk.set(ok ? 1 : 0);
    },
    async route(_req, res) {
      await refresh();
      res.type(registry.contentType).send(await registry.metrics());
    },
  };
}
