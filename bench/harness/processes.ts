/**
 * What the harnesses that kill sosync share: the built binaries, the stand-ins in a process of
 * their own (with a data directory, so every acknowledged write survives), sosync child processes
 * started from an INI, bounded waits, and clients for FS (TDS) and FSO (XML-RPC) as an outsider
 * sees them. All traffic stays on 127.0.0.1.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ini from 'ini';
import sql from 'mssql';
import { createOnlineClient, type OnlineClient } from '../../src/adapters/online/index.ts';
import { silentLogger } from '../../src/log.ts';
import { freePort } from '../../test/support/ports.ts';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const sosyncBin = path.join(root, 'dist/src/main.js');
export const standInsBin = path.join(root, 'dist/sandbox/standins.js');

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` (errors count as "not yet") until it gives a value; fails naming `what` after `ms`. */
export async function waitFor<T>(what: string, ms: number, check: () => Promise<T | null | undefined | false>): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const value = await check().catch(() => null);
    if (value) return value;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Builds dist/ when the sources are newer (a developer's tree); the harnesses run what operators run. */
export function ensureBuilt(): void {
  const walk = (dir: string): string[] => fs.readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
  const built = fs.existsSync(sosyncBin) && fs.existsSync(standInsBin) ? Math.min(fs.statSync(sosyncBin).mtimeMs, fs.statSync(standInsBin).mtimeMs) : 0;
  const newest = Math.max(...['src', 'sandbox'].flatMap((d) => walk(path.join(root, d)).map((f) => fs.statSync(f).mtimeMs)));
  if (newest > built) {
    const r = spawnSync('npm', ['run', 'build'], { cwd: root, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`build failed: ${r.stdout}${r.stderr}`);
  }
}

export interface StandInsProcess {
  child: ChildProcess;
  ports: { fs: number; fso: number; ntp: number };
  /** the [sosync] section of the INI the stand-ins wrote */
  base: Record<string, string>;
  output(): string;
}

/**
 * `dist/sandbox/standins.js` with a data directory under `dir`, announcing to sosync on `sosyncPort`;
 * `fsLatencyMs`/`fsoLatencyMs` (default 0) delay every FS request / FSO call as a network would.
 */
export async function startStandIns(dir: string, options: { persons: number; sosyncPort: number; fsLatencyMs?: number; fsoLatencyMs?: number }): Promise<StandInsProcess> {
  const ports = { fs: await freePort(), fso: await freePort(), ntp: await freePort() };
  const dataDir = path.join(dir, 'standins');
  const child = spawn(process.execPath, [standInsBin,
    '--sandbox_data_dir', dataDir, '--sandbox_persons', String(options.persons),
    '--sandbox_fs_port', String(ports.fs), '--sandbox_fso_port', String(ports.fso), '--sandbox_ntp_port', String(ports.ntp),
    '--sandbox_fs_latency_ms', String(options.fsLatencyMs ?? 0), '--sandbox_fso_latency_ms', String(options.fsoLatencyMs ?? 0),
    '--port', String(options.sosyncPort), '--log_level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  try {
    await waitFor('the stand-ins', 300_000, async () => {
      if (child.exitCode !== null) throw new Error(`stand-ins exited: ${out}`);
      return out.includes('standins ready');
    });
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const base = ini.parse(fs.readFileSync(path.join(dataDir, 'sosync.ini'), 'utf8')).sosync as Record<string, string>;
  return { child, ports, base, output: () => out };
}

/** Writes an INI for one sosync process: the stand-ins' section with `overrides`. */
export function writeSosyncConf(file: string, base: Record<string, string>, overrides: Record<string, string>): string {
  const section = {
    ...base,
    listen: '127.0.0.1',
    log_level: 'Debug',
    // clocks are one machine's; a busy machine measures FS's offset through a slow event loop,
    // and a closed drift gate (30 min) would stall the run
    max_time_drift_ms: '2000',
    // the NTP stand-in answers through a busy event loop too; a missed answer closes the gate
    ntp_timeout_ms: '5000',
    ...overrides,
  };
  fs.writeFileSync(file, ini.stringify({ sosync: section }));
  return file;
}

/** One run of a sosync process (a restart is a new run). */
export interface SosyncRun {
  child: ChildProcess;
  pid: number;
  logFile: string;
  port: number;
  killedAt: number | null;
  exited: Promise<void>;
}

/** SIGTERM, and wait up to `timeoutMs` for the process to exit (a `--cpu-prof` process writes its profile then). */
export async function endGently(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(timeoutMs)]);
}

/** `nodeArgs`: options for node itself, before the script (e.g. `--cpu-prof`) */
export function spawnSosync(conf: string, logFile: string, port: number, nodeArgs: string[] = []): SosyncRun {
  const child = spawn(process.execPath, [...nodeArgs, sosyncBin, '--conf', conf, '--log_file', logFile], { stdio: 'ignore' });
  return {
    child, pid: child.pid!, logFile, port, killedAt: null,
    exited: new Promise((resolve) => child.on('exit', () => resolve())),
  };
}

export function isLive(run: SosyncRun): boolean {
  return run.killedAt === null && run.child.exitCode === null && run.child.signalCode === null;
}

/** SIGKILL, noted; resolves when the process is gone. */
export async function killHard(run: SosyncRun): Promise<void> {
  run.killedAt = Date.now();
  run.child.kill('SIGKILL');
  await run.exited;
}

export interface ServiceStatus {
  role?: string;
  active_process?: { pid: number } | null;
}

export async function statusOf(port: number): Promise<ServiceStatus> {
  const r = await fetch(`http://127.0.0.1:${port}/service/status`, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(2000) });
  return await r.json() as ServiceStatus;
}

/**
 * GET /service/forcedriftcheck: on a machine this busy the NTP stand-in may miss an answer, and the
 * drift gate then locks synchronisation for 30 minutes; a harness that sees no progress lifts it.
 */
export async function forceDriftCheck(port: number): Promise<void> {
  await fetch(`http://127.0.0.1:${port}/service/forcedriftcheck`, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(10_000) })
    .then((r) => r.arrayBuffer()).catch(() => undefined);
}

/** POST /job/create; the stored job's id, or null when the process did not store it. */
export async function postJob(port: number, job: Record<string, unknown>): Promise<number | null> {
  const r = await fetch(`http://127.0.0.1:${port}/job/create`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(job),
    signal: AbortSignal.timeout(5000),
  });
  if (r.status !== 200 && r.status !== 201) return null;
  const body = await r.json().catch(() => null) as { job_id?: unknown } | null;
  return typeof body?.job_id === 'number' ? body.job_id : null;
}

/** job_date as /job/create takes it: now, in UTC */
export function jobDateNow(): string {
  return new Date().toISOString().replace('T', ' ').replace('Z', '');
}

/** FS over TDS and FSO over XML-RPC, as the stand-ins' INI describes them. */
export async function connectSystems(stand: StandInsProcess): Promise<{ fsPool: sql.ConnectionPool; online: OnlineClient }> {
  const { base, ports } = stand;
  const fsPool = await new sql.ConnectionPool({
    server: '127.0.0.1', port: ports.fs, database: base.studio_mssql_db, user: base.studio_sosync_user, password: base.studio_sosync_pw,
    options: { encrypt: false, trustServerCertificate: true },
    requestTimeout: 60_000,
  }).connect();
  const online = createOnlineClient({
    host: base.online_host, database: base.instance, user: base.online_sosync_user, password: base.online_sosync_pw, timeoutMs: 60_000,
  }, silentLogger());
  return { fsPool, online };
}

/** A model pair whose records point at each other by foreign id. */
export interface LinkedModels {
  fsTable: string;
  fsKey: string;
  fsoModel: string;
}

export const PERSON_LINK: LinkedModels = { fsTable: 'Person', fsKey: 'PersonID', fsoModel: 'res.partner' };

/** How many foreign ids appear on more than one record, on either side. */
export async function duplicateTargets(fsPool: sql.ConnectionPool, online: OnlineClient, link: LinkedModels): Promise<{ fso: number; fs: number }> {
  const count = (ids: number[]) => {
    const per = new Map<number, number>();
    for (const id of ids) per.set(id, (per.get(id) ?? 0) + 1);
    return [...per.values()].filter((n) => n > 1).length;
  };
  const records = await online.searchRead(link.fsoModel, [['sosync_fs_id', '!=', false]], { fields: ['sosync_fs_id'], context: { active_test: false } });
  const rows = (await fsPool.request().query(`SELECT sosync_fso_id FROM dbo.[${link.fsTable}] WHERE sosync_fso_id IS NOT NULL`)).recordset;
  return {
    fso: count(records.map((r) => r.sosync_fs_id as number)),
    fs: count(rows.map((r) => r.sosync_fso_id as number)),
  };
}


/** clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux) */
const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) a live process has used so far, from /proc. */
export function cpuSeconds(pid: number): number {
  // fields after the command name (which may hold spaces): utime and stime are the 12th and 13th
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** CPU seconds each PostgreSQL server process alive now (the postmaster, its helpers, every backend) has used so far, by pid. */
export function postgresCpuByPid(): Map<number, number> {
  const byPid = new Map<number, number>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) === 'postgres') byPid.set(Number(entry), cpuSeconds(Number(entry)));
    } catch {
      // the process ended while we looked
    }
  }
  return byPid;
}

/**
 * CPU seconds PostgreSQL's processes used since `before` (postgresCpuByPid): each process alive now
 * counts what it used since then (all of it if it started since). A backend that ended in between
 * took its count along, so the figure is a floor; it never goes below zero, as the difference of two
 * totals did when a backend alive at the start had ended by the end.
 */
export function postgresCpuSecondsSince(before: Map<number, number>): number {
  let total = 0;
  for (const [pid, seconds] of postgresCpuByPid()) total += Math.max(0, seconds - (before.get(pid) ?? 0));
  return total;
}
