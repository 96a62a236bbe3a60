/**
 * GET /job/list: the sync table, streamed row by row (never the whole table in memory), with
 * limit/offset or a keyset cursor and filters by state, model, system and date.
 */
import type { Request, Response } from 'express';
import { INT32_MAX, jobStates, type JobListFilter, type JobState, type SyncTableStore, type SystemName } from '../adapters/syncTable/index.ts';
import { parseDayOrDate } from './dates.ts';
import { send, toPlain, wantsXml, xmlFragment } from './negotiate.ts';
import { errorBody, NOT_A_SINGLE_VALUE } from './jobRequest.ts';

export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1_000_000;

type FilterParse = { ok: true; filter: JobListFilter } | { ok: false; detail: Record<string, string> };

/** PostgreSQL's text cannot hold U+0000: a filter holding it can match nothing and would fail the query. */
const HOLDS_NUL = 'holds a NUL character (%00), which no value in the sync table can hold';

/**
 * One query parameter as trimmed text. One given twice or as a list, or one holding a NUL
 * character, is refused into `detail`.
 */
export function queryText(query: Record<string, unknown>, key: string, detail: Record<string, string>): string | undefined {
  const v = query[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') {
    detail[key] = NOT_A_SINGLE_VALUE;
    return undefined;
  }
  if (v.includes('\u0000')) {
    detail[key] = HOLDS_NUL;
    return undefined;
  }
  return v.trim();
}

/** The `since`/`until` parameters (on job_date) into `into`; their problems into `detail`. */
export function readSinceUntil(query: Record<string, unknown>, into: { since?: Date; until?: Date }, detail: Record<string, string>): void {
  for (const key of ['since', 'until'] as const) {
    const t = queryText(query, key, detail);
    if (!t) continue;
    const d = parseDayOrDate(t);
    if (d) into[key] = d;
    else detail[key] = `"${t}" is not a date (YYYY-MM-DD or ISO 8601)`;
  }
}

export function parseListFilter(query: Record<string, unknown>): FilterParse {
  const detail: Record<string, string> = {};
  const text = (key: string) => queryText(query, key, detail);
  const whole = (key: string, min: number, max: number): number | undefined => {
    const t = text(key);
    if (t === undefined || t === '') return undefined;
    if (!/^\d+$/.test(t) || Number(t) < min || Number(t) > max) {
      detail[key] = `"${t}" is not a whole number from ${min} to ${max}`;
      return undefined;
    }
    return Number(t);
  };
  const filter: JobListFilter = {
    limit: whole('limit', 1, MAX_LIST_LIMIT) ?? DEFAULT_LIST_LIMIT,
    offset: whole('offset', 0, Number.MAX_SAFE_INTEGER),
    cursor: whole('cursor', 0, INT32_MAX),
    order: 'desc',
  };
  const order = text('order');
  if (order) {
    if (order === 'asc' || order === 'desc') filter.order = order;
    else detail.order = `"${order}" is not asc or desc`;
  }
  const state = text('state');
  if (state) {
    const list = state.split(',').map((s) => s.trim());
    const bad = list.filter((s) => !(jobStates as readonly string[]).includes(s));
    if (bad.length) detail.state = `"${bad.join(',')}" is not one of ${jobStates.join(', ')}`;
    else filter.state = list as JobState[];
  }
  const model = text('model');
  if (model) filter.model = model;
  const system = text('system');
  if (system) {
    if (system === 'fs' || system === 'fso') filter.system = system as SystemName;
    else detail.system = `"${system}" is not fs or fso`;
  }
  readSinceUntil(query, filter, detail);
  const parent = text('parent_job_id');
  if (parent) {
    if (parent === 'none') filter.parentJobId = null;
    else if (/^\d{1,10}$/.test(parent) && Number(parent) <= INT32_MAX) filter.parentJobId = Number(parent);
    else detail.parent_job_id = `"${parent}" is not a job id or "none"`;
  }
  if (filter.offset !== undefined && filter.cursor !== undefined) {
    detail.offset = 'cannot be combined with cursor';
  }
  return Object.keys(detail).length ? { ok: false, detail } : { ok: true, filter };
}

/** Writes a chunk and waits when the socket's buffer is full. */
async function write(res: Response, chunk: string): Promise<boolean> {
  if (res.destroyed) return false;
  if (!res.write(chunk)) {
    await new Promise<void>((resolve) => {
      const done = () => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  }
  return !res.destroyed;
}

export function jobListRoute(store: SyncTableStore) {
  return async (req: Request, res: Response): Promise<void> => {
    const parsed = parseListFilter(req.query as Record<string, unknown>);
    if (!parsed.ok) {
      send(req, res, 400, 'job_result', errorBody('DataError', parsed.detail));
      return;
    }
    const xml = wantsXml(req);
    const rows = store.listJobs(parsed.filter);
    // the first batch is read before the answer commits to 200: a query that fails is answered as
    // an error with its reason, not cut off after the head of a list
    let next = await rows.next();
    res.status(200).type(xml ? 'application/xml; charset=utf-8' : 'application/json; charset=utf-8');
    let count = 0;
    let last: number | null = null;
    try {
      await write(res, xml ? '<?xml version="1.0" encoding="utf-8"?>\n<job_list>\n' : '{"jobs":[');
      for (; !next.done; next = await rows.next()) {
        const row = next.value;
        const chunk = xml ? xmlFragment('sync_table', row) : `${count ? ',' : ''}\n${JSON.stringify(toPlain(row))}`;
        if (!(await write(res, chunk))) return; // client went away: stop reading
        count++;
        last = row.job_id;
      }
    } finally {
      if (!next.done) await rows.return(undefined); // ends the store's reading (it reads in batches; nothing stays open)
    }
    const nextCursor = count === parsed.filter.limit ? last : null;
    if (xml) {
      await write(res, `${xmlFragment('count', count)}${xmlFragment('next_cursor', nextCursor)}</job_list>\n`);
    } else {
      await write(res, `\n],"count":${count},"next_cursor":${JSON.stringify(nextCursor)}}\n`);
    }
    res.end();
  };
}
