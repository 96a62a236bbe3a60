/**
 * FSO's change announcements from the stand-in, and the loop guard: writes by sosync's client
 * (context create_sync_job: false) announce nothing; other changes of tracked fields announce
 * exactly one job with the short parameter names.
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import xmlrpc from 'xmlrpc';
import { createOnlineClient, parseOdooDatetime, type OnlineClient } from '../../src/adapters/online/index.ts';
import { silentLogger } from '../../src/log.ts';
import { startOnlineStandIn, type OnlineStandIn } from '../../sandbox/online/index.ts';
import { startAnnouncementSink, type AnnouncementSink } from './support.ts';

let fso: OnlineStandIn;
let sink: AnnouncementSink;
let client: OnlineClient;

before(async () => {
  sink = await startAnnouncementSink();
  fso = await startOnlineStandIn({
    database: 'ann', users: [{ login: 'sosync', password: 'pw' }], logger: silentLogger(), seed: true,
    announceUrl: sink.url, announceRetryDelayMs: 5,
  });
  client = createOnlineClient({ host: fso.url, database: 'ann', user: 'sosync', password: 'pw', timeoutMs: 5000 }, silentLogger());
});

beforeEach(async () => {
  await fso.flushAnnouncements();
  sink.received.length = 0;
});

after(async () => {
  client.close();
  await fso.close();
  await sink.close();
});

/** Odoo's own XML-RPC client call without sosync's context, like any other integration would make */
function plainCall(method: string, params: unknown[]): Promise<unknown> {
  const c = xmlrpc.createClient(`${fso.url}/xmlrpc/2/object`);
  return new Promise((resolve, reject) => c.methodCall(method, params, (err, value) => (err ? reject(err) : resolve(value))));
}

test('sosync creating and writing through the client announces nothing and keeps its sosync_write_date', async () => {
  const id = await client.create('res.partner', { firstname: 'Von', lastname: 'Sosync', sosync_write_date: '2024-03-01T10:00:00.123Z', sosync_fs_id: 5 });
  await client.write('res.partner', id, { city: 'Linz', sosync_write_date: '2024-03-01T10:05:00.000Z' });
  await client.unlink('res.company', await client.create('res.company', { name: 'Kurzlebig' }));
  await fso.flushAnnouncements();
  assert.equal(sink.received.length, 0);
  assert.equal(fso.store.get('res.partner', id)!.sosync_write_date, '2024-03-01T10:05:00.000Z');
});

test('an edit in FSO of a tracked field announces exactly one job with the short names', async () => {
  const id = fso.seeded!.partnerIds[1];
  const before = fso.store.get('res.partner', id)!.sosync_write_date as string;
  fso.userWrite('res.partner', id, { email: 'neu@example.org' });
  await fso.flushAnnouncements();
  assert.equal(sink.received.length, 1);
  const [{ params, contentType }] = sink.received;
  assert.match(contentType, /application\/x-www-form-urlencoded/);
  assert.deepEqual(Object.keys(params).sort(), ['job_date', 'job_source_sosync_write_date', 'source_model', 'source_record_id', 'source_system']);
  assert.equal(params.source_system, 'fso');
  assert.equal(params.source_model, 'res.partner');
  assert.equal(params.source_record_id, String(id));
  const stored = fso.store.get('res.partner', id)!.sosync_write_date as string;
  assert.notEqual(stored, before);
  assert.match(stored, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.match(params.job_source_sosync_write_date, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$/);
  assert.equal(parseOdooDatetime(params.job_source_sosync_write_date).toISOString(), stored);
  assert.ok(!Number.isNaN(parseOdooDatetime(params.job_date).getTime()));
});

test('a plain XML-RPC write without the loop guard announces exactly one job', async () => {
  const id = fso.seeded!.companyIds[0];
  const uid = fso.store.checkLogin('sosync', 'pw');
  await plainCall('execute_kw', ['ann', uid, 'pw', 'res.company', 'write', [[id], { name: 'Umbenannt von außen' }]]);
  await fso.flushAnnouncements();
  assert.equal(sink.received.length, 1);
  assert.equal(sink.received[0].params.source_model, 'res.company');
  assert.equal(sink.received[0].params.source_record_id, String(id));
});

test('create_sync_job: true in the context announces too', async () => {
  const [partner] = fso.seeded!.partnerIds;
  const [company] = fso.seeded!.companyIds;
  const uid = fso.store.checkLogin('sosync', 'pw');
  const id = await plainCall('execute_kw', ['ann', uid, 'pw', 'res.partner.bpk', 'create',
    [{ BPKRequestPartnerID: partner, BPKRequestCompanyID: company, BPKPrivate: 'X' }], { context: { create_sync_job: true } }]);
  await fso.flushAnnouncements();
  assert.equal(sink.received.length, 1);
  assert.equal(sink.received[0].params.source_model, 'res.partner.bpk');
  assert.equal(sink.received[0].params.source_record_id, String(id));
});

test('untracked fields, unchanged values and unsynced models announce nothing', async () => {
  const id = fso.seeded!.partnerIds[2];
  const row = fso.store.get('res.partner', id)!;
  fso.userWrite('res.partner', id, { sosync_fs_id: 999 });
  fso.userWrite('res.partner', id, { lastname: row.lastname, city: row.city });
  fso.userCreate('sosync.job', { job_id: 1, job_state: 'new' });
  fso.userCreate('res.country', { code: 'XX', name: 'Nowhere' });
  await fso.flushAnnouncements();
  assert.equal(sink.received.length, 0);
  assert.equal(fso.store.get('res.partner', id)!.sosync_write_date, row.sosync_write_date);
});

test('creating and deleting in FSO announce; a delete says job_source_type=delete', async () => {
  const id = fso.userCreate('res.company', { name: 'Kurz da' });
  fso.userUnlink('res.company', id);
  await fso.flushAnnouncements();
  assert.equal(sink.received.length, 2);
  assert.equal(sink.received[0].params.source_record_id, String(id));
  assert.equal(sink.received[0].params.job_source_type, undefined);
  assert.equal(sink.received[1].params.source_record_id, String(id));
  assert.equal(sink.received[1].params.job_source_type, 'delete');
});

test('a failed announcement is retried until it is delivered', async () => {
  sink.failNext(2);
  const before = fso.announcements().length;
  fso.userWrite('res.company', fso.seeded!.companyIds[1], { name: 'Nach Wiederholung' });
  await fso.flushAnnouncements();
  assert.equal(sink.received.length, 1);
  const outcome = fso.announcements()[before];
  assert.equal(outcome.delivered, true);
  assert.equal(outcome.attempts, 3);
});

test('an unreachable sosync never fails the write', async () => {
  const lonely = await startOnlineStandIn({
    database: 'x', users: [{ login: 'u', password: 'p' }], logger: silentLogger(),
    announceUrl: 'http://127.0.0.1:9/job/create', announceRetryDelayMs: 1, announceMaxAttempts: 2,
  });
  const c = createOnlineClient({ host: lonely.url, database: 'x', user: 'u', password: 'p' }, silentLogger());
  try {
    const uid = lonely.store.checkLogin('u', 'p');
    const call = xmlrpc.createClient(`${lonely.url}/xmlrpc/2/object`);
    const id = await new Promise((resolve, reject) => call.methodCall('execute_kw', ['x', uid, 'p', 'res.company', 'create', [{ name: 'Trotzdem da' }]], (e, v) => (e ? reject(e) : resolve(v))));
    assert.equal(typeof id, 'number');
    await lonely.flushAnnouncements();
    const [outcome] = lonely.announcements();
    assert.equal(outcome.delivered, false);
    assert.equal(outcome.attempts, 2);
    assert.equal((await c.readOne('res.company', id as number, ['name']))?.name, 'Trotzdem da');
  } finally {
    c.close();
    await lonely.close();
  }
});

test('announcements can be sent as JSON', async () => {
  const jsonSink = await startAnnouncementSink();
  const other = await startOnlineStandIn({
    database: 'j', users: [], logger: silentLogger(), announceUrl: jsonSink.url, announceFormat: 'json',
  });
  try {
    other.userCreate('res.company', { name: 'JSON GmbH' });
    await other.flushAnnouncements();
    assert.equal(jsonSink.received.length, 1);
    assert.match(jsonSink.received[0].contentType, /application\/json/);
    assert.equal(jsonSink.received[0].params.source_model, 'res.company');
  } finally {
    await other.close();
    await jsonSink.close();
  }
});
