/**
 * How a failure of an outside system is to be treated, decided once where the failure is known:
 * in the adapter's error types. The job machine and the supervisor read these traits and never
 * look at messages.
 *
 * - `transient`: trying the same call again later may succeed (refused/reset connection, timeout,
 *   HTTP 5xx, deadlock, a login refused while the system restarts). Everything else is a data or
 *   programming error that will fail again the same way.
 * - `unavailable`: the system itself is not there; the worker pauses instead of failing job after job.
 * - `timeout`: a configured per-call timeout was hit (job_error_code `timeout`).
 */
export type FailingSystem = 'fs' | 'fso';

export interface FailureTraits {
  readonly system: FailingSystem;
  readonly transient: boolean;
  readonly unavailable: boolean;
  readonly timeout: boolean;
}

function hasTraits(value: unknown): value is FailureTraits {
  const v = value as Partial<FailureTraits> | null;
  return typeof v === 'object' && v !== null && (v.system === 'fs' || v.system === 'fso') && typeof v.transient === 'boolean';
}

/**
 * The traits of the first adapter error in `error`'s cause chain (flows and actors wrap adapter
 * errors with context), or null when no adapter error is in it.
 */
export function failureTraits(error: unknown): FailureTraits | null {
  const seen = new Set<unknown>();
  for (let e = error; e !== undefined && e !== null && !seen.has(e); e = (e as { cause?: unknown }).cause) {
    seen.add(e);
    if (hasTraits(e)) return { system: e.system, transient: e.transient, unavailable: e.unavailable, timeout: e.timeout };
  }
  return null;
}
