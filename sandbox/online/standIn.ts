/**
 * The FSO stand-in: an HTTP server speaking Odoo's external XML-RPC API (`/xmlrpc/2/common`,
 * `/xmlrpc/2/object`) over an in-memory store, behaving like FSO where sosync can tell:
 * - `write_date`/`create_date` maintained, `false` for empty values, `[id, name]` for many2one;
 * - Faults with Odoo-like faultStrings (message line, then a Python traceback);
 * - a change of a tracked field of a synced model sets `sosync_write_date` and announces a sync
 *   job to sosync — unless the call's context says `create_sync_job: false`, in which case the
 *   given values (incl. `sosync_write_date`) are stored as they are.
 * Fault switches let tests refuse connections, stall, or answer with Faults.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../../src/log.ts';
import { parseMethodCall, serializeFault, serializeMethodResponse } from '../../src/adapters/online/wire.ts';
import { formatOdooDatetimeMicro } from '../../src/adapters/online/values.ts';
import { Announcer, type AnnouncementOutcome } from './announcer.ts';
import { OdooException, accessDenied, missingRecord } from './faults.ts';
import { OnlineStore, type Row } from './store.ts';
import { seedOnline, type SeedOptions, type SeededOnline } from './seed.ts';

export interface OnlineStandInOptions {
  /** 0 (default) picks a free port */
  port?: number;
  /** listen address; default 127.0.0.1 */
  host?: string;
  /** the Odoo database name (sosync's instance name) */
  database: string;
  users: { login: string; password: string; name?: string }[];
  /** sosync's `/job/create` URL; without it nothing is announced */
  announceUrl?: string | null;
  /** announcement body: form (default) or JSON */
  announceFormat?: 'form' | 'json';
  /** first retry delay of a failed announcement, doubled each time; default 200 ms */
  announceRetryDelayMs?: number;
  announceMaxAttempts?: number;
  logger: Logger;
  /** fill with demo data (true = default amounts) */
  seed?: SeedOptions | boolean;
  /** serve this store (e.g. one restored from a snapshot) instead of a new, empty one */
  store?: OnlineStore;
  /** makes the store's changes durable; called before a call that changed something is answered */
  journal?: { commit(): void };
  /** ms every XML-RPC call waits before it is answered, so a benchmark sees a network's round trip; default 0 */
  latencyMs?: number;
}

export interface OnlineFaults {
  /** on: stop listening (connections are refused); off: listen again on the same port */
  refuseConnections(on: boolean): Promise<void>;
  /** on: accept requests and never answer them */
  stall(on: boolean): void;
  /** answer the next XML-RPC call with a Fault carrying this message */
  failNext(message: string, faultCode?: number): void;
  /** answer every call with a Fault carrying this message; null switches it off */
  failAll(message: string | null, faultCode?: number): void;
  /**
   * Answer every call with these bytes instead of Odoo's answer, as a broken proxy or server
   * would: an HTML error page, a body that is not XML, a Fault without a traceback, a value of the
   * wrong type. `truncate`: announce the whole body's length, send half of it, then drop the
   * connection. null switches it off.
   */
  answerRaw(answer: RawAnswer | null): void;
  /**
   * awaited with each model call before it runs: throwing fails that call as a Fault, and a change
   * made here (to FSO or FS) lands between two calls of the client; null switches it off
   */
  onCall(hook: ((call: ModelCall) => void | Promise<void>) | null): void;
}

export interface RawAnswer {
  status: number;
  contentType?: string;
  body: string;
  truncate?: boolean;
}

/** One execute_kw call as the stand-in received it. */
export interface ModelCall {
  model: string;
  method: string;
  args: unknown[];
}

export interface OnlineStandIn {
  port: number;
  /** http://host:port — what `online_host` takes */
  url: string;
  store: OnlineStore;
  faults: OnlineFaults;
  seeded: SeededOnline | null;
  /** change where announcements go (sosync may start after the stand-in) */
  setAnnounceUrl(url: string | null, headers?: Record<string, string>): void;
  /** XML-RPC calls received (any service, answered or not): round trips, counted */
  readonly callCount: number;
  /** resolves when every announcement so far was delivered or given up */
  flushAnnouncements(): Promise<void>;
  /** delivered / given-up announcements, in order */
  announcements(): AnnouncementOutcome[];
  /** act like a person editing in FSO: the change is announced as FSO would */
  userCreate(model: string, values: Row): number;
  userWrite(model: string, ids: number | number[], values: Row): void;
  userUnlink(model: string, ids: number | number[]): void;
  close(): Promise<void>;
}

export type OdooContext = Record<string, unknown>;

/** Python-like binding of positional and keyword arguments to a method signature. */
function bind(method: string, signature: string[], args: unknown[], kwargs: Record<string, unknown>): Record<string, unknown> {
  if (args.length > signature.length) {
    throw new OdooException(`${method}() takes at most ${signature.length + 1} arguments (${args.length + 1} given)`, 'TypeError');
  }
  const bound: Record<string, unknown> = {};
  signature.forEach((name, i) => { if (i < args.length) bound[name] = args[i]; });
  for (const [name, value] of Object.entries(kwargs)) {
    if (name === 'context') continue;
    if (!signature.includes(name)) throw new OdooException(`${method}() got an unexpected keyword argument '${name}'`, 'TypeError');
    if (name in bound) throw new OdooException(`${method}() got multiple values for argument '${name}'`, 'TypeError');
    bound[name] = value;
  }
  return bound;
}

function idList(value: unknown): number[] {
  const list = Array.isArray(value) ? value : [value];
  if (!list.every((v) => typeof v === 'number' && Number.isInteger(v))) {
    throw new OdooException(`Invalid ids: expected a list of integers`, 'TypeError');
  }
  return list as number[];
}

function optionalInt(value: unknown): number | undefined {
  return typeof value === 'number' ? value : undefined;
}

/** Odoo never sends nil: null/undefined become false. */
function forWire(value: unknown): unknown {
  if (value === null || value === undefined) return false;
  if (Array.isArray(value)) return value.map(forWire);
  if (value instanceof Date) return value;
  if (typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, forWire(v)]));
  }
  return value;
}

const equalStored = (a: unknown, b: unknown) => (a ?? null) === (b ?? null);

export async function startOnlineStandIn(options: OnlineStandInOptions): Promise<OnlineStandIn> {
  const log = options.logger.child({ component: 'fso-stand-in' });
  const store = options.store ?? new OnlineStore();
  const latencyMs = options.latencyMs ?? 0;
  let callCount = 0;
  for (const u of options.users) store.addUser(u.login, u.password, u.name);
  const seeded = options.seed ? seedOnline(store, options.seed === true ? {} : options.seed) : null;
  const announcer = new Announcer({
    url: options.announceUrl ?? null,
    format: options.announceFormat,
    retryDelayMs: options.announceRetryDelayMs,
    maxAttempts: options.announceMaxAttempts,
    logger: log,
  });

  // --- FSO's behaviour on top of the store --------------------------------------------------

  function announce(model: string, id: number, sosyncWriteDate: Date, type?: 'delete'): void {
    announcer.announce({
      job_date: formatOdooDatetimeMicro(new Date()),
      source_system: 'fso',
      source_model: model,
      source_record_id: id,
      job_source_sosync_write_date: formatOdooDatetimeMicro(sosyncWriteDate),
      ...(type ? { job_source_type: type } : {}),
    });
  }

  const announces = (model: string, context: OdooContext) =>
    context.create_sync_job !== false && (store.model(model).tracked?.length ?? 0) > 0;

  function create(model: string, values: Row, context: OdooContext, uid: number): number {
    if (!announces(model, context)) return store.create(model, values, { uid });
    const stamp = new Date();
    const id = store.create(model, { ...values, sosync_write_date: stamp.toISOString() }, { uid });
    announce(model, id, stamp);
    return id;
  }

  function write(model: string, ids: number[], values: Row, context: OdooContext, uid: number): void {
    if (!announces(model, context)) return store.update(model, ids, values, { uid });
    const tracked = store.model(model).tracked!;
    const before = new Map(ids.map((id) => [id, store.get(model, id)]));
    store.update(model, ids, values, { uid });
    for (const id of ids) {
      const after = store.get(model, id)!;
      const old = before.get(id)!;
      if (!tracked.some((f) => !equalStored(old[f], after[f]))) continue;
      const stamp = new Date();
      store.update(model, [id], { sosync_write_date: stamp.toISOString() }, { uid });
      announce(model, id, stamp);
    }
  }

  function unlink(model: string, ids: number[], context: OdooContext, uid: number): void {
    store.remove(model, ids, { uid });
    if (!announces(model, context)) return;
    for (const id of ids) announce(model, id, new Date(), 'delete');
  }

  // --- XML-RPC services ---------------------------------------------------------------------

  function checkDatabase(db: unknown): void {
    if (db !== options.database) {
      throw new OdooException(`FATAL:  database "${String(db)}" does not exist`, 'psycopg2.OperationalError');
    }
  }

  function common(method: string, params: unknown[]): unknown {
    switch (method) {
      case 'version':
        return { server_version: '8.0', server_version_info: [8, 0, 0, 'final', 0, ''], server_serie: '8.0', protocol_version: 1 };
      case 'login':
      case 'authenticate': {
        const [db, login, password] = params;
        checkDatabase(db);
        const uid = store.checkLogin(login, password);
        log.debug({ login, ok: uid !== false }, 'login');
        return uid;
      }
      default:
        throw new OdooException(`Method not available ${method}`, 'NameError');
    }
  }

  function callModel(model: string, method: string, args: unknown[], kwargs: Record<string, unknown>, uid: number): unknown {
    store.model(model);
    if (method.startsWith('_')) {
      throw new OdooException(`Private methods (such as ${method}) cannot be called remotely.`, 'odoo.exceptions.AccessError');
    }
    const context: OdooContext = kwargs.context && typeof kwargs.context === 'object' ? kwargs.context as OdooContext : {};
    const activeTest = context.active_test !== false;
    switch (method) {
      case 'search': {
        const a = bind(method, ['domain', 'offset', 'limit', 'order', 'count'], args, kwargs);
        const ids = store.search(model, a.domain, { offset: optionalInt(a.offset), limit: optionalInt(a.limit), order: typeof a.order === 'string' ? a.order : undefined, activeTest });
        return a.count === true ? ids.length : ids;
      }
      case 'search_count': {
        const a = bind(method, ['domain'], args, kwargs);
        return store.search(model, a.domain, { activeTest }).length;
      }
      case 'search_read': {
        const a = bind(method, ['domain', 'fields', 'offset', 'limit', 'order'], args, kwargs);
        const ids = store.search(model, a.domain ?? [], { offset: optionalInt(a.offset), limit: optionalInt(a.limit), order: typeof a.order === 'string' ? a.order : undefined, activeTest });
        const fields = Array.isArray(a.fields) ? a.fields as string[] : undefined;
        return ids.map((id) => store.toOdoo(model, id, fields));
      }
      case 'read': {
        const a = bind(method, ['ids', 'fields'], args, kwargs);
        const ids = idList(a.ids);
        const missing = ids.filter((id) => !store.exists(model, id));
        if (missing.length > 0) throw missingRecord(model, missing, uid);
        const fields = Array.isArray(a.fields) ? a.fields as string[] : undefined;
        return ids.map((id) => store.toOdoo(model, id, fields));
      }
      case 'name_get': {
        const a = bind(method, ['ids'], args, kwargs);
        return idList(a.ids).filter((id) => store.exists(model, id)).map((id) => [id, store.displayName(model, id)]);
      }
      case 'exists': {
        const a = bind(method, ['ids'], args, kwargs);
        return idList(a.ids).filter((id) => store.exists(model, id));
      }
      case 'fields_get': {
        const a = bind(method, ['allfields', 'attributes'], args, kwargs);
        return store.fieldsGet(model, a.allfields as string[] | null, a.attributes as string[] | null);
      }
      case 'create': {
        const a = bind(method, ['vals'], args, kwargs);
        if (Array.isArray(a.vals)) return a.vals.map((v) => create(model, v as Row, context, uid));
        return create(model, a.vals as Row, context, uid);
      }
      case 'write': {
        const a = bind(method, ['ids', 'vals'], args, kwargs);
        write(model, idList(a.ids), a.vals as Row, context, uid);
        return true;
      }
      case 'unlink': {
        const a = bind(method, ['ids'], args, kwargs);
        unlink(model, idList(a.ids), context, uid);
        return true;
      }
      default:
        throw new OdooException(`type object '${model}' has no attribute '${method}'`, 'AttributeError');
    }
  }

  function object(method: string, params: unknown[]): unknown {
    if (method !== 'execute_kw' && method !== 'execute') throw new OdooException(`Method not available ${method}`, 'NameError');
    const [db, uid, password, model, modelMethod, ...rest] = params;
    checkDatabase(db);
    if (!store.checkUid(uid, password)) throw accessDenied();
    if (typeof model !== 'string' || typeof modelMethod !== 'string') {
      throw new OdooException('execute_kw() expects a model name and a method name', 'TypeError');
    }
    const args = method === 'execute_kw' ? (Array.isArray(rest[0]) ? rest[0] : []) : rest;
    const kwargs = method === 'execute_kw' && rest[1] && typeof rest[1] === 'object' && !Array.isArray(rest[1])
      ? rest[1] as Record<string, unknown> : {};
    return callModel(model, modelMethod, args, kwargs, uid as number);
  }

  const services: Record<string, (method: string, params: unknown[]) => unknown> = {
    '/xmlrpc/2/common': common, '/xmlrpc/common': common,
    '/xmlrpc/2/object': object, '/xmlrpc/object': object,
  };

  // --- fault switches and HTTP --------------------------------------------------------------

  let failNextFault: { message: string; code: number } | null = null;
  let failAllFault: { message: string; code: number } | null = null;
  let stalling = false;
  let rawAnswer: RawAnswer | null = null;
  let callHook: ((call: ModelCall) => void | Promise<void>) | null = null;
  const sockets = new Set<Socket>();

  function faultBody(e: OdooException, where: string): string {
    return serializeFault({ faultCode: e.faultCode, faultString: e.faultString(where) });
  }

  async function answer(path: string, body: string): Promise<string> {
    const service = services[path]!;
    let call: { method: string; params: unknown[] };
    try {
      call = await parseMethodCall(body);
    } catch (err) {
      return faultBody(new OdooException(`Invalid XML-RPC request: ${(err as Error).message}`, 'ValueError'), 'dispatch');
    }
    const where = `${path.split('/').pop()}.${call.method}`;
    const injected = failNextFault ?? failAllFault;
    if (injected) {
      failNextFault = null;
      return serializeFault({ faultCode: injected.code, faultString: new OdooException(injected.message, 'odoo.exceptions.UserError').faultString(where) });
    }
    if (callHook && (call.method === 'execute_kw' || call.method === 'execute')) {
      const [, , , model, modelMethod, ...rest] = call.params;
      try {
        await callHook({ model: String(model), method: String(modelMethod), args: Array.isArray(rest[0]) ? rest[0] : rest });
      } catch (err) {
        return faultBody(err instanceof OdooException ? err : new OdooException((err as Error).message, 'odoo.exceptions.UserError'), where);
      }
    }
    try {
      return serializeMethodResponse(forWire(service(call.method, call.params)));
    } catch (err) {
      if (err instanceof OdooException) {
        log.debug({ call: where, fault: err.message }, 'fault');
        return faultBody(err, where);
      }
      log.error({ err }, 'FSO stand-in: unexpected error');
      return faultBody(new OdooException(`Internal error: ${(err as Error).message}`, 'ValueError'), where);
    }
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (stalling) return; // keep the request open, never answer
      if (rawAnswer) {
        const raw = rawAnswer;
        const payload = Buffer.from(raw.body, 'utf8');
        res.writeHead(raw.status, { 'Content-Type': raw.contentType ?? 'text/xml; charset=utf-8', 'Content-Length': payload.length });
        if (raw.truncate) {
          res.write(payload.subarray(0, Math.floor(payload.length / 2)), () => res.socket?.destroy());
        } else {
          res.end(payload);
        }
        return;
      }
      const path = (req.url ?? '/').split('?')[0];
      if (!services[path]) {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not Found');
        return;
      }
      if (req.method !== 'POST') {
        res.writeHead(405, { Allow: 'POST', 'Content-Type': 'text/plain' }).end('Method Not Allowed');
        return;
      }
      callCount++;
      void answer(path, Buffer.concat(chunks).toString('utf8')).then(async (xml) => {
        if (latencyMs > 0) await delay(latencyMs);
        try {
          options.journal?.commit();
        } catch (err) {
          // a write that is not on disk is not acknowledged
          log.error({ err }, 'FSO stand-in: cannot write its journal');
          res.writeHead(500, { 'Content-Type': 'text/plain' }).end('cannot persist the change');
          return;
        }
        const payload = Buffer.from(xml, 'utf8');
        res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8', 'Content-Length': payload.length });
        res.end(payload);
      });
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const bindHost = options.host ?? '127.0.0.1';
  let port = options.port ?? 0;
  let listening = false;

  function listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, bindHost, () => {
        server.off('error', reject);
        const address = server.address();
        if (address && typeof address === 'object') port = address.port;
        listening = true;
        resolve();
      });
    });
  }

  function stopListening(): Promise<void> {
    if (!listening) return Promise.resolve();
    listening = false;
    return new Promise((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
  }

  await listen();
  const hostForUrl = bindHost.includes(':') ? `[${bindHost}]` : bindHost;
  log.info({ port, database: options.database, seeded: seeded !== null }, 'FSO stand-in listening');

  const faults: OnlineFaults = {
    async refuseConnections(on) {
      if (on) await stopListening();
      else if (!listening) await listen();
    },
    stall(on) {
      stalling = on;
    },
    failNext(message, faultCode = 2) {
      failNextFault = { message, code: faultCode };
    },
    failAll(message, faultCode = 2) {
      failAllFault = message === null ? null : { message, code: faultCode };
    },
    answerRaw(answer) {
      rawAnswer = answer;
    },
    onCall(hook) {
      callHook = hook;
    },
  };

  const userContext: OdooContext = {};
  const durably = <T,>(change: () => T): T => {
    try {
      return change();
    } finally {
      options.journal?.commit();
    }
  };
  const ids = (v: number | number[]) => (Array.isArray(v) ? v : [v]);
  const [adminUid] = store.search('res.users', [], { limit: 1 });

  return {
    get port() { return port; },
    get url() { return `http://${hostForUrl}:${port}`; },
    get callCount() { return callCount; },
    store,
    faults,
    seeded,
    setAnnounceUrl(url, headers = {}) {
      announcer.url = url;
      announcer.headers = headers;
    },
    flushAnnouncements: () => announcer.flush(),
    announcements: () => [...announcer.outcomes],
    userCreate: (model, values) => durably(() => create(model, values, userContext, adminUid ?? 1)),
    userWrite: (model, v, values) => durably(() => write(model, ids(v), values, userContext, adminUid ?? 1)),
    userUnlink: (model, v) => durably(() => unlink(model, ids(v), userContext, adminUid ?? 1)),
    async close() {
      await announcer.close();
      stalling = false;
      await stopListening();
    },
  };
}
