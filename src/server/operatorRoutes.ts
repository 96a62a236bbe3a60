/**
 * The operators' routes of later sosync (SPEC §2.2): bulk and tree creation, retrying failed
 * jobs, job trees, statistics, the flow map and the quick check of one record. Like the other
 * routes they answer JSON, or XML when asked for.
 */
import express, { type Request, type Response } from 'express';
import type { JobErrorCode, JobState, NewJob, NewJobTree, RetryFilter } from '../adapters/syncTable/index.ts';
import { jobErrorCodes, MAX_TREE_DEPTH } from '../adapters/syncTable/index.ts';
import { systemNow } from '../adapters/clock/index.ts';
import { quickCheck } from '../flows/quickCheck.ts';
import type { AppDependencies } from './app.ts';
import { ErrorCode, errorBody, parseJobCreate, parseJobId } from './jobRequest.ts';
import { queryText, readSinceUntil } from './jobList.ts';
import { send } from './negotiate.ts';

/** Routes whose bodies may be far larger than the 1 MB other routes accept. */
export const largeBodyRoutes = ['/job/bulk-create', '/job/tree-create'];
/** Request body cap of those routes (beyond it: 413). 10,000 announcements take about 2 MB. */
export const LARGE_BODY_LIMIT = '32mb';
/** Jobs one bulk or tree request may hold. */
export const MAX_JOBS_PER_REQUEST = 50_000;

/** The JSON parser of the large-body routes; mounted before the app's 1 MB parsers. */
export const largeBodyParser = express.json({ limit: LARGE_BODY_LIMIT });

export type OperatorDependencies = Pick<AppDependencies, 'store' | 'hasFlow' | 'flows' | 'workers' | 'logger'>;

/** One problem of one announcement in a bulk or tree request. */
interface ElementError {
  /** bulk: position in the array; tree: the path, e.g. "child_jobs[0].child_jobs[2]" ("" = the root) */
  index: number | string;
  field: string;
  problem: string;
  error_code: 1 | 2;
}

/** Validates one announcement exactly as /job/create does; its problems go to `errors`. */
function parseElement(element: unknown, index: number | string, hasFlow: (model: string) => boolean, errors: ElementError[]): NewJob | null {
  if (element === null || typeof element !== 'object' || Array.isArray(element)) {
    errors.push({ index, field: 'job', problem: 'is not a JSON object', error_code: 1 });
    return null;
  }
  const parsed = parseJobCreate(element as Record<string, unknown>, hasFlow);
  if (parsed.ok) return parsed.job;
  for (const [field, problem] of Object.entries(parsed.error.error_detail)) {
    errors.push({ index, field, problem, error_code: parsed.error.error_code });
  }
  return null;
}

function placeOf(error: ElementError): string {
  if (typeof error.index === 'number') return `[${error.index}].${error.field}`;
  return error.index === '' ? error.field : `${error.index}.${error.field}`;
}

function refuse(req: Request, res: Response, root: string, errors: ElementError[]): void {
  const name = errors.some((e) => e.error_code === ErrorCode.InterfaceError) ? 'InterfaceError' : 'DataError';
  // error_detail names each field as its place in the request: "[3].job_date", "child_jobs[0].job_source_model"
  const detail = Object.fromEntries(errors.map((e) => [placeOf(e), e.problem]));
  send(req, res, 400, root, { ...errorBody(name, detail), errors });
}

const retryParameters = new Set(['model', 'error_code', 'since', 'until', 'ids']);
const MAX_RETRY_IDS = 10_000;

function parseRetryFilter(query: Record<string, unknown>): { ok: true; filter: RetryFilter } | { ok: false; detail: Record<string, string> } {
  const detail: Record<string, string> = {};
  const filter: RetryFilter = {};
  // a misspelt filter must not widen the retry to every failed job; the unknown names are quoted in
  // the message, never used as field names (they are the caller's text: an XML element name must not be)
  const unknown = Object.keys(query).filter((key) => !retryParameters.has(key));
  if (unknown.length > 0) {
    detail.query = `${unknown.map((k) => JSON.stringify(k)).join(', ')} ${unknown.length === 1 ? 'is not a filter' : 'are not filters'} (use ${[...retryParameters].join(', ')})`;
  }
  const text = (key: string) => queryText(query, key, detail);
  const model = text('model');
  if (model) filter.model = model;
  const code = text('error_code');
  if (code) {
    if ((jobErrorCodes as readonly string[]).includes(code)) filter.errorCode = code as JobErrorCode;
    else detail.error_code = `"${code}" is not one of ${jobErrorCodes.join(', ')}`;
  }
  readSinceUntil(query, filter, detail);
  const ids = text('ids');
  if (ids !== undefined) {
    const list = ids.split(',').map((s) => s.trim());
    const parsed = list.map(parseJobId);
    if (list.length > MAX_RETRY_IDS) detail.ids = `holds ${list.length} ids; at most ${MAX_RETRY_IDS}`;
    else if (parsed.some((id) => id === null)) detail.ids = `"${ids}" is not a comma-separated list of job ids`;
    else filter.ids = parsed as number[];
  }
  return Object.keys(detail).length ? { ok: false, detail } : { ok: true, filter };
}

const allStates: readonly JobState[] = ['new', 'inprogress', 'done', 'error', 'error_retry', 'skipped'];
const finishedStates: readonly JobState[] = ['done', 'error', 'error_retry', 'skipped'];
const HOUR_MS = 60 * 60 * 1000;

export function operatorRoutes(deps: OperatorDependencies): express.Router {
  const router = express.Router();

  router.post('/job/bulk-create', async (req, res) => {
    const body: unknown = req.body;
    if (!Array.isArray(body) || body.length === 0) {
      send(req, res, 400, 'bulk_result', errorBody('InterfaceError', { body: 'must be a non-empty JSON array of job announcements (content-type application/json)' }));
      return;
    }
    if (body.length > MAX_JOBS_PER_REQUEST) {
      send(req, res, 400, 'bulk_result', errorBody('DataError', { body: `holds ${body.length} jobs; at most ${MAX_JOBS_PER_REQUEST} per request` }));
      return;
    }
    const errors: ElementError[] = [];
    const jobs = body.map((element, index) => parseElement(element, index, deps.hasFlow, errors));
    if (errors.length > 0) {
      deps.logger.info({ elements: body.length, errors: errors.length }, 'job/bulk-create refused');
      refuse(req, res, 'bulk_result', errors);
      return;
    }
    const ids = await deps.store.createJobs(jobs as NewJob[]);
    deps.logger.debug({ jobs: ids.length }, 'jobs created in bulk');
    deps.workers.processJobs();
    send(req, res, 200, 'bulk_result', { job_ids: ids, count: ids.length, error_code: 0, error_text: 'None', errors: [] });
  });

  router.post('/job/tree-create', async (req, res) => {
    const errors: ElementError[] = [];
    let nodes = 0;
    const parseTree = (element: unknown, path: string, depth: number): NewJobTree | null => {
      nodes++;
      const job = parseElement(element, path, deps.hasFlow, errors);
      const children: unknown = element !== null && typeof element === 'object' ? (element as Record<string, unknown>).child_jobs : undefined;
      if (children !== undefined && !Array.isArray(children)) {
        errors.push({ index: path, field: 'child_jobs', problem: 'is not an array of job announcements', error_code: 2 });
        return null;
      }
      if (children?.length && depth >= MAX_TREE_DEPTH) {
        errors.push({ index: path, field: 'child_jobs', problem: `nests deeper than ${MAX_TREE_DEPTH} levels`, error_code: 2 });
        return null;
      }
      if (nodes + (children?.length ?? 0) > MAX_JOBS_PER_REQUEST) {
        errors.push({ index: path, field: 'child_jobs', problem: `the tree holds more than ${MAX_JOBS_PER_REQUEST} jobs`, error_code: 2 });
        return null;
      }
      const parsedChildren = (children ?? []).map((child, i) => parseTree(child, `${path ? `${path}.` : ''}child_jobs[${i}]`, depth + 1));
      return job && { job, children: parsedChildren.filter((c): c is NewJobTree => c !== null) };
    };
    const tree = parseTree(req.body, '', 0);
    if (errors.length > 0 || !tree) {
      deps.logger.info({ errors: errors.length }, 'job/tree-create refused');
      refuse(req, res, 'tree_result', errors);
      return;
    }
    const created = await deps.store.createJobTree(tree);
    deps.workers.processJobs();
    send(req, res, 200, 'tree_result', { ...created, count: nodes, error_code: 0, error_text: 'None', errors: [] });
  });

  router.get('/job/retryfailed', async (req, res) => {
    const parsed = parseRetryFilter(req.query as Record<string, unknown>);
    if (!parsed.ok) {
      send(req, res, 400, 'retry_result', errorBody('DataError', parsed.detail));
      return;
    }
    const from = req.socket.remoteAddress ?? 'an unknown address';
    const ids = await deps.store.retryFailedJobs(parsed.filter, `retry requested at ${systemNow().toISOString()} from ${from}`);
    deps.logger.info({ count: ids.length, from, filter: parsed.filter }, 'failed jobs set back to new');
    const worker = ids.length > 0 ? deps.workers.processJobs() : null;
    send(req, res, 200, 'retry_result', { count: ids.length, job_ids: ids, job_worker: worker });
  });

  router.get('/job/tree/:id', async (req, res) => {
    const raw = String(req.params.id);
    const id = parseJobId(raw);
    const tree = id === null ? null : await deps.store.jobTree(id);
    if (!tree) {
      send(req, res, 404, 'job_result', errorBody('DataError', { job_id: id === null ? `"${raw}" is not a job id` : `no job ${id}` }));
      return;
    }
    send(req, res, 200, 'sync_table', tree);
  });

  router.get('/statistic/jobs', async (req, res) => {
    const stats = await deps.store.jobStatistics();
    const byState = Object.fromEntries(allStates.map((s) => [s, 0])) as Record<JobState, number>;
    const byModel = new Map<string, Record<string, number | string | null>>();
    for (const { model, state, count } of stats.by_model_and_state) {
      byState[state] = (byState[state] ?? 0) + count;
      const key = model ?? '';
      const entry = byModel.get(key) ?? { model, total: 0, ...Object.fromEntries(allStates.map((s) => [s, 0])) };
      entry[state] = Number(entry[state] ?? 0) + count;
      entry.total = Number(entry.total) + count;
      byModel.set(key, entry);
    }
    // 24 hourly buckets up to the current hour, empty hours included
    const firstHour = Math.floor(systemNow().getTime() / HOUR_MS) * HOUR_MS - 23 * HOUR_MS;
    const hours = Array.from({ length: 24 }, (_, i) => ({
      hour: new Date(firstHour + i * HOUR_MS), total: 0, ...Object.fromEntries(finishedStates.map((s) => [s, 0])),
    })) as Array<Record<string, number | Date>>;
    for (const { hour, state, count } of stats.finished_per_hour) {
      const bucket = hours[Math.round((hour.getTime() - firstHour) / HOUR_MS)];
      if (!bucket) continue;
      bucket[state] = Number(bucket[state]) + count;
      bucket.total = Number(bucket.total) + count;
    }
    send(req, res, 200, 'job_statistics', {
      total: Object.values(byState).reduce((a, b) => a + b, 0),
      by_state: byState,
      by_model: [...byModel.values()],
      oldest_open_job: stats.oldest_open_job,
      finished_per_hour: hours,
      errors_by_code: stats.errors_by_code.map(({ code, count }) => ({ error_code: code, count })),
    });
  });

  router.get('/flow/map', (req, res) => {
    send(req, res, 200, 'flow_map', {
      flows: deps.flows.flows.map((flow) => ({
        name: flow.name,
        fs_model: flow.models.fs,
        fso_model: flow.models.fso,
        directions: flow.syncsFrom.map((from) => {
          const to = from === 'fs' ? 'fso' : 'fs';
          return { source_system: from, source_model: flow.models[from], target_system: to, target_model: flow.models[to] };
        }),
        child_jobs: flow.childJobModels.map((c) => ({ system: c.system, model: c.model })),
        deletes: flow.deletes,
      })),
    });
  });

  router.get('/service/quick-check', async (req, res) => {
    const query = req.query as Record<string, unknown>;
    const model = typeof query.model === 'string' ? query.model.trim() : '';
    const rawId = typeof query.id === 'string' ? query.id.trim() : '';
    const detail: Record<string, string> = {};
    const flow = deps.flows.forModel(model);
    if (!model) detail.model = 'is required (an FS or FSO model name)';
    else if (!flow) detail.model = `"${model}" has no sync flow (see /flow/map)`;
    const id = parseJobId(rawId);
    if (!rawId) detail.id = 'is required';
    else if (id === null) detail.id = `"${rawId}" is not a positive 32-bit integer`;
    if (!flow || id === null) {
      send(req, res, 400, 'quick_check', errorBody(Object.values(detail).some((d) => d.startsWith('is required')) ? 'InterfaceError' : 'DataError', detail));
      return;
    }
    try {
      send(req, res, 200, 'quick_check', await quickCheck(flow, model, id));
    } catch (err) {
      deps.logger.warn({ err, model, id }, 'quick check could not read both systems');
      send(req, res, 502, 'quick_check', { error: `could not read ${model} ${id}: ${(err as Error).message}` });
    }
  });

  return router;
}
