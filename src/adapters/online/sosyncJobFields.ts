/**
 * What the protocol worker sends to FSO's `sosync.job` (SPEC §5): FSO's model names its fields as
 * the sync_table columns, so each sent column keeps its name. Columns FSO has no field for
 * (priority, closed-by, source type and target id, last change, the copy's own bookkeeping) are not
 * sent. Job and child-job timestamps are partly Odoo Datetimes and partly char fields holding ISO
 * text with milliseconds, as FSO's addon defines them.
 */

export type SosyncJobFieldType = 'integer' | 'datetime' | 'char' | 'text' | 'selection';

/** sync_table column = sosync.job field → Odoo type */
export const sosyncJobFields = {
  job_id: 'integer',
  job_date: 'datetime',
  job_source_system: 'selection',
  job_source_model: 'char',
  job_source_record_id: 'integer',
  job_source_sosync_write_date: 'char',
  job_source_fields: 'text',
  job_fetched: 'datetime',
  job_start: 'char',
  job_end: 'char',
  job_run_count: 'integer',
  job_state: 'selection',
  job_error_code: 'selection',
  job_error_text: 'text',
  job_log: 'text',
  parent_job_id: 'integer',
  child_job_start: 'char',
  child_job_end: 'char',
  sync_source_system: 'selection',
  sync_source_model: 'char',
  sync_source_record_id: 'integer',
  sync_target_system: 'selection',
  sync_target_model: 'char',
  sync_target_record_id: 'integer',
  sync_source_data: 'text',
  sync_target_data_before: 'text',
  sync_target_request: 'text',
  sync_target_answer: 'text',
  sync_target_data_after: 'text',
  sync_start: 'char',
  sync_end: 'char',
} as const satisfies Record<string, SosyncJobFieldType>;

export type SosyncJobField = keyof typeof sosyncJobFields;

/** The job states FSO's selection has; sosync's `error_retry` is not among them. */
export const sosyncJobStates = ['new', 'inprogress', 'child', 'done', 'error', 'skipped'] as const;
