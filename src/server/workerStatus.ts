/**
 * The original's worker status codes, as existing clients read them from /service/status:
 * 0 Idle, 1 Running, 2 RunningRestartRequested, 3 Stopping, 4 Error. The machines report an
 * activity; this is the one place that turns it into a code and its text.
 */
import type { WorkerActivity, WorkerReport, WorkersReport } from '../machines/workers.ts';

export const workerStatusText = ['Idle', 'Running', 'RunningRestartRequested', 'Stopping', 'Error'] as const;
export type WorkerStatusCode = 0 | 1 | 2 | 3 | 4;

const statusCodeOf: Record<WorkerActivity, WorkerStatusCode> = {
  idle: 0,
  running: 1,
  restartRequested: 2,
  stopping: 3,
  error: 4,
};

export interface ServiceStatus {
  status: WorkerStatusCode;
  status_text: (typeof workerStatusText)[number];
  [detail: string]: unknown;
}

export function serviceStatus(report: WorkerReport): ServiceStatus {
  const { activity, ...detail } = report;
  const status = statusCodeOf[activity];
  // parallel workers: each slot with its own code
  if (Array.isArray(detail.slots)) detail.slots = (detail.slots as WorkerReport[]).map(serviceStatus);
  return { status, status_text: workerStatusText[status], ...detail };
}

export function workersStatus(report: WorkersReport): Record<string, unknown> {
  return { ...report, job_worker: serviceStatus(report.job_worker), protocol_worker: serviceStatus(report.protocol_worker) };
}
