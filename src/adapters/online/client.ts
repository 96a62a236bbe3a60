/**
 * The FSO client: Odoo's external XML-RPC API (`/xmlrpc/2/common`, `/xmlrpc/2/object`).
 *
 * - Odoo's value conventions are absorbed here (see values.ts); callers get null, Date, `{ id, name }`.
 * - Every write passes the loop guard context `{ create_sync_job: false, lang: 'de_DE' }` (SPEC §4.3).
 * - Each call's raw XML request/answer (password replaced by ***) belongs to that call: a
 *   `recording()` view collects the exchanges of its own calls, and a failed call's error carries
 *   its exchange — the job and protocol workers share the client, never a "last exchange".
 * - A rejected session (Access Denied) is re-authenticated once and the call retried once.
 */
import http from 'node:http';
import https from 'node:https';
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../log.ts';
import {
  OnlineAuthenticationError, OnlineError, OnlineFaultError, OnlineProtocolError, OnlineUnavailableError,
} from './errors.ts';
import { parseOnlineHost, type OnlineHost } from './host.ts';
import { escapeXmlText, parseMethodResponse, serializeMethodCall } from './wire.ts';
import {
  normaliseOdooRecord, toOdooValue, type FieldTypes, type OdooFieldType, type OnlineRecord,
} from './values.ts';

export interface OnlineClientOptions {
  /** `online_host`: host, host:port, with or without http:// / https:// */
  host: string;
  /** Odoo database name (the instance name) */
  database: string;
  user: string;
  password: string;
  /** per HTTP exchange, connect to last byte; default 30 000 */
  timeoutMs?: number;
  /** most connections open to FSO at once (calls beyond wait for one); default 4 */
  maxSockets?: number;
}

/** The context every create/write/unlink carries so FSO does not announce our own writes back. */
export const writeContext = Object.freeze({ create_sync_job: false, lang: 'de_DE' });

export type OdooContext = Record<string, unknown>;

export type DomainOperator =
  | '=' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'not in'
  | 'like' | 'ilike' | '=like' | '=ilike' | 'not like' | 'not ilike';
export type DomainLeaf = [field: string, operator: DomainOperator, value: unknown];
/** Odoo's prefix-notation domain; consecutive terms are implicitly and-ed. */
export type DomainTerm = '&' | '|' | '!' | DomainLeaf;
export type Domain = DomainTerm[];

export interface SearchOptions {
  limit?: number;
  offset?: number;
  /** e.g. "write_date desc, id" */
  order?: string;
  context?: OdooContext;
}

export interface OdooFieldInfo {
  type: OdooFieldType;
  string?: string;
  relation?: string;
  required?: boolean;
  readonly?: boolean;
  selection?: [string, string][];
  [attribute: string]: unknown;
}

export interface OnlineExchange {
  /** `model.method`, or `common.authenticate` / `common.version` */
  call: string;
  /** the methodCall XML exactly as sent, password replaced by *** */
  request: string;
  /** the methodResponse XML exactly as received ('' when no answer came) */
  response: string;
}

export interface OnlineClient {
  readonly host: OnlineHost;
  readonly database: string;
  readonly user: string;
  /** `common.version` (needs no login) */
  version(): Promise<Record<string, unknown>>;
  /** log in and remember the uid; OnlineAuthenticationError when refused */
  authenticate(): Promise<number>;
  /** raw `object.execute_kw`; values are not normalised, writes still get the loop-guard context */
  executeKw<T = unknown>(model: string, method: string, args?: unknown[], kwargs?: Record<string, unknown>): Promise<T>;
  read(model: string, ids: number | number[], fields?: string[], options?: { context?: OdooContext }): Promise<OnlineRecord[]>;
  /** one record by id, inactive ones included; null when it does not exist */
  readOne(model: string, id: number, fields?: string[]): Promise<OnlineRecord | null>;
  search(model: string, domain: Domain, options?: SearchOptions): Promise<number[]>;
  searchRead(model: string, domain: Domain, options?: SearchOptions & { fields?: string[] }): Promise<OnlineRecord[]>;
  searchCount(model: string, domain: Domain, options?: { context?: OdooContext }): Promise<number>;
  /** values may use null, Date and `{ id, name }`; returns the new id */
  create(model: string, values: Record<string, unknown>): Promise<number>;
  /** several records in one call (Odoo's create of a list); the new ids in the order given */
  createMany(model: string, values: Record<string, unknown>[]): Promise<number[]>;
  write(model: string, ids: number | number[], values: Record<string, unknown>): Promise<true>;
  unlink(model: string, ids: number | number[]): Promise<true>;
  fieldsGet(model: string, attributes?: string[]): Promise<Record<string, OdooFieldInfo>>;
  /** field name → Odoo type, from fields_get, cached per model */
  fieldTypes(model: string): Promise<FieldTypes>;
  /** a view of this client (same session) that records the exchanges of the calls made through it */
  recording(): RecordingOnlineClient;
  /** FSO's clock per the HTTP Date header of the last answer (1 s resolution), or null */
  serverTime(): Date | null;
  /** drop kept-alive connections */
  close(): void;
}

/** A client view that keeps the exchanges of its own calls, in order. */
export interface RecordingOnlineClient extends OnlineClient {
  readonly exchanges: readonly OnlineExchange[];
}

type ExchangeSink = ((exchange: OnlineExchange) => void) | null;

const writeMethods = new Set(['create', 'write', 'unlink']);

/** Marks where the password goes in a call's params. */
const passwordSlot = Symbol('password');

function asIds(ids: number | number[]): number[] {
  return Array.isArray(ids) ? ids : [ids];
}

/** Odoo's message from a faultString: its first line, or the exception line ending a bare traceback. */
export function odooFaultMessage(faultString: string): string {
  const lines = faultString.split(/\r?\n/).map((l) => l.trimEnd()).filter((l) => l.trim() !== '');
  if (lines.length === 0) return '(empty fault)';
  if (/^Traceback \(most recent call last\)/.test(lines[0])) return lines[lines.length - 1].trim();
  return lines[0].trim();
}

export function createOnlineClient(options: OnlineClientOptions, logger: Logger): OnlineClient {
  const host = parseOnlineHost(options.host);
  const { database, user, password } = options;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const transport = host.protocol === 'https:' ? https : http;
  const agent = new transport.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 4 });
  const log = logger.child({ component: 'online', host: host.url });

  let uid: number | null = null;
  let authenticating: Promise<number> | null = null;
  let lastServerDate: Date | null = null;
  const typeCache = new Map<string, Promise<FieldTypes>>();

  /** One HTTP POST; resolves with the body, rejects with OnlineUnavailableError / OnlineProtocolError. */
  function post(path: string, body: string, call: string, retryOnStaleSocket = true): Promise<string> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (err: Error | null, value?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(value ?? '');
      };
      const payload = Buffer.from(body, 'utf8');
      const req = transport.request({
        protocol: host.protocol,
        hostname: host.hostname,
        port: host.port,
        path: host.basePath + path,
        method: 'POST',
        agent,
        headers: { 'Content-Type': 'text/xml', 'Content-Length': payload.length, 'User-Agent': 'sosync' },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => finish(new OnlineUnavailableError(host.url, `answer broke off: ${e.message}`, { cause: e, call })));
        res.on('end', () => {
          const dateHeader = res.headers.date;
          if (dateHeader) {
            const d = new Date(dateHeader);
            if (!Number.isNaN(d.getTime())) lastServerDate = d;
          }
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status === 200) return finish(null, text);
          if (status >= 500) return finish(new OnlineUnavailableError(host.url, `HTTP ${status} on ${path}${bodyHint(text)}`, { call }));
          finish(new OnlineProtocolError(host.url, `HTTP ${status} on ${path}${bodyHint(text)}`, { call }));
        });
      });
      const timer = setTimeout(() => {
        req.destroy();
        finish(new OnlineUnavailableError(host.url, `no answer within ${timeoutMs} ms`, { call, timedOut: true }));
      }, timeoutMs);
      req.on('error', (e: NodeJS.ErrnoException) => {
        // A kept-alive socket the server had already closed: the request never reached it, send again once.
        if (retryOnStaleSocket && req.reusedSocket && e.code === 'ECONNRESET' && !settled) {
          settled = true;
          clearTimeout(timer);
          post(path, body, call, false).then(resolve, reject);
          return;
        }
        finish(new OnlineUnavailableError(host.url, describeNetworkError(e), { cause: e, call }));
      });
      req.end(payload);
    });
  }

  /**
   * One XML-RPC call. `params` may contain `passwordSlot` where the password goes: the wire gets the
   * real password, the exchange (given to `sink`, or carried by the error) gets ***.
   */
  async function call(path: string, method: string, params: unknown[], label: string, sink: ExchangeSink): Promise<unknown> {
    const slot = `sosync-password-slot-${randomUUID()}`;
    const xml = serializeMethodCall(method, params.map((p) => (p === passwordSlot ? slot : p)));
    const wire = xml.split(slot).join(escapeXmlText(password));
    const exchange: OnlineExchange = { call: label, request: xml.split(slot).join('***'), response: '' };
    const started = Date.now();
    const failed = (err: unknown) => {
      if (err instanceof OnlineError) err.exchange = { ...exchange };
      return err;
    };
    let body: string;
    try {
      body = await post(path, wire, label);
    } catch (err) {
      log.warn({ call: label, err: (err as Error).message }, 'FSO call failed');
      sink?.({ ...exchange });
      throw failed(err);
    }
    exchange.response = body;
    sink?.({ ...exchange });
    let parsed;
    try {
      parsed = await parseMethodResponse(body);
    } catch (err) {
      throw failed(new OnlineProtocolError(host.url, `${(err as Error).message}${bodyHint(body)}`, { cause: err, call: label }));
    }
    log.debug({ call: label, ms: Date.now() - started, fault: 'fault' in parsed }, 'FSO call');
    if ('fault' in parsed) {
      const { faultCode, faultString } = parsed.fault;
      throw failed(new OnlineFaultError(odooFaultMessage(faultString), faultCode, faultString, label));
    }
    return parsed.value;
  }

  async function login(sink: ExchangeSink): Promise<number> {
    const result = await call('/xmlrpc/2/common', 'authenticate', [database, user, passwordSlot, {}], 'common.authenticate', sink);
    if (typeof result !== 'number' || result <= 0) {
      uid = null;
      throw new OnlineAuthenticationError(host.url, database, user);
    }
    uid = result;
    log.debug({ uid, user, database }, 'FSO login');
    return result;
  }

  /** One login at a time; a login another call already started is joined, not recorded twice. */
  function authenticate(sink: ExchangeSink = null): Promise<number> {
    authenticating ??= login(sink).finally(() => { authenticating = null; });
    return authenticating;
  }

  async function executeKw<T>(sink: ExchangeSink, model: string, method: string, args: unknown[] = [], kwargs: Record<string, unknown> = {}): Promise<T> {
    const finalKwargs: Record<string, unknown> = { ...kwargs };
    if (writeMethods.has(method)) {
      finalKwargs.context = { ...((kwargs.context as OdooContext | undefined) ?? {}), ...writeContext };
    }
    const label = `${model}.${method}`;
    const attempt = async () => {
      const currentUid = uid ?? (await authenticate());
      return call('/xmlrpc/2/object', 'execute_kw',
        [database, currentUid, passwordSlot, model, method, args, finalKwargs], label, sink);
    };
    try {
      return (await attempt()) as T;
    } catch (err) {
      if (!(err instanceof OnlineFaultError) || !err.isAccessDenied) throw err;
      log.info({ call: label }, 'FSO rejected the session, logging in again');
      uid = null;
      await authenticate();
      return (await attempt()) as T;
    }
  }

  function fieldTypes(model: string): Promise<FieldTypes> {
    let cached = typeCache.get(model);
    if (!cached) {
      cached = executeKw<Record<string, OdooFieldInfo>>(null, model, 'fields_get', [], { attributes: ['type'] })
        .then((info) => Object.fromEntries(Object.entries(info).map(([name, f]) => [name, f.type])));
      cached.catch(() => typeCache.delete(model));
      typeCache.set(model, cached);
    }
    return cached;
  }

  async function normalised(model: string, method: string, rows: unknown, types: FieldTypes): Promise<OnlineRecord[]> {
    const isRecord = (r: unknown) => typeof r === 'object' && r !== null && !Array.isArray(r) && typeof (r as { id?: unknown }).id === 'number';
    if (!Array.isArray(rows) || !rows.every(isRecord)) {
      throw new OnlineProtocolError(host.url, `expected a list of records with ids, got ${JSON.stringify(rows)?.slice(0, 80)}`, { call: `${model}.${method}` });
    }
    return rows.map((r) => normaliseOdooRecord(r as Record<string, unknown>, types));
  }

  function searchKwargs(options: SearchOptions | undefined): Record<string, unknown> {
    const kw: Record<string, unknown> = {};
    if (options?.limit !== undefined) kw.limit = options.limit;
    if (options?.offset !== undefined) kw.offset = options.offset;
    if (options?.order !== undefined) kw.order = options.order;
    if (options?.context) kw.context = options.context;
    return kw;
  }

  /** The client's methods; every call made through them hands its exchange to `sink`. */
  function view(sink: ExchangeSink): OnlineClient {
    const executeKwHere = <T>(model: string, method: string, args?: unknown[], kwargs?: Record<string, unknown>) =>
      executeKw<T>(sink, model, method, args, kwargs);
    const client: OnlineClient = {
      host,
      database,
      user,
      async version() {
        return (await call('/xmlrpc/2/common', 'version', [], 'common.version', sink)) as Record<string, unknown>;
      },
      authenticate: () => authenticate(sink),
      executeKw: executeKwHere,
      fieldTypes,
      async read(model, ids, fields, opts) {
        const types = await fieldTypes(model);
        const kw: Record<string, unknown> = {};
        if (fields) kw.fields = fields;
        if (opts?.context) kw.context = opts.context;
        return normalised(model, 'read', await executeKwHere(model, 'read', [asIds(ids)], kw), types);
      },
      async readOne(model, id, fields) {
        const rows = await client.searchRead(model, [['id', '=', id]], {
          fields, limit: 1, context: { active_test: false },
        });
        return rows[0] ?? null;
      },
      async search(model, domain, opts) {
        return (await executeKwHere(model, 'search', [toOdooValue(domain)], searchKwargs(opts))) as number[];
      },
      async searchRead(model, domain, opts) {
        const types = await fieldTypes(model);
        const kw = searchKwargs(opts);
        if (opts?.fields) kw.fields = opts.fields;
        return normalised(model, 'search_read', await executeKwHere(model, 'search_read', [toOdooValue(domain)], kw), types);
      },
      async searchCount(model, domain, opts) {
        const kw: Record<string, unknown> = opts?.context ? { context: opts.context } : {};
        return (await executeKwHere(model, 'search_count', [toOdooValue(domain)], kw)) as number;
      },
      async create(model, values) {
        const id = await executeKwHere(model, 'create', [toOdooValue(values)]);
        const single = Array.isArray(id) ? id[0] : id;
        if (typeof single !== 'number') throw new OnlineProtocolError(host.url, `returned no id but ${JSON.stringify(id)?.slice(0, 80)}`, { call: `${model}.create` });
        return single;
      },
      async createMany(model, values) {
        const ids = await executeKwHere(model, 'create', [values.map((v) => toOdooValue(v))]);
        if (!Array.isArray(ids) || ids.length !== values.length || !ids.every((id) => typeof id === 'number')) {
          throw new OnlineProtocolError(host.url, `returned no list of ${values.length} ids but ${JSON.stringify(ids)?.slice(0, 80)}`, { call: `${model}.create` });
        }
        return ids as number[];
      },
      async write(model, ids, values) {
        await executeKwHere(model, 'write', [asIds(ids), toOdooValue(values)]);
        return true;
      },
      async unlink(model, ids) {
        await executeKwHere(model, 'unlink', [asIds(ids)]);
        return true;
      },
      async fieldsGet(model, attributes) {
        const kw = attributes ? { attributes } : {};
        return (await executeKwHere(model, 'fields_get', [], kw)) as Record<string, OdooFieldInfo>;
      },
      recording() {
        const exchanges: OnlineExchange[] = [];
        return Object.assign(view((e) => exchanges.push(e)), { exchanges });
      },
      serverTime: () => lastServerDate,
      close: () => agent.destroy(),
    };
    return client;
  }

  return view(null);
}

/** the start of an answer that is not what was expected (a proxy's HTML page), on one line */
function bodyHint(body: string): string {
  const text = body.replace(/\s+/g, ' ').trim();
  if (!text) return ' (empty body)';
  return ` (answer began: ${JSON.stringify(text.slice(0, 80))})`;
}

function describeNetworkError(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ECONNREFUSED': return 'connection refused';
    case 'ENOTFOUND': return 'host name not found';
    case 'EAI_AGAIN': return 'host name lookup failed';
    case 'ECONNRESET': return 'connection reset';
    case 'EHOSTUNREACH': return 'host unreachable';
    case 'ETIMEDOUT': return 'connection timed out';
    default: return e.message || String(e.code);
  }
}
