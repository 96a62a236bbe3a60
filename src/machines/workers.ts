/**
 * What the outside (the HTTP routes, the service) may ask of the worker actors. The machines layer
 * owns these types; server/ maps a worker's activity to the original's status codes 0–4.
 */
import type { JobRow } from '../adapters/syncTable/index.ts';

/** What a worker is doing, in the order of the original's status codes. */
export type WorkerActivity = 'idle' | 'running' | 'restartRequested' | 'stopping' | 'error';

export interface WorkerReport {
  activity: WorkerActivity;
  [detail: string]: unknown;
}

export interface WorkersReport {
  job_worker: WorkerReport;
  protocol_worker: WorkerReport;
  [detail: string]: unknown;
}

export interface WorkerControl {
  status(): Promise<WorkersReport>;
  processJobs(): WorkerReport;
  processProtocol(): WorkerReport;
  /** lifts a drift lock; the answer reports the job worker with its drift fields */
  forceDriftCheck(): Promise<WorkerReport>;
  drift(): Promise<Record<string, unknown>>;
  /** a job was stored: wake the workers */
  jobCreated(job: JobRow): void;
}
