/**
 * The check parallel workers are held to, from the sync table alone: no record is in two running
 * jobs at once. A job's run is job_start–job_end of a job that ran to its end (`done`; a job closed
 * as superseded gets the closing time as its end); when it waited for a record another job held,
 * its job_log says when it had them ("had them at …"), and its run starts then. A child job runs
 * inside its parent, on the parent's records, on purpose.
 */
import type { JobRow } from '../../src/adapters/syncTable/index.ts';

type RunFacts = Pick<JobRow, 'job_id' | 'parent_job_id' | 'job_state' | 'job_start' | 'job_end' | 'job_log'
  | 'job_source_system' | 'job_source_model' | 'job_source_record_id'
  | 'sync_source_system' | 'sync_source_model' | 'sync_source_record_id'
  | 'sync_target_system' | 'sync_target_model' | 'sync_target_record_id'>;

/** the records a job touched, as system:model:id (announced, and its sync's source and target) */
export function recordsOf(job: RunFacts): string[] {
  const keys = [`${job.job_source_system}:${job.job_source_model}:${job.job_source_record_id}`];
  if (job.sync_source_record_id !== null) keys.push(`${job.sync_source_system}:${job.sync_source_model}:${job.sync_source_record_id}`);
  if (job.sync_target_record_id !== null) keys.push(`${job.sync_target_system}:${job.sync_target_model}:${job.sync_target_record_id}`);
  return [...new Set(keys)];
}

const HAD_THEM = /had them at (\S+?), then read them/;

/** when the job held every record it needed: job_start, or the end of its wait */
export function runStart(job: RunFacts): Date {
  const had = HAD_THEM.exec(job.job_log ?? '');
  return had ? new Date(had[1]) : job.job_start!;
}

export interface Overlaps {
  /** jobs that ran at the same time on a record they share */
  clashes: string[];
  /** pairs of jobs on different records that ran at the same time (parallelism happened) */
  sideBySide: number;
}

export function overlaps(rows: RunFacts[]): Overlaps {
  const ran = rows.filter((j) => j.job_state === 'done' && j.job_start !== null && j.job_end !== null)
    .map((j) => ({ job: j, start: runStart(j).getTime(), end: j.job_end!.getTime(), keys: recordsOf(j) }))
    .sort((a, b) => a.start - b.start);
  const clashes: string[] = [];
  let sideBySide = 0;
  for (let i = 0; i < ran.length; i += 1) {
    for (let j = i + 1; j < ran.length && ran[j].start < ran[i].end; j += 1) {
      const [a, b] = [ran[i], ran[j]];
      if (a.job.parent_job_id === b.job.job_id || b.job.parent_job_id === a.job.job_id) continue;
      const shared = a.keys.filter((k) => b.keys.includes(k));
      if (shared.length > 0) clashes.push(`jobs ${a.job.job_id} and ${b.job.job_id} ran at once on ${shared.join(', ')}`);
      else sideBySide += 1;
    }
  }
  return { clashes, sideBySide };
}
