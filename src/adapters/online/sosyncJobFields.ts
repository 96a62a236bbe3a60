/**
 * FSO's `sosync.job` field for each `sync_table` column (SPEC §5): the `job_` prefix is dropped
 * (`job_id` stays), and so is `sync_` unless the shorter name is already taken by a `job_` column
 * (`sync_target_request` → `target_request`, but `sync_source_system` stays, since `source_system`
 * is `job_source_system`'s). The protocol worker writes these names; the FSO stand-in defines them.
 */

export type SosyncJobFieldType = 'integer' | 'datetime' | 'char' | 'text' | 'selection' | 'boolean';

/** sync_table column → [sosync.job field, Odoo type] */
export const sosyncJobFields = {
  job_id: ['job_id', 'integer'],
  job_date: ['date', 'datetime'],
  job_priority: ['priority', 'integer'],
  job_source_system: ['source_system', 'selection'],
  job_source_model: ['source_model', 'char'],
  job_source_record_id: ['source_record_id', 'integer'],
  job_source_target_record_id: ['source_target_record_id', 'integer'],
  job_source_sosync_write_date: ['source_sosync_write_date', 'datetime'],
  job_source_fields: ['source_fields', 'text'],
  job_source_type: ['source_type', 'char'],
  job_fetched: ['fetched', 'datetime'],
  job_start: ['start', 'datetime'],
  job_end: ['end', 'datetime'],
  job_run_count: ['run_count', 'integer'],
  job_state: ['state', 'selection'],
  job_error_code: ['error_code', 'selection'],
  job_error_text: ['error_text', 'text'],
  job_log: ['log', 'text'],
  job_last_change: ['last_change', 'datetime'],
  job_closed_by_job_id: ['closed_by_job_id', 'integer'],
  parent_job_id: ['parent_job_id', 'integer'],
  child_job_start: ['child_job_start', 'datetime'],
  child_job_end: ['child_job_end', 'datetime'],
  sync_source_system: ['sync_source_system', 'selection'],
  sync_source_model: ['sync_source_model', 'char'],
  sync_source_record_id: ['sync_source_record_id', 'integer'],
  sync_target_system: ['target_system', 'selection'],
  sync_target_model: ['target_model', 'char'],
  sync_target_record_id: ['target_record_id', 'integer'],
  sync_source_data: ['source_data', 'text'],
  sync_target_data_before: ['target_data_before', 'text'],
  sync_target_request: ['target_request', 'text'],
  sync_target_answer: ['target_answer', 'text'],
  sync_start: ['sync_start', 'datetime'],
  sync_end: ['sync_end', 'datetime'],
  job_fso_id: ['fso_id', 'integer'],
  job_to_fso_can_sync: ['to_fso_can_sync', 'boolean'],
  job_to_fso_sync_date: ['to_fso_sync_date', 'datetime'],
} as const satisfies Record<string, readonly [string, SosyncJobFieldType]>;

export type SyncTableColumn = keyof typeof sosyncJobFields;

/** The sosync.job field name for a sync_table column. */
export function sosyncJobFieldName(column: SyncTableColumn): string {
  return sosyncJobFields[column][0];
}

export const sosyncJobSelections = {
  source_system: [['fs', 'Fundraising Studio'], ['fso', 'FS-Online']],
  state: [['new', 'New'], ['inprogress', 'In Progress'], ['done', 'Done'], ['error', 'Error'],
    ['error_retry', 'Error (retry)'], ['skipped', 'Skipped']],
  error_code: [['timeout', 'Job timed out'], ['run_counter', 'Run count exceeded'],
    ['sync_source', 'Could not determine sync direction'], ['child_job', 'Child job error'],
    ['transformation', 'Model transformation error'], ['cleanup', 'Job finalization error'],
    ['unknown', 'Unexpected error']],
} as const;
