/**
 * The production FSO client against the FSO stand-in, over real HTTP and XML-RPC.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import {
  createOnlineClient, OnlineAuthenticationError, OnlineFaultError, OnlineProtocolError, OnlineUnavailableError,
  type OnlineClient,
} from '../../src/adapters/online/index.ts';
import { createLogger, silentLogger } from '../../src/log.ts';
import { startOnlineStandIn, type OnlineStandIn } from '../../sandbox/online/index.ts';
import { startWireTap, type WireTap } from './support.ts';

const password = 'pa<ss&wörd]]>1';
const database = 'demo';

let fso: OnlineStandIn;
let tap: WireTap;
let client: OnlineClient;

function clientFor(host: string, overrides: Partial<{ user: string; password: string; database: string; timeoutMs: number }> = {}) {
  return createOnlineClient({ host, database, user: 'sosync', password, timeoutMs: 5000, ...overrides }, silentLogger());
}

async function rejectsWith<E extends Error>(promise: Promise<unknown>, type: new (...a: any[]) => E): Promise<E> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof type, `expected ${type.name}, got ${(err as Error)?.name}: ${(err as Error)?.message}`);
    return err as E;
  }
  assert.fail(`expected ${type.name}, but the call succeeded`);
}

before(async () => {
  fso = await startOnlineStandIn({ database, users: [{ login: 'sosync', password }], logger: silentLogger(), seed: true });
  tap = await startWireTap(fso.url);
  client = clientFor(tap.url);
});

after(async () => {
  client.close();
  await tap.close();
  await fso.close();
});

describe('calls', () => {
  test('version needs no login; authenticate returns the uid', async () => {
    const v = await client.version();
    assert.equal(typeof v.server_version, 'string');
    const uid = await client.authenticate();
    assert.equal(uid, fso.store.checkLogin('sosync', password));
  });

  test('a refused login is an OnlineAuthenticationError naming user and database', async () => {
    const bad = clientFor(fso.url, { password: 'wrong' });
    const err = await rejectsWith(bad.authenticate(), OnlineAuthenticationError);
    assert.match(err.message, /"sosync".*"demo"/);
    assert.doesNotMatch(err.message, /wrong/);
    bad.close();
  });

  test('an unknown database is a fault with the database error', async () => {
    const bad = clientFor(fso.url, { database: 'nope' });
    const err = await rejectsWith(bad.authenticate(), OnlineFaultError);
    assert.equal(err.odooMessage, 'FATAL:  database "nope" does not exist');
    bad.close();
  });

  test('create, read, write, unlink a company', async () => {
    const id = await client.create('res.company', { name: 'Neue Stiftung', sosync_fs_id: 77 });
    let [row] = await client.read('res.company', id, ['name', 'sosync_fs_id']);
    assert.deepEqual(row, { id, name: 'Neue Stiftung', sosync_fs_id: 77 });
    assert.equal(await client.write('res.company', id, { name: 'Umbenannt', sosync_fs_id: null }), true);
    [row] = await client.read('res.company', [id], ['name', 'sosync_fs_id']);
    assert.deepEqual(row, { id, name: 'Umbenannt', sosync_fs_id: null });
    assert.equal(await client.unlink('res.company', id), true);
    assert.equal(fso.store.exists('res.company', id), false);
    assert.equal(await client.readOne('res.company', id), null);
  });

  test('search with order, offset and limit; searchRead; searchCount', async () => {
    const all = await client.search('res.partner', [], { order: 'id desc' });
    const expected = fso.store.all('res.partner').filter((r) => r.active).map((r) => r.id as number).sort((a, b) => b - a);
    assert.deepEqual(all, expected);
    assert.deepEqual(await client.search('res.partner', [], { order: 'id desc', offset: 2, limit: 3 }), expected.slice(2, 5));
    assert.equal(await client.searchCount('res.partner', []), expected.length);
    const rows = await client.searchRead('res.partner', [['id', 'in', expected.slice(0, 2)]], { fields: ['lastname'], order: 'id' });
    assert.deepEqual(rows.map((r) => r.id), expected.slice(0, 2).reverse());
    assert.deepEqual(Object.keys(rows[0]).sort(), ['id', 'lastname']);
    const byName = await client.search('res.partner', [], { order: 'lastname asc, id desc', limit: 1 });
    const firstByName = fso.store.all('res.partner').sort((a, b) => String(a.lastname).localeCompare(String(b.lastname), 'en') || (b.id as number) - (a.id as number))[0];
    assert.deepEqual(byName, [firstByName.id]);
  });

  test('fieldsGet reports Odoo types and relations', async () => {
    const fields = await client.fieldsGet('res.partner.bpk', ['type', 'relation', 'required']);
    assert.deepEqual(fields.BPKRequestPartnerID, { type: 'many2one', relation: 'res.partner', required: true });
    assert.equal(fields.BPKRequestDate.type, 'datetime');
    assert.equal(fields.BPKRequestBirthdate.type, 'date');
    const types = await client.fieldTypes('res.partner');
    assert.equal(types.country_id, 'many2one');
    assert.equal(types.newsletter_web, 'boolean');
  });

  test('archived records are hidden from search but found by readOne', async () => {
    const id = fso.store.create('res.partner', { firstname: 'Archiv', lastname: 'Person', active: false });
    assert.deepEqual(await client.search('res.partner', [['id', '=', id]]), []);
    assert.deepEqual(await client.search('res.partner', [['id', '=', id]], { context: { active_test: false } }), [id]);
    const row = await client.readOne('res.partner', id, ['name', 'active']);
    assert.deepEqual(row, { id, name: 'Archiv Person', active: false });
  });

  test('sosync.job has the sync_table column names; its Datetime and char dates come back as sent', async () => {
    const id = await client.create('sosync.job', {
      job_id: 42, job_state: 'done', job_date: new Date('2024-02-03T04:05:06Z'), job_start: '2024-02-03T04:05:06.789Z',
      sync_target_request: '<xml/>', sync_source_system: 'fs',
    });
    const fields = ['job_id', 'job_state', 'job_date', 'job_start', 'sync_target_request', 'sync_source_system', 'job_error_code'];
    const [row] = await client.read('sosync.job', id, fields);
    assert.deepEqual(row, {
      id, job_id: 42, job_state: 'done', job_date: new Date('2024-02-03T04:05:06Z'), job_start: '2024-02-03T04:05:06.789Z',
      sync_target_request: '<xml/>', sync_source_system: 'fs', job_error_code: null,
    });
    assert.deepEqual(await client.search('sosync.job', [['job_id', '=', 42]]), [id]);
  });
});

describe("Odoo's conventions", () => {
  test('false → null, many2one → { id, name }, datetimes → Date, dates stay "YYYY-MM-DD", booleans stay booleans', async () => {
    const at = fso.store.countryId('AT')!;
    const id = fso.store.create('res.partner', { firstname: 'Eva', lastname: 'Konvention', country_id: at, birthdate_web: '1977-07-07', newsletter_web: false, donation_receipt_web: true });
    const recorded = client.recording();
    const [row] = await recorded.read('res.partner', id, ['name', 'email', 'country_id', 'birthdate_web', 'write_date', 'create_date', 'newsletter_web', 'donation_receipt_web', 'sosync_fs_id']);
    assert.equal(row.email, null);
    assert.equal(row.sosync_fs_id, null);
    assert.deepEqual(row.country_id, { id: at, name: 'Austria' });
    assert.equal(row.birthdate_web, '1977-07-07');
    assert.equal(row.newsletter_web, false);
    assert.equal(row.donation_receipt_web, true);
    assert.ok(row.write_date instanceof Date);
    const stored = fso.store.get('res.partner', id)!;
    assert.equal((row.write_date as Date).toISOString().slice(0, 19).replace('T', ' '), stored.write_date);
    // the raw answer really carried Odoo's forms
    const answer = recorded.exchanges.at(-1)!.response;
    assert.match(answer, /<name>email<\/name><value><boolean>0<\/boolean><\/value>/);
    assert.match(answer, new RegExp(`<name>country_id</name><value><array><data><value><int>${at}</int></value><value><string>Austria</string></value>`));
    assert.match(answer, /<name>write_date<\/name><value><string>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d<\/string>/);
  });

  test('values written: Date → UTC "YYYY-MM-DD HH:MM:SS", null → false, { id, name } → id', async () => {
    const [partnerId] = fso.seeded!.partnerIds;
    const [companyId] = fso.seeded!.companyIds;
    const recorded = client.recording();
    const id = await recorded.create('res.partner.bpk', {
      BPKRequestPartnerID: { id: partnerId, name: 'whatever' },
      BPKRequestCompanyID: companyId,
      BPKRequestDate: new Date('2024-05-06T07:08:09.999Z'),
      BPKPrivate: null,
    });
    const stored = fso.store.get('res.partner.bpk', id)!;
    assert.equal(stored.BPKRequestDate, '2024-05-06 07:08:09');
    assert.equal(stored.BPKRequestPartnerID, partnerId);
    assert.equal(stored.BPKPrivate, null);
    assert.match(recorded.exchanges.at(-1)!.request, /<name>BPKPrivate<\/name><value><boolean>0<\/boolean>/);
    const [row] = await client.read('res.partner.bpk', id, ['BPKRequestDate', 'BPKRequestPartnerID']);
    assert.deepEqual(row.BPKRequestDate, new Date('2024-05-06T07:08:09Z'));
    assert.equal((row.BPKRequestPartnerID as { id: number }).id, partnerId);
  });

  test('every write carries the loop-guard context', async () => {
    const id = await client.create('res.company', { name: 'Kontext' });
    await client.write('res.company', id, { name: 'Kontext 2' });
    await client.unlink('res.company', id);
    const writes = tap.exchanges.slice(-3);
    for (const w of writes) {
      assert.match(w.request, /<name>context<\/name><value><struct><member><name>create_sync_job<\/name><value><boolean>0<\/boolean><\/value><\/member><member><name>lang<\/name><value><string>de_DE<\/string>/);
    }
    // the loop guard wins over a caller's context
    await client.executeKw('res.company', 'create', [{ name: 'Trotzdem' }], { context: { create_sync_job: true, tz: 'Europe/Vienna' } });
    const last = tap.exchanges[tap.exchanges.length - 1].request;
    assert.match(last, /<name>tz<\/name><value><string>Europe\/Vienna<\/string>/);
    assert.match(last, /<name>create_sync_job<\/name><value><boolean>0<\/boolean>/);
    assert.doesNotMatch(last, /<name>create_sync_job<\/name><value><boolean>1/);
  });
});

describe('faults', () => {
  const cases: [string, () => Promise<unknown>, RegExp][] = [
    ['unknown model', () => client.executeKw('res.nothing', 'search', [[]]), /^Object res\.nothing doesn't exist$/],
    ['unknown field in read', () => client.executeKw('res.partner', 'read', [[1]], { fields: ['no_such_field'] }), /^Invalid field 'no_such_field' on model 'res\.partner'$/],
    ['unknown field in write', () => client.write('res.partner', 1, { no_such_field: 1 }), /^Invalid field 'no_such_field' on model 'res\.partner'$/],
    ['unknown method', () => client.executeKw('res.partner', 'frobnicate', [[1]]), /^type object 'res\.partner' has no attribute 'frobnicate'$/],
    ['private method', () => client.executeKw('res.partner', '_compute', [[1]]), /^Private methods \(such as _compute\) cannot be called remotely\.$/],
    ['missing record', () => client.read('res.partner', [999999]), /^Record does not exist or has been deleted\.$/],
    ['missing record on write', () => client.write('res.company', 999999, { name: 'x' }), /^Record does not exist or has been deleted\.$/],
    ['bad operator', () => client.search('res.partner', [['name', 'resembles' as '=', 'x']]), /^Invalid operator 'resembles' in domain term \('name', 'resembles', 'x'\)$/],
    ['malformed leaf', () => client.executeKw('res.partner', 'search', [[['name', '=']]]), /^Invalid leaf \['name', '='\]$/],
    ['dangling operator', () => client.executeKw('res.partner', 'search', [['|', ['id', '=', 1]]]), /^This domain is syntactically not correct/],
    ['unknown field in domain', () => client.search('res.partner', [['nope', '=', 1]]), /^Invalid field 'nope' in leaf/],
    ['bad selection value', () => client.write('res.partner', 1, { gender: 'robot' }), /^Wrong value for res\.partner\.gender: 'robot'/],
    ['bad order', () => client.search('res.partner', [], { order: 'nope desc' }), /^Invalid "order" specified/],
    ['required field emptied', () => client.write('res.partner.bpk', fso.seeded!.bpkIds[0], { BPKRequestCompanyID: false }), /^null value in column "BPKRequestCompanyID" violates not-null constraint$/],
  ];
  for (const [name, run, message] of cases) {
    test(`${name} → OnlineFaultError with Odoo's message and traceback`, async () => {
      const err = await rejectsWith(run(), OnlineFaultError);
      assert.match(err.odooMessage, message);
      assert.match(err.faultString, /Traceback \(most recent call last\):/);
      assert.ok(err.faultString.startsWith(err.odooMessage));
      assert.match(err.message, /^FSO res\.[a-z.]+\.[a-z_]+ failed: /);
      assert.match(err.exchange!.response, /<fault>/, 'the error carries its own exchange');
      assert.match(err.exchange!.request, /<methodName>execute_kw<\/methodName>/);
    });
  }

  test('a missing record is faultCode 2 and the database is untouched by a failed write', async () => {
    const before = fso.store.get('res.partner', 1);
    const err = await rejectsWith(client.write('res.partner', [1, 999999], { lastname: 'Changed' }), OnlineFaultError);
    assert.equal(err.faultCode, 2);
    assert.deepEqual(fso.store.get('res.partner', 1), before);
  });

  test('failNext answers one call with a Fault, failAll every call until switched off', async () => {
    fso.faults.failNext('Der Server ist gerade beschäftigt');
    const err = await rejectsWith(client.searchCount('res.company', []), OnlineFaultError);
    assert.equal(err.odooMessage, 'Der Server ist gerade beschäftigt');
    assert.equal(typeof (await client.searchCount('res.company', [])), 'number');
    fso.faults.failAll('Wartungsmodus');
    for (let i = 0; i < 2; i++) {
      assert.equal((await rejectsWith(client.search('res.company', []), OnlineFaultError)).odooMessage, 'Wartungsmodus');
    }
    fso.faults.failAll(null);
    assert.ok(Array.isArray(await client.search('res.company', [])));
  });
});

describe('evidence', () => {
  test('a recorded exchange holds the bytes on the wire with the password masked', async () => {
    const id = fso.seeded!.partnerIds[0];
    const recorded = client.recording();
    await recorded.write('res.partner', id, { city: 'Bad Ischl & Umgebung <Salzkammergut>' });
    const wire = tap.exchanges[tap.exchanges.length - 1];
    assert.equal(recorded.exchanges.length, 1);
    const kept = recorded.exchanges[0];
    assert.equal(kept.call, 'res.partner.write');
    const escaped = password.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    assert.ok(wire.request.includes(escaped), 'the real password went over the wire');
    assert.equal(kept.request, wire.request.split(escaped).join('***'));
    assert.equal(kept.response, wire.response);
    assert.ok(!kept.request.includes(password) && !kept.request.includes(escaped));
    assert.match(kept.request, /<methodName>execute_kw<\/methodName>/);
    assert.match(kept.request, /Bad Ischl/);
    assert.match(kept.response, /^<\?xml version="1.0"\?><methodResponse><params><param><value><boolean>1<\/boolean>/);
  });

  test('concurrent calls on one client: each recording view holds only its own calls\' exchanges', async () => {
    const views = [0, 1, 2].map(() => client.recording());
    const ids = fso.seeded!.partnerIds.slice(0, 3);
    // interleave the three views' calls with unrecorded calls on the shared client, all at once
    await Promise.all([
      ...views.map((v, i) => (async () => {
        for (let k = 0; k < 4; k++) await v.write('res.partner', ids[i], { city: `Ort-${i}-${k}` });
      })()),
      ...[0, 1, 2, 3].map(() => client.searchCount('res.company', [])),
    ]);
    views.forEach((v, i) => {
      assert.equal(v.exchanges.length, 4);
      for (const [k, e] of v.exchanges.entries()) {
        assert.equal(e.call, 'res.partner.write');
        assert.match(e.request, new RegExp(`<int>${ids[i]}</int>.*Ort-${i}-${k}<`, 's'));
        assert.doesNotMatch(e.request, /res\.company/);
      }
    });
  });

  test('the login exchange is masked too, and serverTime comes from the answer', async () => {
    const fresh = clientFor(tap.url).recording();
    await fresh.authenticate();
    const kept = fresh.exchanges.at(-1)!;
    assert.equal(kept.call, 'common.authenticate');
    assert.match(kept.request, /<value><string>sosync<\/string><\/value><\/param><param><value><string>\*\*\*<\/string>/);
    assert.ok(!kept.request.includes('wörd'));
    const t = fresh.serverTime();
    assert.ok(t instanceof Date && !Number.isNaN(t.getTime()));
    fresh.close();
  });
});

describe('re-authentication', () => {
  test('a rejected session logs in again once and retries the call once', async () => {
    const c = clientFor(tap.url);
    await c.authenticate();
    fso.faults.failNext('Access Denied', 3);
    const start = tap.exchanges.length;
    const count = await c.searchCount('res.company', []);
    assert.equal(typeof count, 'number');
    assert.deepEqual(tap.exchanges.slice(start).map((e) => e.methodName), ['execute_kw', 'authenticate', 'execute_kw']);
    c.close();
  });

  test('a user re-created under a new uid is picked up by logging in again', async () => {
    const c = clientFor(fso.url, { user: 'worker', password: 'w' });
    fso.store.addUser('worker', 'w');
    const oldUid = await c.authenticate();
    fso.store.removeUser('worker');
    const newUid = fso.store.addUser('worker', 'w');
    assert.notEqual(newUid, oldUid);
    assert.equal(typeof (await c.searchCount('res.company', [])), 'number');
    assert.equal(await c.authenticate(), newUid);
    c.close();
  });

  test('when logging in again fails too, the call fails with OnlineAuthenticationError after one try', async () => {
    fso.store.addUser('rotated', 'old');
    const c = clientFor(tap.url, { user: 'rotated', password: 'old' });
    await c.authenticate();
    fso.store.setPassword('rotated', 'new');
    const start = tap.exchanges.length;
    await rejectsWith(c.search('res.company', []), OnlineAuthenticationError);
    assert.deepEqual(tap.exchanges.slice(start).map((e) => e.methodName), ['execute_kw', 'authenticate']);
    c.close();
  });

  test('repeated Access Denied is not retried forever', async () => {
    const c = clientFor(tap.url);
    await c.authenticate();
    fso.faults.failAll('Access Denied', 3);
    try {
      const start = tap.exchanges.length;
      const err = await rejectsWith(c.search('res.company', []), OnlineFaultError);
      assert.ok(err.isAccessDenied);
      assert.deepEqual(tap.exchanges.slice(start).map((e) => e.methodName), ['execute_kw', 'authenticate']);
    } finally {
      fso.faults.failAll(null);
      c.close();
    }
  });
});

describe('unavailable', () => {
  test('refused connections → OnlineUnavailableError naming the host; fine again afterwards', async () => {
    const c = clientFor(fso.url, { timeoutMs: 2000 });
    await c.authenticate();
    await fso.faults.refuseConnections(true);
    try {
      const err = await rejectsWith(c.search('res.company', []), OnlineUnavailableError);
      assert.equal(err.host, fso.url);
      assert.equal(err.exchange!.call, 'res.company.search');
      assert.match(err.message, new RegExp(`FSO [\\w.]+ at ${fso.url.replace(/[.]/g, '\\.')} is unavailable: connection refused`));
      assert.equal(err.exchange!.response, '', 'no answer came');
    } finally {
      await fso.faults.refuseConnections(false);
    }
    assert.ok(Array.isArray(await c.search('res.company', [])));
    c.close();
  });

  test('a stalled server → OnlineUnavailableError after the timeout, naming the host', async () => {
    const c = clientFor(fso.url, { timeoutMs: 300 });
    await c.authenticate();
    fso.faults.stall(true);
    try {
      const err = await rejectsWith(c.searchCount('res.company', []), OnlineUnavailableError);
      assert.match(err.message, new RegExp(`FSO [\\w.]+ at ${fso.url.replace(/[.]/g, '\\.')} is unavailable: no answer within 300 ms`));
    } finally {
      fso.faults.stall(false);
    }
    assert.equal(typeof (await c.searchCount('res.company', [])), 'number');
    c.close();
  });

  test('a host nobody listens on → OnlineUnavailableError', async () => {
    await fso.faults.refuseConnections(true);
    const c = clientFor(fso.url);
    try {
      await rejectsWith(c.authenticate(), OnlineUnavailableError);
    } finally {
      await fso.faults.refuseConnections(false);
      c.close();
    }
  });
});

describe('odd answers and logs', () => {
  test('a path that is not Odoo (HTTP 404) → OnlineProtocolError', async () => {
    const c = clientFor(`${fso.url}/not-odoo`);
    const err = await rejectsWith(c.version(), OnlineProtocolError);
    assert.match(err.message, /HTTP 404 on \/xmlrpc\/2\/common/);
    c.close();
  });

  test('the password never reaches the log, not even at trace level or on failures', async () => {
    let logged = '';
    const stream = new Writable({ write(chunk, _enc, done) { logged += String(chunk); done(); } });
    const logger = createLogger({ level: 'trace', stdout: false, stream });
    const c = createOnlineClient({ host: fso.url, database, user: 'sosync', password, timeoutMs: 300 }, logger);
    await c.searchCount('res.partner', []);
    fso.faults.failNext('Access Denied', 3);
    await c.searchCount('res.partner', []);
    await rejectsWith(c.read('res.partner', [999999]), OnlineFaultError);
    fso.faults.stall(true);
    try {
      await rejectsWith(c.search('res.partner', []), OnlineUnavailableError);
    } finally {
      fso.faults.stall(false);
    }
    c.close();
    assert.match(logged, /res\.partner\.search_count/, 'calls are logged');
    assert.ok(!logged.includes(password) && !logged.includes('wörd'), 'no password in the log');
  });
});
