/**
 * The sandbox as a newcomer meets it (issue 14 point 8): `node dist/src/main.js` with no
 * configuration, in a fresh temporary directory, measured only from outside.
 *
 *   - start: spawn → the first 200 from /service/status, against spawn → one bare
 *     `PGlite.create()` done in a node process of its own; once with an empty cache directory (the
 *     first start on a machine where `npm install` did not run), once with only the empty database
 *     `npm install` prepares (sandbox/prepareTemplate.ts) and once more, each in a new directory,
 *     with the cache the first start left (sandbox/pgliteTemplate.ts, sandbox/seedCache.ts);
 *   - up-to-date jobs/s: /job/create for FS persons the sandbox seeded as synced, until no job is
 *     open any more;
 *   - creates/s: /job/create for FS persons not yet in FSO, likewise.
 * Both throughputs stand next to the bare reads an up-to-date job cannot avoid, made from outside
 * in the same run: the person row over TDS and the partner over XML-RPC.
 *
 * With BENCH_SANDBOX_PROFILE=DIR the sandbox runs under `node --cpu-prof` and the top self-time
 * functions of its profile are added as sections (bench/cpuProfile.ts): its whole life, then the
 * start, the up-to-date jobs and the creates on their own. dist/ is built first when a source file
 * is newer, so the code measured is this tree's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sql from 'mssql';
import xmlrpc from 'xmlrpc';
import { freePort } from '../test/support/ports.ts';
import { ensureBuilt, root, sosyncBin as mainJs } from './harness/processes.ts';
import { monotonicUs, newestProfileIn, profileTables, selfTime } from './cpuProfile.ts';
import { median } from './stats.ts';
import type { Results } from './results.ts';


export const SANDBOX_TARGETS = { startSeconds: 3, upToDatePerSecond: 20, createsPerSecond: 10 };

/** the number of jobs of each kind; the sandbox seeds 1,000 persons, 200 of them synced */
const JOBS = Number(process.env.BENCH_SANDBOX_JOBS ?? 100);
/** give up waiting for anything after this long (every loop here is bounded) */
const LIMIT_MS = 180_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(what: string, probe: () => Promise<T | null>, pollMs: number): Promise<T> {
  const deadline = Date.now() + LIMIT_MS;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(pollMs);
  }
}

/** spawn → the line a bare `PGlite.create()` prints in a node process of its own (ms) */
async function barePgliteStart(): Promise<number> {
  const script = `import { PGlite } from '@electric-sql/pglite'; const db = await PGlite.create(); await db.query('SELECT 1'); console.log('ready'); await db.close();`;
  const started = performance.now();
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { if (d.includes('ready')) resolve(); });
    child.on('exit', (code) => reject(new Error(`bare PGlite process exited ${code}`)));
  });
  const ms = performance.now() - started;
  await new Promise((resolve) => child.once('exit', resolve));
  return ms;
}

interface Ports { http: number; fso: number; fs: number; ntp: number }

interface Started { child: ChildProcess; ms: number; window: Window; exit: Promise<unknown>; output: () => string }

/** a stretch of time on the monotonic clock (µs), to read the part of the profile taken in it */
interface Window { from: number; to: number }

async function startSandbox(ports: Ports, cwd: string, cacheDir: string, profileDir: string | null): Promise<Started> {
  const args = [
    ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []),
    mainJs,
    '--port', String(ports.http), '--listen', '127.0.0.1',
    '--sandbox_fso_port', String(ports.fso), '--sandbox_fs_port', String(ports.fs), '--sandbox_ntp_port', String(ports.ntp),
  ];
  const from = monotonicUs();
  const started = performance.now();
  const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: cwd, XDG_CACHE_HOME: cacheDir } });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { output += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { output += d; });
  let exited = false;
  const exit = new Promise((resolve) => child.on('exit', (code) => { exited = true; resolve(code); }));
  await until('/service/status', async () => {
    if (exited) throw new Error(`sosync exited early:\n${output}`);
    const res = await fetch(`http://127.0.0.1:${ports.http}/service/status`);
    await res.arrayBuffer();
    return res.status === 200 ? true : null;
  }, 10);
  return { child, ms: performance.now() - started, window: { from, to: monotonicUs() }, exit, output: () => output };
}

async function getJson(ports: Ports, route: string): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${ports.http}${route}`);
  if (!res.ok) throw new Error(`${route}: ${res.status} ${await res.text()}`);
  return res.json();
}

const openStates = 'new,inprogress,error_retry';

/** Announces the persons one /job/create each, then waits until no job is open; jobs per second. */
async function throughput(ports: Ports, personIds: number[]): Promise<{ perSecond: number; done: number; other: number; window: Window }> {
  const before = (await getJson(ports, '/job/list?state=done&limit=1000')).count as number;
  const from = monotonicUs();
  const started = performance.now();
  for (const id of personIds) {
    const q = new URLSearchParams({ job_date: new Date().toISOString(), job_source_system: 'fs', job_source_model: 'dbo.Person', job_source_record_id: String(id) });
    const answer = await getJson(ports, `/job/create?${q}`);
    if (answer.error_code !== 0) throw new Error(`/job/create: ${JSON.stringify(answer)}`);
  }
  await until('the jobs to end', async () => ((await getJson(ports, `/job/list?state=${openStates}&limit=1`)).count === 0 ? true : null), 50);
  const seconds = (performance.now() - started) / 1000;
  const window = { from, to: monotonicUs() };
  const done = (await getJson(ports, '/job/list?state=done&limit=1000')).count - before;
  return { perSecond: personIds.length / seconds, done, other: personIds.length - done, window };
}

function rpc(ports: Ports, service: 'common' | 'object', method: string, params: unknown[]): Promise<any> {
  const client = xmlrpc.createClient({ host: '127.0.0.1', port: ports.fso, path: `/xmlrpc/2/${service}` });
  return new Promise((resolve, reject) => client.methodCall(method, params, (err, value) => (err ? reject(err) : resolve(value))));
}

/** ms per person for the reads an up-to-date job cannot avoid: the person over TDS, the partner over XML-RPC */
async function bareReads(ports: Ports, pool: sql.ConnectionPool, persons: Array<{ PersonID: number; sosync_fso_id: number }>): Promise<number> {
  const uid = await rpc(ports, 'common', 'authenticate', ['sandbox', 'sosync', 'sosync', {}]);
  const started = performance.now();
  for (const p of persons) {
    await pool.request().input('id', sql.Int, p.PersonID).query('SELECT * FROM dbo.Person WHERE PersonID = @id');
    await rpc(ports, 'object', 'execute_kw', ['sandbox', uid, 'sosync', 'res.partner', 'read', [[p.sosync_fso_id]], {}]);
  }
  return (performance.now() - started) / persons.length;
}

export async function measureSandbox(results: Results): Promise<void> {
  const profileDir = process.env.BENCH_SANDBOX_PROFILE ? path.resolve(process.env.BENCH_SANDBOX_PROFILE) : null;
  if (profileDir) fs.mkdirSync(profileDir, { recursive: true });
  ensureBuilt();
  const bare = [await barePgliteStart(), await barePgliteStart()];
  const bareMs = median(bare);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sosync-bench-sandbox-'));
  const cacheDir = path.join(tmp, 'cache');
  const newPorts = async (): Promise<Ports> => ({ http: await freePort(), fso: await freePort(), fs: await freePort(), ntp: await freePort() });
  let ports = await newPorts();
  let started: Started | null = null;
  let pool: sql.ConnectionPool | null = null;
  /** the stretches of the profiled process's life to show on their own */
  const windows: Array<{ title: string; window: Window }> = [];
  const stop = async () => {
    if (!started) return;
    started.child.kill('SIGINT');
    const stopped = await Promise.race([started.exit.then(() => true), sleep(15_000).then(() => false)]);
    if (!stopped) started.child.kill('SIGKILL');
    started = null;
  };
  try {
    const rounds = [
      [1, 'empty cache: the first start on a machine without `npm install` having run'],
      [2, 'after `npm install`: the empty database it prepared, no demo data kept yet'],
      [3, 'the cache the first start left'],
    ] as const;
    for (const [round, cache] of rounds) {
      const cwd = path.join(tmp, `run${round}`);
      fs.mkdirSync(cwd);
      await stop();
      if (round === 2) {
        // what `npm install` leaves (its prepare script, sandbox/prepareTemplate.ts): the empty database only
        const kept = path.join(cacheDir, 'sosync');
        for (const f of fs.readdirSync(kept)) if (!f.startsWith('pglite-')) fs.rmSync(path.join(kept, f));
        if (fs.readdirSync(kept).length !== 1) throw new Error(`the first start left no empty database in ${kept}`);
      }
      ports = await newPorts();
      // the profile is of the last process, the one that also runs the jobs
      started = await startSandbox(ports, cwd, cacheDir, round === 3 ? profileDir : null);
      const startSeconds = started.ms / 1000;
      if (round === 3) windows.push({ title: 'spawn → first 200 (the cache the first start left)', window: started.window });
      results.add({
        store: 'sandbox',
        benchmark: `\`npm start\` with no configuration: spawn → first 200 from /service/status (1,000 demo persons seeded, in memory; ${cache})`,
        value: `${startSeconds.toFixed(2)} s`,
        baseline: `spawn → one bare PGlite.create() in its own node process ${(bareMs / 1000).toFixed(2)} s`,
        ratio: started.ms / bareMs,
        target: `≤ ${SANDBOX_TARGETS.startSeconds} s`,
        met: startSeconds <= SANDBOX_TARGETS.startSeconds,
      });
    }
    pool = await new sql.ConnectionPool({
      server: '127.0.0.1', port: ports.fs, database: 'mdb_sandbox', user: 'sosync', password: 'sosync',
      options: { encrypt: false, trustServerCertificate: true },
    }).connect();
    const synced = (await pool.request().query(`SELECT TOP ${JOBS} PersonID, sosync_fso_id FROM dbo.Person WHERE sosync_fso_id IS NOT NULL ORDER BY PersonID`)).recordset;
    const unsynced = (await pool.request().query(`SELECT TOP ${JOBS} PersonID FROM dbo.Person WHERE sosync_fso_id IS NULL ORDER BY PersonID`)).recordset;
    if (synced.length < JOBS || unsynced.length < JOBS) throw new Error(`the seed has ${synced.length} synced and ${unsynced.length} unsynced persons; ${JOBS} of each needed`);
    const readMs = await bareReads(ports, pool, synced.slice(0, 20));
    const readsPerSecond = 1000 / readMs;

    const upToDate = await throughput(ports, synced.map((p) => p.PersonID as number));
    results.add({
      store: 'sandbox',
      benchmark: `up-to-date jobs/s: ${JOBS} synced FS persons announced over /job/create until none is open (${upToDate.done} done, ${upToDate.other} otherwise)`,
      value: `${upToDate.perSecond.toFixed(1)} jobs/s`,
      baseline: `bare reads from outside (person over TDS + partner over XML-RPC) ${readsPerSecond.toFixed(1)} /s`,
      ratio: upToDate.perSecond / readsPerSecond,
      target: `≥ ${SANDBOX_TARGETS.upToDatePerSecond} jobs/s`,
      met: upToDate.perSecond >= SANDBOX_TARGETS.upToDatePerSecond,
    });
    windows.push({ title: 'the up-to-date jobs', window: upToDate.window });
    const creates = await throughput(ports, unsynced.map((p) => p.PersonID as number));
    windows.push({ title: 'the creates', window: creates.window });
    results.add({
      store: 'sandbox',
      benchmark: `creates/s: ${JOBS} FS persons not yet in FSO announced over /job/create until none is open (${creates.done} done, ${creates.other} otherwise)`,
      value: `${creates.perSecond.toFixed(1)} jobs/s`,
      baseline: `bare reads from outside ${readsPerSecond.toFixed(1)} /s`,
      ratio: creates.perSecond / readsPerSecond,
      target: `≥ ${SANDBOX_TARGETS.createsPerSecond} jobs/s`,
      met: creates.perSecond >= SANDBOX_TARGETS.createsPerSecond,
    });
  } finally {
    await pool?.close().catch(() => undefined);
    await stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (profileDir) {
    const newest = newestProfileIn(profileDir);
    if (newest) {
      results.section('Sandbox: where the time goes (node --cpu-prof, top self time)', `The sandbox process over its whole life. ${profileTables(selfTime(newest), 15)}`);
      for (const { title, window } of windows) {
        const part = selfTime(newest, window);
        if (part.windowed) results.section(`Sandbox profile: ${title}`, profileTables(part, 12));
      }
    }
  }
}
