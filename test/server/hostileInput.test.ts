/**
 * Hostile input at scale: fast-check generates well over 10,000 requests across every route —
 * query strings, JSON, form and XML bodies, broken percent and UTF-8 encodings, unknown charsets
 * and content encodings, huge numbers, unicode, duplicate keys, lists and objects for scalars.
 * For each: no 5xx; a 4xx names the field(s) at fault in `error_detail`; /job/create stores a row
 * exactly when it answers 200. The real app over real PostgreSQL, on 127.0.0.1.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { FlowRegistry } from '../../src/flows/registry.ts';
import { XMLParser } from 'fast-xml-parser';
import { createApp, MAX_PARAMETERS } from '../../src/server/app.ts';
import { createInspection } from '../../src/inspection/index.ts';
import { mountVisualizer } from '../../src/server/inspection.ts';
import { createMetrics } from '../../src/server/metrics.ts';
import { commitId } from '../../src/version.ts';
import { startHarness, type Harness } from '../support/engine.ts';

const TOKEN = 'hostile-token-0123456789';
const RUNS = Number(process.env.SOSYNC_HOSTILE_RUNS ?? 2900);

/** Fields any route reads, plus the parts of a request an answer may blame. */
const fieldNames = [
  'job_date', 'job_source_system', 'job_source_model', 'job_source_record_id', 'source_system', 'source_model', 'source_record_id',
  'job_source_sosync_write_date', 'job_source_fields', 'job_source_target_record_id', 'job_source_type', 'job_priority',
  'limit', 'offset', 'cursor', 'order', 'state', 'model', 'system', 'since', 'until', 'parent_job_id',
  'id', 'ids', 'error_code', 'job', 'child_jobs',
];
const requestParts = ['body', 'query', 'path', 'content-type', 'content-encoding', 'authorization', 'job_id'];
const blameable = new Set([...fieldNames, ...requestParts]);

interface Answer { status: number; type: string; text: string }

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

function request(base: URL, method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: base.hostname, port: base.port, method, path, headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) }, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const xml = new XMLParser();

/** The error_detail of a 4xx answer, JSON or XML. */
function errorDetail(answer: Answer): Record<string, unknown> | undefined {
  if (answer.type.includes('xml')) {
    const doc = xml.parse(answer.text) as Record<string, any>;
    const root = Object.entries(doc).find(([k]) => k !== '?xml')?.[1];
    return root?.error_detail;
  }
  return (JSON.parse(answer.text) as { error_detail?: Record<string, unknown> }).error_detail;
}

/** A field named by its place in a bulk or tree request ("[3].job_date", "child_jobs[0].job_source_model") is blamed by its name. */
const fieldName = (place: string) => place.split('.').at(-1)!.replace(/\[\d+\]$/, '');

function check(answer: Answer, what: string, requestKeys: readonly string[] = []): void {
  // the harness runs no protocol worker, and processprotocol reports that state as 503 by design
  const workerDown = what.startsWith('GET /service/processprotocol') && answer.status === 503;
  assert.ok(answer.status < 500 || workerDown, `${what} → ${answer.status} ${answer.text.slice(0, 300)}`);
  if (workerDown) return;
  if (answer.status >= 400) {
    const detail = errorDetail(answer);
    assert.ok(detail && typeof detail === 'object' && Object.keys(detail).length > 0, `${what} → ${answer.status} names no field: ${answer.text.slice(0, 300)}`);
    for (const [field, problem] of Object.entries(detail)) {
      assert.ok(blameable.has(fieldName(field)) || requestKeys.includes(field), `${what} → blames "${field}", which no request has`);
      assert.ok(typeof problem === 'string' && problem.length > 0, `${what} → "${field}" without a problem`);
    }
  }
}

// ---------- generators ----------

const text = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom('', ' ', 'fs', 'fso', 'FS', 'dbo.Thing', 'x.thing', 'delete', 'false', 'None', 'null', 'asc', 'desc', 'new,done', 'none'),
  fc.constantFrom('2026-03-01T10:00:00Z', '2026-03-01 10:00:00.123456', '2026-02-30T10:00:00Z', '99999-01-01T00:00:00Z', '+275760-09-13T00:00:00Z', '0000-01-01', '1970-01-01'),
  fc.constantFrom('1', '0', '-1', '2147483647', '2147483648', '9007199254740993', '1e400', '99999999999999999999999999', 'NaN', 'Infinity', '0x10', '1.5', '+7'),
  fc.bigInt().map(String),
  fc.double().map(String),
);
const key = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...fieldNames) }, fc.string({ unit: 'binary', maxLength: 12 }), fc.constantFrom('job_date[]', 'job_priority[a]', '__proto__', 'constructor', 'toString'));
const pairs = fc.array(fc.tuple(key, text), { maxLength: 14 });

/** Percent-encoded pairs, with broken escapes and raw separators mixed in. */
const rawQuery = fc.tuple(
  pairs,
  fc.array(fc.constantFrom('%', '%zz', '%E0%A4', '%C3', '%FF%FE', '&&', '=', '==', 'a=%', '%00', '+', ';x=1'), { maxLength: 3 }),
).map(([ps, junk]) => [...ps.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`), ...junk].join('&'));

const jsonScalar = fc.oneof(text, fc.integer(), fc.double(), fc.constantFrom(1e308, -1e308, 2 ** 53 + 2, 1e21, true, false, null));
const jsonValue = fc.oneof({ weight: 5, arbitrary: jsonScalar }, fc.array(jsonScalar, { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), jsonScalar, { maxKeys: 3 }), fc.jsonValue({ maxDepth: 3 }));
/** JSON text of an object, keys possibly repeated (JSON.stringify cannot repeat a key). */
const jsonBody = fc.array(fc.tuple(key, jsonValue), { maxLength: 12 }).map((entries) => `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'}`).join(',')}}`);

const brokenBytes = fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a));

const xmlBody = fc.array(fc.tuple(fc.constantFrom(...fieldNames), text), { maxLength: 8 })
  .map((ps) => `<?xml version="1.0"?><job>${ps.map(([k, v]) => `<${k}>${v.replace(/[<&]/g, '')}</${k}>`).join('')}</job>`);

type Body = { type: string; bytes: Buffer; encoding?: string };
const body: fc.Arbitrary<Body> = fc.oneof(
  { weight: 4, arbitrary: jsonBody.map((t) => ({ type: 'application/json', bytes: Buffer.from(t) })) },
  { weight: 3, arbitrary: rawQuery.map((t) => ({ type: 'application/x-www-form-urlencoded', bytes: Buffer.from(t) })) },
  xmlBody.map((t) => ({ type: 'application/xml', bytes: Buffer.from(t) })),
  fc.tuple(brokenBytes, fc.constantFrom('application/json', 'application/json; charset=utf-8', 'application/json; charset=latin1', 'application/json; charset=utf-16', 'application/json; charset=bogus', 'application/x-www-form-urlencoded; charset=klingon', 'text/plain', 'multipart/form-data; boundary=x', ''))
    .map(([bytes, type]) => ({ type, bytes })),
  fc.tuple(jsonBody, fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'bogus', 'gzip, gzip'))
    .map(([t, encoding]) => ({ type: 'application/json', bytes: Buffer.from(t), encoding })),
  fc.constantFrom('[1,2]', '"text"', '123', 'null', '{', '{"a":', '{"job_date":"\\ud800"}', '\ufeff{}').map((t) => ({ type: 'application/json', bytes: Buffer.from(t) })),
);

const accept = fc.constantFrom(undefined, 'application/json', 'application/xml', 'text/xml', '*/*', 'text/html', 'application/xml;q=0.1, application/json;q=0.9');
const getRoute = fc.oneof(
  { weight: 4, arbitrary: fc.constant('/job/create') },
  { weight: 3, arbitrary: fc.constant('/job/list') },
  fc.oneof(text, fc.nat().map(String), fc.constantFrom('0', '1', '2147483648', '-1', '1.0', '%zz', '%2F..%2F', '..', '')).map((id) => `/job/info/${id === '%zz' || id === '%2F..%2F' ? id : encodeURIComponent(id)}`),
  fc.constantFrom('/service/status', '/service/version', '/service/processjobs', '/service/processprotocol', '/service/forcedriftcheck',
    '/service/health', '/metrics', '/inspect/machines', '/inspect/actors', '/visualizer/', '/nowhere', '/job', '/job/info/',
    '/job/retryfailed', '/job/tree/1', '/job/tree/x', '/statistic/jobs', '/flow/map', '/service/quick-check'),
);

describe('hostile input', () => {
  let h: Harness;
  let server: http.Server;
  let base: URL;
  let sent = 0;
  const auth = { authorization: `Bearer ${TOKEN}` };
  const count = async () => Number((await h.table.db.query<{ n: string }>('SELECT count(*) AS n FROM sync_table')).rows[0].n);

  before(async () => {
    h = await startHarness('postgres');
    // nothing here should run: the jobs are only counted
    h.workers.supervisor.send({ type: 'STOP' });
    const inspection = createInspection(h.logger);
    const app = createApp({
      store: h.table.store,
      hasFlow: (m) => m === 'dbo.Thing' || m === 'x.thing',
      flows: new FlowRegistry([h.flow]),
      workers: h.workers.control,
      logger: h.logger,
      commitId,
      apiToken: TOKEN,
      metrics: createMetrics({ store: h.table.store, workers: h.workers.control }),
      extend: (a) => mountVisualizer(a, inspection),
    });
    server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });
  after(async () => {
    agent.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await h.close();
    assert.ok(sent >= 10_000 || RUNS < 2900, `only ${sent} requests were sent`);
  });

  const send = async (method: string, path: string, headers: Record<string, string>, bytes?: Buffer) => {
    sent++;
    return request(base, method, path, headers, bytes);
  };

  /** /job/create stores a row exactly when it says 200, and the row is the one it names. */
  async function createChecked(what: string, method: string, path: string, headers: Record<string, string>, bytes?: Buffer) {
    const before = await count();
    const answer = await send(method, path, headers, bytes);
    check(answer, what);
    const after = await count();
    if (answer.status === 200) {
      assert.equal(after, before + 1, `${what}: 200 but ${after - before} rows stored`);
      const id = answer.type.includes('xml') ? xml.parse(answer.text).job_result.job_id : JSON.parse(answer.text).job_id;
      assert.ok(await h.table.store.getJob(Number(id)), `${what}: job ${id} not found`);
    } else {
      assert.equal(after, before, `${what}: ${answer.status} but a row was stored`);
    }
  }

  test(`GET with generated query strings on every route (${RUNS} runs)`, async () => {
    await fc.assert(fc.asyncProperty(getRoute, rawQuery, accept, async (route, query, acc) => {
      const headers: Record<string, string> = { ...auth, ...(acc ? { accept: acc } : {}) };
      const path = `${route}${query ? `?${query}` : ''}`;
      if (route === '/job/create') await createChecked(`GET ${path}`, 'GET', path, headers);
      else check(await send('GET', path, headers), `GET ${path}`, [...new URLSearchParams(query).keys()]);
    }), { numRuns: RUNS });
  });

  test(`POST /job/create with generated bodies (${RUNS} runs)`, async () => {
    await fc.assert(fc.asyncProperty(body, rawQuery, accept, async (b, query, acc) => {
      const headers: Record<string, string> = { ...auth, ...(acc ? { accept: acc } : {}), ...(b.type ? { 'content-type': b.type } : {}), ...(b.encoding ? { 'content-encoding': b.encoding } : {}) };
      await createChecked(`POST /job/create?${query} ${b.type} ${b.encoding ?? ''} ${b.bytes.toString('utf8').slice(0, 200)}`, 'POST', `/job/create${query ? `?${query}` : ''}`, headers, b.bytes);
    }), { numRuns: RUNS });
  });

  test(`POST /job/bulk-create and /job/tree-create with generated bodies: all stored or none (${Math.round(RUNS / 2)} runs)`, async () => {
    const element = fc.oneof(
      fc.record({ job_date: fc.constant('2026-03-01T10:00:00Z'), job_source_system: fc.constant('fs'), job_source_model: fc.constant('dbo.Thing'), job_source_record_id: fc.nat({ max: 1000 }) }),
      jsonValue,
    );
    const bulk = fc.oneof(fc.array(element, { maxLength: 5 }), jsonValue);
    const tree = fc.oneof(fc.record({ job_date: fc.constant('2026-03-01T10:00:00Z'), job_source_system: fc.constant('fso'), job_source_model: fc.constant('x.thing'), job_source_record_id: fc.nat({ max: 1000 }), child_jobs: fc.array(element, { maxLength: 3 }) }), jsonValue);
    await fc.assert(fc.asyncProperty(fc.boolean(), bulk, tree, accept, async (isBulk, b, t, acc) => {
      const route = isBulk ? '/job/bulk-create' : '/job/tree-create';
      const headers: Record<string, string> = { ...auth, 'content-type': 'application/json', ...(acc ? { accept: acc } : {}) };
      const before = await count();
      const answer = await send('POST', route, headers, Buffer.from(JSON.stringify(isBulk ? b : t) ?? 'null'));
      check(answer, `POST ${route}`);
      if (answer.status !== 200) assert.equal(await count(), before, `POST ${route}: ${answer.status} but rows were stored`);
      else assert.ok((await count()) > before, `POST ${route}: 200 but nothing stored`);
    }), { numRuns: Math.round(RUNS / 2) });
  });

  test(`near-valid announcements: one field spoiled at a time (${RUNS} runs)`, async () => {
    const valid: Record<string, unknown> = { job_date: '2026-03-01T10:00:00Z', job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: 5 };
    const spoil = fc.tuple(fc.constantFrom(...Object.keys(valid), 'job_priority', 'job_source_target_record_id', 'job_source_type', 'job_source_sosync_write_date', 'job_source_fields'), jsonValue, fc.boolean(), accept);
    await fc.assert(fc.asyncProperty(spoil, async ([field, value, asForm, acc]) => {
      const params = { ...valid, [field]: value };
      const headers: Record<string, string> = { ...auth, ...(acc ? { accept: acc } : {}) };
      const bytes = asForm
        ? Buffer.from(new URLSearchParams(Object.entries(params).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v) ?? ''] as [string, string])).toString())
        : Buffer.from(JSON.stringify(params));
      headers['content-type'] = asForm ? 'application/x-www-form-urlencoded' : 'application/json';
      const what = `POST ${headers['content-type']} ${bytes.toString('utf8').slice(0, 300)}`;
      await createChecked(what, 'POST', '/job/create', headers, bytes);
    }), { numRuns: RUNS });
  });

  test(`without the token, nothing is stored and every answer is 401 naming authorization (${Math.round(RUNS / 2)} runs)`, async () => {
    const headerValue = fc.oneof(fc.constant(undefined), fc.string({ maxLength: 40 }).map((s) => `Bearer ${s}`), fc.constantFrom('Bearer', 'Basic x', `bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(1)}`, `Token ${TOKEN}`));
    await fc.assert(fc.asyncProperty(getRoute, headerValue, async (route, value) => {
      const headers: Record<string, string> = value === undefined ? {} : { authorization: value.replace(/[^\t\x20-\x7e]/g, '') };
      const before = await count();
      const answer = await send('GET', route, headers);
      if (route === '/service/health') {
        assert.equal(answer.status, 200);
        return;
      }
      if (route === '/visualizer/') return;
      assert.equal(answer.status, 401, `GET ${route} with ${JSON.stringify(headers)} → ${answer.status}`);
      assert.deepEqual(Object.keys(errorDetail(answer) ?? {}), ['authorization']);
      assert.equal(await count(), before);
    }), { numRuns: Math.round(RUNS / 2) });
  });

  describe('limits', () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => `p${i}=${i}`).join('&');

    test('a body over 1 MB → 413 naming body (JSON and form)', async () => {
      const before = await count();
      const big = Buffer.from(JSON.stringify({ job_date: '2026-03-01T10:00:00Z', job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: 5, pad: 'x'.repeat(1024 * 1024) }));
      for (const [type, bytes] of [['application/json', big], ['application/x-www-form-urlencoded', Buffer.from(`job_date=x&pad=${'y'.repeat(1024 * 1024)}`)]] as const) {
        const answer = await send('POST', '/job/create', { ...auth, 'content-type': type }, bytes);
        assert.equal(answer.status, 413, type);
        assert.match(String(errorDetail(answer)?.body), /is larger than 1 MB/);
      }
      assert.equal(await count(), before);
    });

    test(`more than ${MAX_PARAMETERS} parameters → 400 (query, form, JSON); exactly ${MAX_PARAMETERS} pass the limit`, async () => {
      const before = await count();
      const query = await send('GET', `/job/list?${many(MAX_PARAMETERS + 1)}`, auth);
      assert.equal(query.status, 400);
      assert.match(String(errorDetail(query)?.query), /has 101 parameters; at most 100/);
      const form = await send('POST', '/job/create', { ...auth, 'content-type': 'application/x-www-form-urlencoded' }, Buffer.from(many(MAX_PARAMETERS + 1)));
      assert.equal(form.status, 400);
      assert.match(String(errorDetail(form)?.body), /more than 100 parameters/);
      const json = await send('POST', '/job/create', { ...auth, 'content-type': 'application/json' }, Buffer.from(JSON.stringify(Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`p${i}`, i])))));
      assert.equal(json.status, 400);
      assert.match(String(errorDetail(json)?.body), /has 101 parameters/);
      assert.equal((await send('GET', `/job/list?${many(MAX_PARAMETERS)}`, auth)).status, 200);
      assert.equal(await count(), before);
    });

    test('a field given twice or as a list is refused, naming it', async () => {
      const answer = await send('GET', '/job/create?job_date=2026-03-01T10:00:00Z&job_source_system=fs&job_source_model=dbo.Thing&job_source_record_id=5&job_source_record_id=6', auth);
      assert.equal(answer.status, 400);
      assert.deepEqual(errorDetail(answer), { job_source_record_id: 'is given more than once or as a list; send one value' });
      const list = await send('GET', '/job/list?state=new&state=done', auth);
      assert.equal(list.status, 400);
      assert.match(String(errorDetail(list)?.state), /more than once/);
    });
  });
});
