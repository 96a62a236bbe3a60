/**
 * The built `sosync` as operators run it: a child process with a temporary INI on a free port,
 * talked to over HTTP; configuration errors; logging to a file without secrets; clean shutdown.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { freePort } from '../support/ports.ts';
import { startNtpStandIn, type NtpStandIn } from '../../sandbox/ntp/ntpStandIn.ts';
import { sleep } from '../support/wait.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'dist/src/main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sosync-process-'));

before(() => {
  // the test runs what `npm install` built; build it when the sources are newer (a developer's tree)
  const built = fs.existsSync(bin) ? fs.statSync(bin).mtimeMs : 0;
  const newest = Math.max(...['src', 'sandbox'].flatMap((d) => walk(path.join(root, d)).map((f) => fs.statSync(f).mtimeMs)));
  if (newest > built) {
    const r = spawnSync('npm', ['run', 'build'], { cwd: root, encoding: 'utf8' });
    assert.equal(r.status, 0, `build failed: ${r.stdout}${r.stderr}`);
  }
});

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function run(args: string[]): Running {
  const child = spawn(process.execPath, [bin, ...args], { cwd: tmp, env: { ...process.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (err += c));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function waitForHttp(url: string, running: Running, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      const r = await fetch(url);
      if (r.status < 500) return;
    } catch {
      // not up yet
    }
    if (running.child.exitCode !== null) assert.fail(`sosync exited early:\n${running.stdout()}\n${running.stderr()}`);
    await sleep(100);
  }
  assert.fail(`sosync did not answer at ${url}:\n${running.stdout()}\n${running.stderr()}`);
}

describe('sosync as a process', () => {
  let database: TestDatabase;
  let ntp: NtpStandIn;
  let port: number;
  let ini: string;
  let logFile: string;
  let running: Running;
  const secret = 'pw-Geheim-4711';

  before(async () => {
    database = await createTestDatabase();
    ntp = await startNtpStandIn();
    port = await freePort();
    logFile = path.join(tmp, 'logs', 'nested', 'sosync.log');
    ini = path.join(tmp, 'instance.ini');
    const unused = await freePort();
    fs.writeFileSync(ini, [
      '[sosync]',
      'instance = proc_test',
      `port = 1`,
      'listen = 127.0.0.1',
      `db_host = ${database.config.host}`,
      `db_port = ${database.config.port}`,
      `db_name = ${database.name}`,
      `db_user = ${database.config.user}`,
      `db_user_pw = ${secret}`,
      `studio_mssql_host = 127.0.0.1,${unused}`,
      'studio_sosync_user = sosync',
      `studio_sosync_pw = ${secret}`,
      `online_host = http://127.0.0.1:${unused}`,
      'online_sosync_user = sosync',
      `online_sosync_pw = ${secret}`,
      `ntp_servers = 127.0.0.1:${ntp.port}`,
      `log_file = ${logFile}`,
      'log_level = Debug',
      'colour = blue',
    ].join('\n'));
    // the command line wins over the INI: port 1 would fail
    running = run(['--conf', ini, '--port', String(port)]);
    await waitForHttp(`http://127.0.0.1:${port}/service/version`, running);
  });

  after(async () => {
    if (running.child.exitCode === null) running.child.kill('SIGKILL');
    await ntp.close();
    await database.drop();
  });

  test('answers over HTTP: version, job create, job info, status', async () => {
    const version = await (await fetch(`http://127.0.0.1:${port}/service/version`)).text();
    const git = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).stdout.trim();
    assert.equal(version, git);
    const status = (await (await fetch(`http://127.0.0.1:${port}/service/status`)).json()) as any;
    assert.equal(status.job_worker.status_text, 'Idle');
    const created = (await (await fetch(`http://127.0.0.1:${port}/job/create?job_date=2026-03-01T10:00:00Z&source_system=fs&source_model=dbo.xBPKAccount&source_record_id=1`)).json()) as any;
    assert.equal(created.error_code, 0);
    const info = await fetch(`http://127.0.0.1:${port}/job/info/${created.job_id}`);
    assert.equal(info.status, 200);
    assert.equal(((await info.json()) as any).job_source_model, 'dbo.xBPKAccount');
  });

  test('logs JSON lines to stdout and to log_file (directory created), warns about unknown keys, never logs a password', async () => {
    await sleep(300);
    assert.ok(fs.existsSync(logFile), 'log file created with its directories');
    const fileLines = fs.readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(fileLines.some((l) => l.msg === 'sosync is listening'));
    assert.ok(fileLines.some((l) => /unknown configuration key "colour"/.test(l.msg)));
    const stdoutLines = running.stdout().trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(stdoutLines.some((l) => l.msg === 'sosync is listening'));
    const everything = running.stdout() + running.stderr() + fs.readFileSync(logFile, 'utf8');
    assert.ok(!everything.includes(secret), 'no password in any log');
    assert.ok(everything.includes('***'), 'the password is shown as ***');
  });

  test('SIGTERM: closes and exits 0 within 10 s', async () => {
    const started = Date.now();
    running.child.kill('SIGTERM');
    const { code } = await running.exit;
    assert.equal(code, 0);
    assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
    assert.match(running.stdout(), /"msg":"stopped"/);
    await assert.rejects(fetch(`http://127.0.0.1:${port}/service/version`), 'the port is closed');
  });

  test('SIGINT works the same', async () => {
    const again = run(['--conf', ini, '--port', String(port), '--log_file', path.join(tmp, 'second.log')]);
    await waitForHttp(`http://127.0.0.1:${port}/service/version`, again);
    again.child.kill('SIGINT');
    const { code } = await again.exit;
    assert.equal(code, 0);
  });
});

describe('the embedded sync table (PGlite) belongs to one process', () => {
  test('a second process on the same state directory refuses with one line and exit 2; a dead holder is taken over', async () => {
    const ntp = await startNtpStandIn();
    const unused = await freePort();
    const stateDir = path.join(tmp, 'pglite-state');
    const ini = path.join(tmp, 'pglite.ini');
    fs.writeFileSync(ini, [
      '[sosync]',
      'instance = pglite_test',
      'listen = 127.0.0.1',
      `state_dir = ${stateDir}`,
      `studio_mssql_host = 127.0.0.1,${unused}`,
      `online_host = http://127.0.0.1:${unused}`,
      `ntp_servers = 127.0.0.1:${ntp.port}`,
    ].join('\n'));
    const ports = [await freePort(), await freePort(), await freePort()];
    const first = run(['--conf', ini, '--port', String(ports[0])]);
    try {
      // PGlite's start is slow on a busy machine: a bound, not a speed check
      await waitForHttp(`http://127.0.0.1:${ports[0]}/service/version`, first, 120_000);
      const second = run(['--conf', ini, '--port', String(ports[1])]);
      const ended = await Promise.race([second.exit, sleep(120_000).then(() => null)]);
      if (ended === null) {
        second.child.kill('SIGKILL');
        assert.fail(`a second process on the same state directory kept running:\n${second.stdout()}`);
      }
      assert.equal(ended.code, 2);
      assert.equal(second.stderr(), `sosync: could not start: state directory ${stateDir} is in use by sosync process ${first.child.pid} `
        + '(the embedded sync table allows one process; use db_host for several)\n');
      await assert.rejects(fetch(`http://127.0.0.1:${ports[1]}/service/version`), 'the second never listened');
      // the first is untouched and still answers
      assert.equal((await fetch(`http://127.0.0.1:${ports[0]}/service/version`)).status, 200);

      first.child.kill('SIGKILL');
      await first.exit;
      const third = run(['--conf', ini, '--port', String(ports[2])]);
      await waitForHttp(`http://127.0.0.1:${ports[2]}/service/version`, third, 120_000);
      third.child.kill('SIGTERM');
      assert.equal((await third.exit).code, 0);
      assert.equal(fs.existsSync(path.join(stateDir, 'sosync.lock')), false, 'a clean stop removes the lock file');
    } finally {
      if (first.child.exitCode === null) first.child.kill('SIGKILL');
      await ntp.close();
    }
  });
});

test('an install without .git reports the commit the build wrote to dist/version.txt', () => {
  const install = fs.mkdtempSync(path.join(os.tmpdir(), 'sosync-install-'));
  fs.cpSync(path.join(root, 'dist'), path.join(install, 'dist'), { recursive: true });
  fs.copyFileSync(path.join(root, 'package.json'), path.join(install, 'package.json'));
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(install, 'node_modules'));
  const written = fs.readFileSync(path.join(root, 'dist', 'version.txt'), 'utf8').trim();
  assert.match(written, /^[0-9a-f]{40}$/);
  const r = spawnSync(process.execPath, [path.join(install, 'dist/src/main.js'), '--version'], { cwd: install, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), written);
  fs.rmSync(install, { recursive: true, force: true });
});

describe('configuration errors stop sosync with one line and exit code 2', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['non-numeric port', ['--port', 'abc'], /^sosync: configuration error: port: "abc" is not a port number\n$/],
    ['unknown log level', ['--log_level', 'Chatty'], /^sosync: configuration error: log_level: "Chatty" is not one of/],
    ['unreadable file', ['--conf', '/nonexistent/sosync.ini'], /^sosync: configuration error: conf: cannot read \/nonexistent\/sosync.ini: ENOENT\n$/],
    ['missing instance', ['--conf', 'NOINSTANCE'], /^sosync: configuration error: instance: is required when db_host is set\n$/],
    ['log file on a virtual file system', ['--log_file', '/proc/sosync/x.log'], /^sosync: configuration error: log_file: cannot write to \/proc\/sosync\/x.log: a virtual file system/],
    ['log file that cannot be created', ['--log_file', 'BLOCKED/x.log'], /^sosync: configuration error: log_file: cannot write to .*a-file\/x.log: EEXIST/],
  ];
  for (const [name, args, expected] of cases) {
    test(name, async () => {
      const file = path.join(tmp, 'noinstance.ini');
      fs.writeFileSync(file, '[sosync]\ndb_host = 127.0.0.1\n');
      // a file where a directory would have to be: not creatable even for root
      const blocked = path.join(tmp, 'a-file');
      fs.writeFileSync(blocked, '');
      const argv = args.map((a) => (a === 'NOINSTANCE' ? file : a.replace('BLOCKED', blocked)));
      const r = spawnSync(process.execPath, [bin, ...argv], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(r.status, 2, `${r.stdout}${r.stderr}`);
      assert.match(r.stderr, expected);
      assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
      assert.doesNotMatch(r.stderr, /\bat .*\.js:\d+/, 'no stack trace');
    });
  }
});
