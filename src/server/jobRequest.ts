/**
 * Validation of /job/create parameters (SPEC §2.1). Pure: takes the merged parameters of the
 * query string or body, returns the job to store or the error answer, stores nothing.
 */
import { INT32_MAX, type NewJob, type SystemName } from '../adapters/syncTable/index.ts';
import { parseAnnouncedDate } from './dates.ts';

/** The original's error codes of job answers, by name. */
export const ErrorCode = { None: 0, InterfaceError: 1, DataError: 2 } as const;
export type ApiErrorName = Exclude<keyof typeof ErrorCode, 'None'>;

export interface JobCreateError {
  error_code: (typeof ErrorCode)[ApiErrorName];
  error_text: ApiErrorName;
  error_detail: Record<string, string>;
}

export type JobCreateParse = { ok: true; job: NewJob } | { ok: false; error: JobCreateError };

/** The required fields with the alternative (short) spelling older FSO versions send. */
const required: ReadonlyArray<readonly [long: string, short: string]> = [
  ['job_date', 'job_date'],
  ['job_source_system', 'source_system'],
  ['job_source_model', 'source_model'],
  ['job_source_record_id', 'source_record_id'],
];


/** What a field given twice (`?a=1&a=2`) or as a JSON list is told: one value is expected. */
export const NOT_A_SINGLE_VALUE = 'is given more than once or as a list; send one value';

/** The parameters that take one value (job_source_fields may be a JSON object or list). */
const scalarFields = [
  ...new Set(required.flat()),
  'job_source_sosync_write_date', 'job_source_target_record_id', 'job_source_type', 'job_priority',
];

function asText(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** Odoo sends `False` (or nothing) for an empty optional value. */
function isEmptyOptional(value: unknown): boolean {
  return value === undefined || value === null || value === false || value === '' ||
    (typeof value === 'string' && ['false', 'none', 'null'].includes(value.trim().toLowerCase()));
}

function parsePositiveId(text: string): number | null {
  const t = text.trim();
  if (!/^\+?\d+$/.test(t)) return null;
  const n = Number(t);
  return n >= 1 && n <= INT32_MAX ? n : null;
}

export function parseJobCreate(params: Record<string, unknown>, hasFlow: (model: string) => boolean): JobCreateParse {
  const missing: Record<string, string> = {};
  const invalid: Record<string, string> = {};
  const values: Record<string, string> = {};

  const lists = scalarFields.filter((key) => Array.isArray(params[key]));
  if (lists.length > 0) {
    return { ok: false, error: { error_code: 2, error_text: 'DataError', error_detail: Object.fromEntries(lists.map((k) => [k, NOT_A_SINGLE_VALUE])) } };
  }

  for (const [long, short] of required) {
    const raw = params[long] !== undefined ? params[long] : params[short];
    const text = asText(raw);
    if (text === undefined) {
      missing[long] = long === short ? 'is required' : `is required (or ${short})`;
    } else if (text.trim() === '') {
      invalid[long] = 'must not be empty';
    } else {
      values[long] = text.trim();
    }
  }

  let jobDate: Date | null = null;
  if (values.job_date !== undefined) {
    jobDate = parseAnnouncedDate(values.job_date);
    if (!jobDate) invalid.job_date = `"${values.job_date}" is not a date (ISO 8601 or YYYY-MM-DD HH:MM:SS)`;
  }
  let system: SystemName | null = null;
  if (values.job_source_system !== undefined) {
    const s = values.job_source_system.toLowerCase();
    if (s === 'fs' || s === 'fso') system = s;
    else invalid.job_source_system = `"${values.job_source_system}" is not fs or fso`;
  }
  let recordId: number | null = null;
  if (values.job_source_record_id !== undefined) {
    recordId = parsePositiveId(values.job_source_record_id);
    if (recordId === null) invalid.job_source_record_id = `"${values.job_source_record_id}" is not a positive 32-bit integer`;
  }
  if (values.job_source_model !== undefined && !hasFlow(values.job_source_model)) {
    invalid.job_source_model = `"${values.job_source_model}" has no sync flow`;
  }

  let sosyncWriteDate: Date | null = null;
  const writeDateRaw = params.job_source_sosync_write_date;
  if (!isEmptyOptional(writeDateRaw)) {
    const text = asText(writeDateRaw)!;
    sosyncWriteDate = parseAnnouncedDate(text);
    if (!sosyncWriteDate) invalid.job_source_sosync_write_date = `"${text}" is not a date (ISO 8601 or YYYY-MM-DD HH:MM:SS)`;
  }

  let fields: string | null = null;
  const fieldsRaw = params.job_source_fields;
  if (!isEmptyOptional(fieldsRaw)) {
    if (typeof fieldsRaw === 'object') {
      fields = JSON.stringify(fieldsRaw);
    } else {
      const text = asText(fieldsRaw)!;
      try {
        JSON.parse(text);
        fields = text;
      } catch {
        invalid.job_source_fields = 'is not valid JSON';
      }
    }
  }

  /** An optional record id: empty (false, 0, …) → null; FSO's Integer fields read 0 when unset. */
  const optionalId = (field: string): number | null => {
    const raw = params[field];
    if (isEmptyOptional(raw) || asText(raw)!.trim() === '0') return null;
    const id = parsePositiveId(asText(raw)!);
    if (id === null) invalid[field] = `"${asText(raw)}" is not a positive 32-bit integer`;
    return id;
  };
  const targetId = optionalId('job_source_target_record_id');
  // merge jobs (FSO's job_source_type merge_into) are not processed yet: refuse rather than run them as updates
  for (const field of ['job_source_merge_into_record_id', 'job_source_target_merge_into_record_id']) {
    const mergeId = optionalId(field);
    if (mergeId !== null) invalid[field] = `${mergeId}: merge jobs are not supported (only false or empty)`;
  }

  let sourceType = '';
  const typeRaw = params.job_source_type;
  if (!isEmptyOptional(typeRaw)) {
    const t = asText(typeRaw)!.trim().toLowerCase();
    if (t === 'delete') sourceType = t;
    else invalid.job_source_type = `"${asText(typeRaw)}" is not "" or "delete"`;
  }

  let priority: number | undefined;
  const priorityRaw = params.job_priority;
  if (!isEmptyOptional(priorityRaw)) {
    const t = asText(priorityRaw)!.trim();
    if (/^-?\d+$/.test(t) && Math.abs(Number(t)) <= INT32_MAX) priority = Number(t);
    else invalid.job_priority = `"${t}" is not an integer`;
  }

  if (Object.keys(missing).length > 0) {
    return { ok: false, error: apiError('InterfaceError', { ...missing, ...invalid }) };
  }
  if (Object.keys(invalid).length > 0) {
    return { ok: false, error: apiError('DataError', invalid) };
  }
  return {
    ok: true,
    job: {
      job_date: jobDate!,
      job_source_system: system!,
      job_source_model: values.job_source_model,
      job_source_record_id: recordId!,
      job_source_target_record_id: targetId,
      job_source_sosync_write_date: sosyncWriteDate,
      job_source_fields: fields,
      job_source_type: sourceType,
      job_priority: priority,
    },
  };
}

export interface ErrorBody {
  job_id: null;
  error_code: number;
  error_text: string;
  error_detail: Record<string, string>;
}

function apiError(name: ApiErrorName, detail: Record<string, string>): JobCreateError {
  return { error_code: ErrorCode[name], error_text: name, error_detail: detail };
}

/** The answer of a refused request: which field, what is wrong (SPEC §2.1). */
export function errorBody(name: ApiErrorName, detail: Record<string, string>): ErrorBody {
  return { job_id: null, ...apiError(name, detail) };
}


/** A job id from a path segment: a positive 32-bit integer, else null. */
export function parseJobId(raw: string): number | null {
  return /^\d{1,10}$/.test(raw) ? parsePositiveId(raw) : null;
}
