/**
 * Secrets at every level: a full sync through the stand-ins at log level Trace — creates and
 * updates in both directions, a failed FSO login, a Fault, the protocol copy to FSO — then every
 * place sosync wrote to is searched for the FS, FSO and database passwords and the API token:
 * the log (stdout's lines and log_file), every sync_table row, the copies in FSO's sosync.job,
 * every API answer and the inspection stream.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../src/log.ts';
import { E2E_PASSWORD, E2E_USER, startEndToEnd, type EndToEnd } from '../support/endToEnd.ts';
import { connectStream, type StreamClient } from '../visualizer/support.ts';
import { until } from '../support/wait.ts';

const FSO_PASSWORD = 'Fso-Geheimnis-91ab&<x>"';
const DB_PASSWORD = 'Db-Kennwort-44de';
const TOKEN = 'tok-5ecret-8e1f0a2b3c4d';

/** Each secret with a plain core that survives JSON, XML or URL escaping of the rest. */
const secrets: Array<[name: string, whole: string, core: string]> = [
  ['FS password', E2E_PASSWORD, 'e2e-7f3c'],
  ['FSO password', FSO_PASSWORD, 'Geheimnis-91ab'],
  ['database password', DB_PASSWORD, 'Kennwort-44de'],
  ['API token', TOKEN, '5ecret-8e1f'],
];

function assertNoSecret(where: string, text: string): void {
  for (const [name, whole, core] of secrets) {
    assert.ok(!text.includes(whole) && !text.includes(core), `the ${name} appears in ${where}`);
  }
}

describe('no secret reaches anything sosync writes', { timeout: 240_000 }, () => {
  let e: EndToEnd;
  let stream: StreamClient;
  let logged = '';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sosync-secrets-'));
  const logFile = path.join(dir, 'sosync.log');
  const answers: string[] = [];

  const api = async (route: string, headers: Record<string, string> = {}) => {
    const res = await fetch(e.base + route, { headers: { authorization: `Bearer ${TOKEN}`, ...headers } });
    const text = await res.text();
    answers.push(`${route} ${res.status} ${JSON.stringify([...res.headers])}\n${text}`);
    return { status: res.status, text };
  };

  before(async () => {
    const captured = new PassThrough();
    captured.on('data', (c: Buffer) => (logged += c.toString('utf8')));
    // as main.ts builds it from log_level and log_file; the captured stream stands for stdout
    const logger = createLogger({ level: 'trace', file: logFile, stdout: false, stream: captured });
    e = await startEndToEnd('postgres', {
      logger,
      apiToken: TOKEN,
      fsoPassword: FSO_PASSWORD,
      // a failed login opens the circuit breaker for FSO; probe soon so the test goes on once it is back
      ini: [`db_user_pw = ${DB_PASSWORD}`, `api_token = ${TOKEN}`, 'outage_probe_interval_ms = 300'],
    });
    stream = await connectStream(e.base.replace('http', 'ws') + '/inspect', { token: TOKEN });
  });
  after(async () => {
    stream?.close();
    await e?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a full sync with a failed login and a Fault, then every output is clean', async () => {
    // FS → FSO: create and update
    const account = await e.fs.insert('xBPKAccount', { Name: 'Verein Geheimtest' });
    await e.waitForJobs();
    await e.fs.query('UPDATE dbo.[xBPKAccount] SET [Name] = @name WHERE [xBPKAccountID] = @id;', { name: 'Verein Geheimtest 2', id: account.xBPKAccountID });
    await e.waitForJobs();
    // FSO → FS: create and update
    const company = e.fso.userCreate('res.company', { name: 'Firma aus FSO' });
    await e.waitForJobs();
    e.fso.userWrite('res.company', company, { name: 'Firma aus FSO 2' });
    await e.waitForJobs();
    // Faults from FSO (for the job and the protocol worker alike)
    e.fso.faults.failAll('Datensatz gesperrt');
    await e.fs.query('UPDATE dbo.[xBPKAccount] SET [Name] = @name WHERE [xBPKAccountID] = @id;', { name: 'Verein Geheimtest 3', id: account.xBPKAccountID });
    await e.waitForJobs();
    e.fso.faults.failAll(null);
    // a failed login: FSO no longer takes sosync's password
    e.fso.store.setPassword(E2E_USER, 'ein-anderes-passwort');
    await e.fs.query('UPDATE dbo.[xBPKAccount] SET [Name] = @name WHERE [xBPKAccountID] = @id;', { name: 'Verein Geheimtest 4', id: account.xBPKAccountID });
    await e.waitForJobs();
    e.fso.store.setPassword(E2E_USER, FSO_PASSWORD);
    await e.fs.query('UPDATE dbo.[xBPKAccount] SET [Name] = @name WHERE [xBPKAccountID] = @id;', { name: 'Verein Geheimtest 5', id: account.xBPKAccountID });
    await e.waitForJobs();
    // the protocol copy reaches FSO
    await api('/service/processprotocol');
    await until(async () => JSON.parse((await api('/service/status')).text).protocol_worker.pending_rows === 0, 'protocol copied', 60_000);

    const jobs = await e.jobs();
    // a later job of the same record closes a failed one (SPEC §4.2 step 8); its error text stays
    const errors = jobs.map((j) => j.job_error_text ?? '').filter((t) => t !== '');
    assert.ok(errors.some((t) => /Datensatz gesperrt/.test(t)), `the Fault ended a job: ${JSON.stringify(errors)}`);
    assert.ok(errors.some((t) => /login|authenticat|Access Denied/i.test(t)), `the failed login ended a job: ${JSON.stringify(errors)}`);
    assert.ok(jobs.filter((j) => j.job_state === 'done').length >= 5, 'creates and updates in both directions are done');

    // every API answer, in both formats, including refusals
    await api('/service/status', { accept: 'application/xml' });
    for (const route of ['/service/version', '/service/health', '/service/forcedriftcheck', '/service/drift', '/service/processjobs', '/metrics', '/inspect/actors', '/inspect/machines', '/job/list?limit=1000', '/job/info/999999', '/nowhere', '/job/create?job_date=x']) {
      await api(route);
    }
    await api('/job/list?limit=1000', { accept: 'application/xml' });
    for (const job of jobs) {
      await api(`/job/info/${job.job_id}`);
      await api(`/job/info/${job.job_id}`, { accept: 'text/xml' });
    }
    const refused = await fetch(`${e.base}/service/status`, { headers: { authorization: 'Bearer wrong-but-long-enough' } });
    answers.push(await refused.text());

    // the places searched hold what they should: the searches can find something
    const rows = JSON.stringify(jobs);
    assert.match(rows, /\*\*\*/, 'the kept XML-RPC requests show the password as ***');
    const copies = JSON.stringify(e.fso.store.all('sosync.job'));
    assert.ok(e.fso.store.all('sosync.job').length >= jobs.length - 2, 'the protocol copied the jobs');
    await until(() => stream.raw.length > 0, 'inspection messages');
    const fileText = fs.readFileSync(logFile, 'utf8');
    assert.match(fileText, /"level":20,/, 'below-Information lines were written');
    assert.match(fileText, /FSO call/);
    assert.match(answers.join('\n'), /sosync_system_call_duration_seconds_count\{system="fso",operation="readOne"\} [1-9]/);
    assert.match(answers.join('\n'), /sosync_system_call_errors_total\{system="fso",operation="[a-zA-Z]+",error="Online(Fault|Authentication)Error"\}/);

    assertNoSecret('the log lines (stdout)', logged);
    assertNoSecret('log_file', fileText);
    assertNoSecret('sync_table', rows);
    assertNoSecret('the copies in FSO sosync.job', copies);
    assertNoSecret('the API answers', answers.join('\n'));
    assertNoSecret('the inspection stream', stream.raw.join('\n'));
  });
});
