/**
 * The zero-setup sandbox as an operator meets it: the built service (`node dist/src/main.js`)
 * started without --conf, spoken to only from outside — HTTP, XML-RPC (the `xmlrpc` package) and
 * TDS (`mssql`) — then stopped with SIGINT and started again on the same data directory.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import xmlrpc from 'xmlrpc';
import sql from 'mssql';
import { freePort } from '../support/ports.ts';
import { ensureBuilt, root, sosyncBin as mainJs } from '../../bench/harness/processes.ts';
import { createStudioClient, type StudioClient } from '../../src/adapters/studio/index.ts';
import { stackToPartner } from '../../src/flows/partnerMapping.ts';
import { silentLogger } from '../../src/log.ts';

const PERSONS = 50;
/** how long a change may take to reach the other side before the test gives up */
const PROPAGATION_LIMIT_MS = 30_000;
const START_LIMIT_MS = 120_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | null | false>, limitMs = PROPAGATION_LIMIT_MS): Promise<T> {
  const until = Date.now() + limitMs;
  let lastError: unknown = null;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== null && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > until) throw new Error(`gave up waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
    await sleep(250);
  }
}

interface Ports { http: number; fso: number; fs: number; ntp: number }

interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function startSandbox(ports: Ports, dataDir: string): Promise<Running> {
  const child = spawn(process.execPath, [
    mainJs,
    '--port', String(ports.http), '--listen', '127.0.0.1',
    '--sandbox_fso_port', String(ports.fso), '--sandbox_fs_port', String(ports.fs), '--sandbox_ntp_port', String(ports.ntp),
    '--sandbox_persons', String(PERSONS), '--sandbox_data_dir', dataDir,
  ], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  let exited = false;
  void exit.then(() => { exited = true; });
  await waitFor('the service to answer /service/status', async () => {
    if (exited) throw new Error(`sosync exited early:\n${out}\n${err}`);
    const res = await fetch(`http://127.0.0.1:${ports.http}/service/status`);
    return res.ok;
  }, START_LIMIT_MS);
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function stop(running: Running): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  running.child.kill('SIGINT');
  const limit = sleep(10_000).then(() => null);
  const result = await Promise.race([running.exit, limit]);
  if (!result) {
    running.child.kill('SIGKILL');
    throw new Error('sosync did not stop within 10 s of SIGINT');
  }
  return result;
}

// --- outside clients -------------------------------------------------------------------------

function rpc(ports: Ports, service: 'common' | 'object', method: string, params: unknown[]): Promise<any> {
  const client = xmlrpc.createClient({ host: '127.0.0.1', port: ports.fso, path: `/xmlrpc/2/${service}` });
  return new Promise((resolve, reject) => client.methodCall(method, params, (err, value) => (err ? reject(err) : resolve(value))));
}

async function odoo(ports: Ports) {
  const uid = await rpc(ports, 'common', 'authenticate', ['sandbox', 'sosync', 'sosync', {}]);
  assert.equal(typeof uid, 'number', 'sosync / sosync logs in to the FSO stand-in');
  return (model: string, method: string, args: unknown[], kwargs: Record<string, unknown> = {}) =>
    rpc(ports, 'object', 'execute_kw', ['sandbox', uid, 'sosync', model, method, args, kwargs]);
}

function tds(ports: Ports): Promise<sql.ConnectionPool> {
  return new sql.ConnectionPool({
    server: '127.0.0.1', port: ports.fs, database: 'mdb_sandbox', user: 'sosync', password: 'sosync',
    options: { encrypt: false, trustServerCertificate: true },
  }).connect();
}

async function getJson(ports: Ports, route: string): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${ports.http}${route}`);
  assert.equal(res.ok, true, `${route} answers ${res.status}`);
  return res.json();
}

async function createJob(ports: Ports, system: 'fs' | 'fso', model: string, id: number): Promise<number> {
  const q = new URLSearchParams({ job_date: new Date().toISOString(), job_source_system: system, job_source_model: model, job_source_record_id: String(id) });
  const answer = await getJson(ports, `/job/create?${q}`);
  assert.equal(answer.error_code, 0, JSON.stringify(answer));
  return answer.job_id as number;
}

async function finishedJob(ports: Ports, jobId: number): Promise<any> {
  return waitFor(`job ${jobId} to end`, async () => {
    const job = await getJson(ports, `/job/info/${jobId}`);
    return job.job_state === 'done' || job.job_state === 'error' ? job : null;
  });
}

// ---------------------------------------------------------------------------------------------

describe('sandbox: the built service with no --conf', () => {
  let ports: Ports;
  let dataDir: string;
  let running: Running | null = null;
  let call: Awaited<ReturnType<typeof odoo>>;
  let pool: sql.ConnectionPool;
  let studio: StudioClient;

  before(async () => {
    ensureBuilt();
    ports = { http: await freePort(), fso: await freePort(), fs: await freePort(), ntp: await freePort() };
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sosync-sandbox-'));
    running = await startSandbox(ports, dataDir);
    call = await odoo(ports);
    pool = await tds(ports);
    studio = createStudioClient({
      host: '127.0.0.1', port: ports.fs, database: 'mdb_sandbox', user: 'sosync', password: 'sosync',
      encrypt: false, trustServerCertificate: true, connectTimeoutMs: 10_000, requestTimeoutMs: 30_000,
    }, silentLogger());
  });

  after(async () => {
    await studio?.close().catch(() => undefined);
    await pool?.close().catch(() => undefined);
    if (running && running.child.exitCode === null && running.child.signalCode === null) {
      running.child.kill('SIGKILL');
      await running.exit;
    }
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  test('the first lines printed are the banner: URLs, ports, database names and logins', () => {
    const lines = running!.stdout().split('\n');
    assert.match(lines[0], /^sosync SANDBOX/);
    const bannerEnd = lines.findIndex((l) => l.startsWith('{'));
    assert.ok(bannerEnd > 0, 'log lines follow the banner');
    const banner = lines.slice(0, bannerEnd).join('\n');
    assert.ok(banner.includes(`http://127.0.0.1:${ports.http}/service/status`), banner);
    assert.ok(banner.includes(`http://127.0.0.1:${ports.fso}/xmlrpc/2/`), banner);
    assert.ok(banner.includes(`127.0.0.1,${ports.fs}`), banner);
    assert.ok(banner.includes(`udp 127.0.0.1:${ports.ntp}`), banner);
    assert.ok(banner.includes('database "sandbox"') && banner.includes('database "mdb_sandbox"'), banner);
    assert.equal(banner.match(/login sosync \/ sosync/g)?.length, 2, banner);
    assert.ok(banner.includes(`${PERSONS} FS persons (10 synced)`), banner);
    assert.ok(banner.includes(dataDir), banner);
    assert.doesNotMatch(running!.stderr(), /\S/, 'nothing on stderr');
  });

  test('/service/status answers with both workers', async () => {
    const status = await getJson(ports, '/service/status');
    assert.equal(typeof status.job_worker.status, 'number');
    assert.equal(typeof status.job_worker.status_text, 'string');
    assert.equal(typeof status.protocol_worker.status_text, 'string');
  });

  test('the seed: persons with details in FS, a synced share on both sides, FSO-only partners and bPKs', async () => {
    const count = async (table: string) => (await pool.request().query(`SELECT COUNT(*) AS n FROM dbo.${table}`)).recordset[0].n as number;
    assert.equal(await count('Person'), PERSONS);
    assert.equal(await count('PersonAdresse'), PERSONS);
    assert.equal(await count('PersonEmail'), PERSONS);
    assert.ok(await count('PersonTelefon') > 0);
    assert.ok(await count('PersonGruppe') > 0);

    const linkedPersons = (await pool.request().query('SELECT PersonID, sosync_fso_id FROM dbo.Person WHERE sosync_fso_id IS NOT NULL ORDER BY PersonID')).recordset;
    assert.equal(linkedPersons.length, PERSONS / 5);
    const linkedPartners = await call('res.partner', 'search_read', [[['sosync_fs_id', '!=', false]]], { fields: ['sosync_fs_id'] });
    assert.deepEqual(
      linkedPartners.map((p: any) => [p.sosync_fs_id, p.id]).sort((a: number[], b: number[]) => a[0] - b[0]),
      linkedPersons.map((r: any) => [r.PersonID, r.sosync_fso_id]),
      'each linked person and partner name each other',
    );
    const unlinkedPartners = await call('res.partner', 'search_count', [[['sosync_fs_id', '=', false]]]);
    assert.ok(unlinkedPartners >= 3, 'FSO-only partners exist');

    const accounts = (await pool.request().query('SELECT xBPKAccountID, sosync_fso_id FROM dbo.xBPKAccount')).recordset;
    assert.ok(accounts.length > 0 && accounts.every((a: any) => a.sosync_fso_id !== null), 'every company is synced');
    const bpks = await call('res.partner.bpk', 'search_read', [[]], { fields: ['sosync_fs_id'] });
    const linkedBpks = bpks.filter((b: any) => b.sosync_fs_id !== false);
    assert.ok(linkedBpks.length > 0 && linkedBpks.length < bpks.length, 'some bPKs synced, some FSO-only');
    const fsBpks = (await pool.request().query('SELECT PersonBPKID, sosync_fso_id FROM dbo.PersonBPK ORDER BY PersonBPKID')).recordset;
    assert.deepEqual(fsBpks.map((r: any) => [r.PersonBPKID, r.sosync_fso_id]), linkedBpks.map((b: any) => [b.sosync_fs_id, b.id]).sort((a: number[], b: number[]) => a[0] - b[0]));
  });

  test('a linked partner holds what the partner mapping makes of its FS stack, read through the FS client', async () => {
    const linked = await call('res.partner', 'search_read', [[['sosync_fs_id', '!=', false]]], {});
    for (const partner of linked.slice(0, 5)) {
      const stack = await studio.readPersonStack(partner.sosync_fs_id);
      assert.ok(stack, `dbo.Person ${partner.sosync_fs_id} exists`);
      assert.equal(stack.sosyncFsoId, partner.id);
      assert.equal(partner.sosync_write_date, stack.sosyncWriteDate!.toISOString(), 'equal sosync_write_date on both sides');
      const { values, landId } = stackToPartner(stack);
      for (const [field, value] of Object.entries(values)) assert.deepEqual(partner[field], value, `res.partner ${partner.id}.${field}`);
      const [country] = await call('res.country', 'read', [[partner.country_id[0]], ['code']]);
      assert.equal(country.code, await studio.landIdToIso(landId!));
    }
  });

  test('the linked share is up to date: no jobs appear for it, and a job for one ends "model up to date"', async () => {
    const [person] = (await pool.request().query('SELECT TOP 1 PersonID FROM dbo.Person WHERE sosync_fso_id IS NOT NULL ORDER BY PersonID DESC')).recordset;
    const [company] = (await pool.request().query('SELECT TOP 1 xBPKAccountID FROM dbo.xBPKAccount ORDER BY xBPKAccountID')).recordset;
    const [bpk] = await call('res.partner.bpk', 'search', [[['sosync_fs_id', '!=', false]]], { limit: 1 });
    const jobs = [
      await createJob(ports, 'fs', 'dbo.Person', person.PersonID),
      await createJob(ports, 'fs', 'dbo.xBPKAccount', company.xBPKAccountID),
      await createJob(ports, 'fso', 'res.partner.bpk', bpk),
    ];
    for (const id of jobs) {
      const job = await finishedJob(ports, id);
      assert.equal(job.job_state, 'done', JSON.stringify(job));
      assert.match(job.job_log, /model up to date/);
    }
    // sosync's own seed writes announced nothing: the only jobs are the ones just made
    const list = await getJson(ports, '/job/list');
    assert.deepEqual(list.jobs.map((j: any) => j.job_id).sort(), [...jobs].sort());
  });

  test('an FSO partner changed over XML-RPC reaches FS', async () => {
    const [partner] = await call('res.partner', 'search_read', [[['sosync_fs_id', '!=', false]]], { fields: ['sosync_fs_id'], limit: 1 });
    assert.equal(await call('res.partner', 'write', [[partner.id], { lastname: 'Über-RPC', city: 'Wolkersdorf' }]), true);
    const row = await waitFor('the new name in dbo.Person', async () => {
      const r = (await pool.request().input('id', sql.Int, partner.sosync_fs_id)
        .query('SELECT p.Name, a.Ort FROM dbo.Person p JOIN dbo.PersonAdresse a ON a.PersonID = p.PersonID WHERE p.PersonID = @id')).recordset[0];
      return r?.Name === 'Über-RPC' ? r : null;
    });
    assert.equal(row.Ort, 'Wolkersdorf');

    const created = await call('res.partner', 'create', [{ firstname: 'Neu', lastname: 'Aus-Odoo', email: 'neu@example.org' }]);
    const person = await waitFor('the new partner as a dbo.Person', async () => (await pool.request().input('id', sql.Int, created)
      .query('SELECT p.PersonID, p.Vorname, e.EmailVor, e.EmailNach FROM dbo.Person p JOIN dbo.PersonEmail e ON e.PersonID = p.PersonID WHERE p.sosync_fso_id = @id')).recordset[0]);
    assert.deepEqual([person.Vorname, person.EmailVor, person.EmailNach], ['Neu', 'neu', 'example.org']);
    const [back] = await call('res.partner', 'read', [[created], ['sosync_fs_id']]);
    assert.equal(back.sosync_fs_id, person.PersonID);
  });

  test('an FS person changed over TDS reaches FSO (an unsynced one is created there)', async () => {
    const [person] = (await pool.request().query('SELECT TOP 1 PersonID FROM dbo.Person WHERE sosync_fso_id IS NULL ORDER BY PersonID')).recordset;
    await pool.request().input('id', sql.Int, person.PersonID).query("UPDATE dbo.Person SET Vorname = N'Über-TDS' WHERE PersonID = @id");
    const [partner] = await waitFor('a res.partner for the FS person', async () => {
      const found = await call('res.partner', 'search_read', [[['sosync_fs_id', '=', person.PersonID]]], { fields: ['firstname'] });
      return found.length > 0 ? found : null;
    });
    assert.equal(partner.firstname, 'Über-TDS');
    const [row] = (await pool.request().input('id', sql.Int, person.PersonID).query('SELECT sosync_fso_id FROM dbo.Person WHERE PersonID = @id')).recordset;
    assert.equal(row.sosync_fso_id, partner.id);
  });

  test('SIGINT stops it with exit code 0; a restart on the same data directory keeps everything and seeds nothing', async () => {
    const partnersBefore = await call('res.partner', 'search_count', [[]]);
    const bpksBefore = await call('res.partner.bpk', 'search_count', [[]]);
    const personsBefore = (await pool.request().query('SELECT COUNT(*) AS n FROM dbo.Person')).recordset[0].n;
    const jobsBefore = (await getJson(ports, '/job/list')).jobs.length;
    const [changed] = await call('res.partner', 'search_read', [[['lastname', '=', 'Über-RPC']]], { fields: ['id'] });
    await pool.close();

    const { code, signal } = await stop(running!);
    assert.equal(signal, null);
    assert.equal(code, 0, running!.stderr());
    assert.ok(fs.existsSync(path.join(dataDir, 'fso-stand-in.json')));

    running = await startSandbox(ports, dataDir);
    assert.match(running.stdout().split('\n').find((l) => l.trimStart().startsWith('demo data')) ?? '', /restored/);
    call = await odoo(ports);
    pool = await tds(ports);
    assert.equal(await call('res.partner', 'search_count', [[]]), partnersBefore);
    assert.equal(await call('res.partner.bpk', 'search_count', [[]]), bpksBefore);
    assert.equal((await pool.request().query('SELECT COUNT(*) AS n FROM dbo.Person')).recordset[0].n, personsBefore);
    const [again] = await call('res.partner', 'read', [[changed.id], ['lastname', 'city']]);
    assert.deepEqual([again.lastname, again.city], ['Über-RPC', 'Wolkersdorf']);
    assert.equal((await getJson(ports, '/job/list')).jobs.length, jobsBefore, 'the sync table is kept too');

    const { code: secondCode } = await stop(running);
    assert.equal(secondCode, 0);
  });
});
