/**
 * A job's states and the order the worker picks open jobs in (SPEC §4.1), on their own so that the
 * store, the claims of parallel workers and the migrations (claims.ts's function) share one text.
 */
export const jobStates = ['new', 'inprogress', 'done', 'error', 'error_retry', 'skipped'] as const;
export type JobState = (typeof jobStates)[number];

/** The states of a job the worker still has to run (SPEC §4.1). */
export const openStates = ['new', 'inprogress'] as const satisfies readonly JobState[];
/** The same list as SQL, for every query that selects open jobs (the partial indexes of migration 2 use this text). */
export const OPEN_STATES_SQL = `(${openStates.map((s) => `'${s}'`).join(', ')})`;

/** SPEC §4.1's order, used by both branches of the pick and the choice between them. */
export const PICK_ORDER = `(job_state = 'inprogress') DESC, job_priority DESC, job_date DESC, job_id`;
