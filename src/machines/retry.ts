/**
 * Retrying jobs that failed for a transient reason (an outage, a timeout, a deadlock), as later
 * sosync did: the job ends in `error_retry` with its next attempt time, the delay doubles from
 * `baseMs` up to `maxMs`, and the attempt that reaches `maxAttempts` ends the job in `error`.
 *
 * Attempts and the run counter (SPEC §4.2 step 2) count different things: `job_run_count` counts
 * the starts of one attempt and stops a job that requeues itself forever (source keeps changing,
 * children never finish); `job_retry_count` counts the attempts. A retry starts a fresh attempt, so
 * it resets `job_run_count` to 0 — otherwise a job failing transiently four times would hit the
 * run counter and end in `run_counter` while the system was merely down.
 */
export interface RetryPolicy {
  baseMs: number;
  maxMs: number;
  maxAttempts: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { baseMs: 10_000, maxMs: 10 * 60_000, maxAttempts: 10 };

/** The wait before the next attempt after the `failures`th transient failure (1-based). */
export function retryDelayMs(policy: RetryPolicy, failures: number): number {
  return Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, failures - 1));
}
