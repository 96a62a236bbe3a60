/**
 * Parallel workers' throughput curve (`BENCH_ONLY=workers npm run bench`): for each N of
 * BENCH_WORKERS (default 1,4,8) a sosync process with `job_workers = N` runs the same workload from
 * the same starting state, so jobs/s per N compares the same work. Each round starts from scratch:
 * a fresh FS database, fresh stand-ins on it (FS on PostgreSQL, FS and FSO each in a process of its
 * own, see startPgStandIns) with
 * an injected per-call latency (FS 5 ms per request, FSO 20 ms per call, as over a network), the
 * same untimed warm-up (WARM_UP records synced by a one-worker sosync, for the mix to change), then
 * a fresh mix with the same seed (bench/harness/mix.ts: creates, updates and deletes in both
 * systems, every flow) makes CHANGES changes while no sosync runs. The round's workload (the FS–FSO
 * links the warm-up left, changes per op kind, every announcement: system, model, id, delete) must
 * equal the curve's first round's, or the bench throws. The changes are announced in one /job/bulk-create to a sosync on a fresh PostgreSQL sync
 * table and timed until every job has ended. jobs/s (root jobs ÷ seconds) per N is set against
 * N × the one-worker figure of the same run (target ≥ 0.8 · N). Each round is checked as the HA
 * harness checks: no record in two running jobs at once (done jobs sharing a record have disjoint
 * job_start–job_end), no duplicate target, every job ended. CPU seconds of sosync and of the
 * stand-ins are read from /proc. Each timed round's sosync first runs WARM_JOBS untimed jobs of its
 * own (see there).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sql from 'mssql';
import pg from 'pg';
import type { OnlineClient } from '../src/adapters/online/index.ts';
import type { JobRow } from '../src/adapters/syncTable/index.ts';
import { utcTimestampTypes } from '../src/adapters/syncTable/database.ts';
import { EVENT_LOOP_RESOLUTION_MS } from '../src/server/metrics.ts';
import { overlaps } from '../test/support/overlaps.ts';
import { createTestDatabase, type TestDatabase } from '../test/support/postgres.ts';
import { freePort } from '../test/support/ports.ts';
import { Mix, mixWeights, randomSource, type Announcement, type OpKind } from './harness/mix.ts';
import {
  connectSystems, cpuSeconds, duplicateTargets, endGently, postgresCpuByPid, postgresCpuSecondsSince, ensureBuilt, forceDriftCheck, isLive, killHard, root, sleep, spawnSosync,
  statusOf, waitFor, writeSosyncConf, type LinkedModels, type StandInsProcess,
} from './harness/processes.ts';
import type { PgStandInsOptions } from './harness/pgStandIns.ts';
import type { Results } from './results.ts';
import { monotonicUs, newestProfileIn, profileTables, selfTime, type Window } from './cpuProfile.ts';

const WORKERS = (process.env.BENCH_WORKERS ?? '1,4,8').split(',').map(Number);
const CHANGES = Number(process.env.BENCH_WORKERS_CHANGES ?? 240);
/** records made in FS and synced before each round's changes (untimed); `unannounced` persons stay unsynced */
const WARM_UP = { persons: 150, unannounced: 100, companies: 30 };
/**
 * The warm-up sync runs one job at a time: the FSO stand-in numbers records in the order they are
 * created, so with more slots which FSO partner a person gets would change from round to round,
 * and with it which of the mix's FS and FSO changes meet on one record.
 */
const WARM_UP_WORKERS = 1;
/** the mix's seed: every round makes the same changes */
const MIX_SEED = 7;
/**
 * Jobs each timed round's sosync runs first, untimed (new FS persons it creates in FSO): a service
 * runs for days, so the round measures a process whose code is compiled, not one that is starting.
 * `BENCH_WORKERS_WARM=0` times from the first job.
 */
const WARM_JOBS = Number(process.env.BENCH_WORKERS_WARM ?? 60);

/**
 * `BENCH_WORKERS_REPEAT=k` (default 1): every worker count is measured k times, in k passes over
 * the counts, each round from scratch; a figure is the median round's (for even k the lower of the
 * two middle ones), and its ratio is set against the median one-worker round. A round lasts 3–45 s on
 * a machine shared with the stand-ins and PostgreSQL, and one round's figure moves by up to about
 * 10 % between runs of the same code.
 */
const REPEAT = Number(process.env.BENCH_WORKERS_REPEAT ?? 1);
if (!(Number.isInteger(REPEAT) && REPEAT >= 1)) throw new Error(`BENCH_WORKERS_REPEAT: "${process.env.BENCH_WORKERS_REPEAT}" is not a whole number of at least 1`);

/**
 * `BENCH_WORKERS_PROFILE=<dir>`: sosync and both stand-ins run under `node --cpu-prof` (profiles in
 * that directory), and the curve's section gets each one's self time in the timed window — where
 * each process spends its CPU per job. Profiling slows them: the figures of such a run are not
 * the curve's.
 */
const PROFILE_DIR = process.env.BENCH_WORKERS_PROFILE ? path.resolve(process.env.BENCH_WORKERS_PROFILE) : undefined;
/**
 * `BENCH_WORKERS_TRACE=<dir>`: each timed round's jobs (id, parent, start, end, state, log) and
 * sosync's FS and FSO calls in the timed window (count and mean ms, from its /metrics, read just
 * before and after the window) as JSON in that directory (`<N>-<fs ms>-<fso ms>[-<pass>].json`),
 * for a look at when the slots ran jobs, when they waited between them and what each call cost.
 */
const TRACE_DIR = process.env.BENCH_WORKERS_TRACE ? path.resolve(process.env.BENCH_WORKERS_TRACE) : undefined;
const profileArgs = (dir: string | undefined) => (dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : []);
let profiles = 0;
/** a fresh directory for one process's profile, when profiling */
const profileDirFor = (name: string) => (PROFILE_DIR ? path.join(PROFILE_DIR, `${name}-${process.pid}-${(profiles += 1)}`) : undefined);

/** Injected latency per call, FS and FSO, in ms. */
export interface Latency {
  fs: number;
  fso: number;
}

/**
 * The latencies each curve is measured at (`BENCH_WORKERS_LATENCY`, `fs/fso` pairs in ms):
 * 5/20 as in the performance issue's mix, and 10/50, nearer the 0.3 s issue 15 gives for a job
 * against real systems (a root job of the mix took 210 ms on average with one worker).
 */
export const LATENCIES: Latency[] = (process.env.BENCH_WORKERS_LATENCY ?? '5/20,10/50').split(',').map((pair) => {
  const [fs, fso] = pair.split('/').map(Number);
  if (!(fs >= 0 && fso >= 0)) throw new Error(`BENCH_WORKERS_LATENCY: "${pair}" is not an fs/fso pair of milliseconds`);
  return { fs, fso };
});

const LINKS: LinkedModels[] = [
  { fsTable: 'Person', fsKey: 'PersonID', fsoModel: 'res.partner' },
  { fsTable: 'xBPKAccount', fsKey: 'xBPKAccountID', fsoModel: 'res.company' },
  { fsTable: 'PersonBPK', fsKey: 'PersonBPKID', fsoModel: 'res.partner.bpk' },
];

/**
 * What a round's workload was, to check that every round of a curve got the same: the links the
 * warm-up left, how many changes of each op kind (a kind that found nothing to change yet falls
 * back to an update and counts as that), and every announcement in order as `system model id`
 * (with ` delete`).
 */
export interface Workload {
  /** the starting state: which FSO record each synced FS person and company is linked to */
  links: string[];
  kinds: Partial<Record<OpKind, number>>;
  announcements: string[];
}

export interface WorkersRound {
  workers: number;
  /** which pass over the worker counts this round was (BENCH_WORKERS_REPEAT), from 1 */
  pass: number;
  workload: Workload;
  /** untimed: fresh FS database and stand-ins, the warm-up sync, the mix's changes */
  setUpSeconds: number;
  announced: number;
  rootJobs: number;
  childJobs: number;
  states: Record<string, number>;
  /** from the bulk create's send to the last job_end the sync table holds (sosync's record of when the round's last job ended) */
  seconds: number;
  /** from the bulk create's send until the bench's poll saw no open job (its poll and query come on top) */
  observedSeconds: number;
  jobsPerSecond: number;
  /** done jobs sharing a record whose runs overlapped */
  clashes: string[];
  /** pairs of done jobs on different records that ran side by side */
  sideBySide: number;
  duplicates: number;
  cpu: { sosync: number; standIns: number; postgres: number };
  /** mean root-job run (job_start to job_end), ms */
  meanJobMs: number;
  /** root jobs running at once on average: their summed runs ÷ the wall time */
  meanInFlight: number;
  /** jobs that waited for a record another slot held, and jobs a deadlock sent to error_retry */
  waited: number;
  deadlocks: number;
  /**
   * sosync's event loop delay over the round, ms (its /metrics: prom-client's
   * nodejs_eventloop_lag_*, a histogram it resets at every scrape, less the sampling interval;
   * scraped just before the bulk create and once after the round, so the figures cover the round
   * and the poll that ended it): how long a callback waited for sosync's one thread. It grows as
   * the thread gets busy, and every FS, FSO and sync-table answer of a job waits about that long
   * before the job goes on.
   */
  loopDelay: LoopDelay | null;
  /** BENCH_WORKERS_PROFILE: the timed window (monotonic µs) and where sosync's profile is */
  profile?: { window: Window; sosyncDir: string };
  /** the profiles' tables, once read */
  profileText?: string;
}

/** The stand-ins: FS in one process, FSO (with the NTP stand-in) in another. */
interface PgStandIns extends StandInsProcess {
  /** both processes, for their CPU time and to end them */
  children: ChildProcess[];
  /** BENCH_WORKERS_PROFILE: where each part writes its CPU profile */
  profileDirs: Partial<Record<'fs' | 'fso', string>>;
}

/**
 * The stand-ins (harness/pgStandIns.ts), FS on a PostgreSQL database of the bench's — with the
 * sandbox's PGlite the FS stand-in runs one transaction at a time, which would be what the curve
 * measures — and FS and FSO each in a process of its own, as they are separate servers: in one
 * process, one event loop would answer both systems' calls in turn.
 */
async function startPgStandIns(fsDb: TestDatabase, latency: Latency): Promise<PgStandIns> {
  const options: PgStandInsOptions = {
    fsDb: fsDb.config, fsLatencyMs: latency.fs, fsoLatencyMs: latency.fso, user: 'sosync', password: 'bench-Passwort-1', instance: 'bench',
  };
  const children: ChildProcess[] = [];
  const outputs: string[] = [];
  const profileDirs: PgStandIns['profileDirs'] = {};
  const startPart = async (part: 'fs' | 'fso'): Promise<Partial<StandInsProcess['ports']>> => {
    const profileDir = profileDirFor(`stand-in-${part}`);
    if (profileDir) profileDirs[part] = profileDir;
    const child = spawn(process.execPath, [...profileArgs(profileDir), '--import', 'tsx', path.join(root, 'bench/harness/pgStandIns.ts'), JSON.stringify({ ...options, part })], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    const at = outputs.push('') - 1;
    child.stdout!.on('data', (c) => (outputs[at] += c));
    child.stderr!.on('data', (c) => (outputs[at] += c));
    return waitFor(`the ${part} stand-in`, 120_000, async () => {
      if (child.exitCode !== null) throw new Error(`the ${part} stand-in exited: ${outputs[at]}`);
      const ready = /^ready (.*)$/m.exec(outputs[at]);
      return ready ? JSON.parse(ready[1]) as Partial<StandInsProcess['ports']> : null;
    });
  };
  let ports: StandInsProcess['ports'];
  try {
    const [fsPorts, fsoPorts] = await Promise.all([startPart('fs'), startPart('fso')]);
    ports = { fs: fsPorts.fs!, fso: fsoPorts.fso!, ntp: fsoPorts.ntp! };
  } catch (err) {
    for (const child of children) child.kill('SIGKILL');
    throw err;
  }
  const base = {
    instance: options.instance,
    studio_mssql_host: `127.0.0.1,${ports.fs}`, studio_mssql_db: `mdb_${options.instance}`,
    studio_sosync_user: options.user, studio_sosync_pw: options.password,
    studio_mssql_encrypt: 'false', studio_mssql_trust_server_certificate: 'true',
    online_host: `http://127.0.0.1:${ports.fso}`, online_sosync_user: options.user, online_sosync_pw: options.password,
    online_ntp_port: String(ports.ntp), ntp_servers: `127.0.0.1:${ports.ntp}`,
  };
  return { child: children[0], children, ports, base, output: () => outputs.join(''), profileDirs };
}

/** The self time of the profile in `dir` within the window, as a markdown section's body; a line saying so when none was written. */
function profileOf(title: string, dir: string | undefined, window: Window): string {
  const file = newestProfileIn(dir);
  if (!file) return `${title}: no CPU profile was written.`;
  return `${title} (node --cpu-prof, the timed window):\n\n${profileTables(selfTime(file, window), 12)}`;
}

/** CPU seconds of every stand-ins process */
const standInsCpuSeconds = (standIns: PgStandIns) => standIns.children.reduce((sum, child) => sum + cpuSeconds(child.pid!), 0);

/** A new FS person, inserted straight into FS (not by sosync); answers its PersonID. */
async function insertFsPerson(fsPool: sql.ConnectionPool, vorname: string, name: string): Promise<number> {
  const request = fsPool.request().input('v', sql.NVarChar, vorname).input('n', sql.NVarChar, name);
  const [row] = (await request.query('INSERT INTO dbo.Person (Vorname, Name) VALUES (@v, @n); SELECT CAST(SCOPE_IDENTITY() AS int) AS PersonID')).recordset;
  return row.PersonID as number;
}

/** Records for the mix to change, synced once before the rounds (untimed): persons, companies, and persons never announced. */
async function warmUpChanges(fsPool: sql.ConnectionPool): Promise<Announcement[]> {
  const announce: Announcement[] = [];
  for (let i = 0; i < WARM_UP.persons + WARM_UP.unannounced; i += 1) {
    const personId = await insertFsPerson(fsPool, `Vorname${i}`, `Name${i}`);
    if (i < WARM_UP.persons) announce.push({ system: 'fs', model: 'dbo.Person', id: personId });
  }
  for (let i = 0; i < WARM_UP.companies; i += 1) {
    const [row] = (await fsPool.request().input('n', sql.NVarChar, `Verein ${i}`).query('INSERT INTO dbo.xBPKAccount (Name) VALUES (@n); SELECT CAST(SCOPE_IDENTITY() AS int) AS xBPKAccountID')).recordset;
    announce.push({ system: 'fs', model: 'dbo.xBPKAccount', id: row.xBPKAccountID });
  }
  return announce;
}

export async function measureWorkers(results: Results, say: (line: string) => void = console.log): Promise<WorkersRound[]> {
  ensureBuilt();
  const all: WorkersRound[] = [];
  for (const latency of LATENCIES) {
    say(`  FS ${latency.fs} ms, FSO ${latency.fso} ms per call:`);
    const rounds = await measureCurve(latency, say);
    report(results, latency, rounds);
    all.push(...rounds);
  }
  return all;
}

/** One round's systems, all fresh: an FS database, the stand-ins on it, clients to both, a directory for sosync. */
interface Stage {
  dir: string;
  latency: Latency;
  fsDb: TestDatabase;
  standIns: PgStandIns;
  systems: { fsPool: sql.ConnectionPool; online: OnlineClient };
}

async function openStage(latency: Latency): Promise<Stage> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sosync-workers-'));
  const fsDb = await createTestDatabase('sosync_workers_fs');
  let standIns: PgStandIns | undefined;
  try {
    standIns = await startPgStandIns(fsDb, latency);
    return { dir, latency, fsDb, standIns, systems: await connectSystems(standIns) };
  } catch (err) {
    for (const child of standIns?.children ?? []) child.kill('SIGKILL');
    await fsDb.drop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

async function closeStage(stage: Stage): Promise<void> {
  await stage.systems.fsPool.close().catch(() => undefined);
  // a profiled stand-in writes its profile as it exits on SIGTERM
  if (PROFILE_DIR) await Promise.all(stage.standIns.children.map((child) => endGently(child, 30_000)));
  for (const child of stage.standIns.children) child.kill('SIGKILL');
  await stage.fsDb.drop().catch(() => undefined);
  fs.rmSync(stage.dir, { recursive: true, force: true });
}

/**
 * One curve: a round for each N of WORKERS against stand-ins with the given latency, each on a
 * stage of its own with the same warm-up and the same changes. Throws, before timing it, when a
 * round's workload differs from the first round's: a ratio of different work means nothing.
 */
async function measureCurve(latency: Latency, say: (line: string) => void): Promise<WorkersRound[]> {
  const rounds: WorkersRound[] = [];
  // passes over the worker counts, one after the other: a slow spell of the machine falls on every N alike
  for (let pass = 1; pass <= REPEAT; pass += 1) for (const workers of WORKERS) {
    const setUpStart = performance.now();
    const stage = await openStage(latency);
    try {
      const { warmUp, announcements, workload } = await prepareWorkload(stage);
      const setUpSeconds = (performance.now() - setUpStart) / 1000;
      say(`  job_workers = ${workers}: set-up ${setUpSeconds.toFixed(1)} s (warm-up with ${WARM_UP_WORKERS} worker: ${warmUp.rootJobs} jobs synced ${WARM_UP.persons} FS persons and `
        + `${WARM_UP.companies} companies in ${warmUp.seconds.toFixed(1)} s, ${describeStates(warmUp.states)}); ${describeWorkload(workload)}`);
      if (rounds.length > 0) assertSameWorkload(rounds[0], workers, workload);
      const r: WorkersRound = { ...(await runRound(stage, workers, announcements, true, pass)), workload, setUpSeconds, pass };
      rounds.push(r);
      say(`  job_workers = ${workers}: ${r.rootJobs} jobs (${r.childJobs} child jobs) in ${r.seconds.toFixed(1)} s = ${r.jobsPerSecond.toFixed(2)} jobs/s; `
        + `${r.sideBySide} pairs side by side, ${r.clashes.length} on one record at once, ${r.duplicates} duplicate targets; `
        + `CPU sosync ${r.cpu.sosync.toFixed(1)} s, stand-ins ${r.cpu.standIns.toFixed(1)} s, PostgreSQL ≥ ${r.cpu.postgres.toFixed(1)} s; mean job ${r.meanJobMs.toFixed(0)} ms, ${r.meanInFlight.toFixed(2)} in flight`
        + (r.loopDelay ? `; sosync event loop delay mean ${r.loopDelay.meanMs.toFixed(1)} ms, p99 ${r.loopDelay.p99Ms.toFixed(1)} ms` : ""));
    } finally {
      await closeStage(stage);
    }
    const last = rounds[rounds.length - 1];
    if (last?.workers === workers && last.profile) {
      const { window, sosyncDir } = last.profile;
      last.profileText = [
        profileOf('sosync', sosyncDir, window),
        profileOf('FS stand-in', stage.standIns.profileDirs.fs, window),
        profileOf('FSO stand-in', stage.standIns.profileDirs.fso, window),
      ].join('\n\n');
      say(last.profileText);
    }
  }
  return rounds;
}

/**
 * The starting state and changes every round shares: WARM_UP records synced (untimed, with
 * WARM_UP_WORKERS), then CHANGES changes of a mix seeded with MIX_SEED, made while no sosync runs.
 * On a fresh stage the ids are the same each time: FS identities count up from a fresh database and
 * the FSO stand-in's from a fresh process, and the mix reads its pools in id order.
 */
async function prepareWorkload(stage: Stage): Promise<{ warmUp: RoundFigures; announcements: Announcement[]; workload: Workload }> {
  const warmUp = await runRound(stage, WARM_UP_WORKERS, await warmUpChanges(stage.systems.fsPool), false);
  const links = await linksOf(stage.systems.fsPool);
  const mix = new Mix({ fsPool: stage.systems.fsPool, online: stage.systems.online, base: stage.standIns.base, random: randomSource(MIX_SEED) });
  await mix.load();
  const announcements: Announcement[] = [];
  for (let i = 0; i < CHANGES; i += 1) announcements.push(...(await mix.next()).announce);
  return { warmUp, announcements, workload: workloadOf(links, mix, announcements) };
}

/** every synced FS person and company with its FSO id, in FS id order */
async function linksOf(fsPool: sql.ConnectionPool): Promise<string[]> {
  const links: string[] = [];
  for (const link of LINKS.filter((l) => l.fsTable !== 'PersonBPK')) {
    const rows = (await fsPool.request().query(`SELECT ${link.fsKey} AS id, sosync_fso_id FROM dbo.${link.fsTable} WHERE sosync_fso_id IS NOT NULL ORDER BY ${link.fsKey}`)).recordset;
    links.push(...rows.map((r) => `dbo.${link.fsTable} ${r.id} ${link.fsoModel} ${r.sosync_fso_id}`));
  }
  return links;
}

function workloadOf(links: string[], mix: Mix, announcements: Announcement[]): Workload {
  const kinds: Workload['kinds'] = {};
  // in mixWeights' order, so two workloads list their kinds alike
  for (const kind of Object.keys(mixWeights) as OpKind[]) if (mix.counts[kind]) kinds[kind] = mix.counts[kind];
  return { links, kinds, announcements: announcements.map((a) => `${a.system} ${a.model} ${a.id}${a.delete ? ' delete' : ''}`) };
}

/** Throws when `workload` (of the round with `workers`) is not the first round's. */
function assertSameWorkload(first: WorkersRound, workers: number, workload: Workload): void {
  const differs = (what: string, a: string[], b: string[]) => {
    const at = a.findIndex((x, i) => x !== b[i]);
    if (a.length === b.length && at < 0) return;
    throw new Error(`workers bench: job_workers = ${workers} ${what} than job_workers = ${first.workers}: `
      + `${a.length} vs ${b.length}${at >= 0 ? `, the first difference at #${at + 1}: "${a[at]}" vs "${b[at]}"` : ''}`);
  };
  differs('started from other links', workload.links, first.workload.links);
  const kinds = (w: Workload) => Object.entries(w.kinds).map(([kind, n]) => `${kind} ${n}`);
  differs('made other changes', kinds(workload), kinds(first.workload));
  differs('announced other records', workload.announcements, first.workload.announcements);
}

/** the op kinds and the announcements per model, in a line */
function describeWorkload(workload: Workload): string {
  const kinds = Object.entries(workload.kinds).map(([kind, n]) => `${kind} ${n}`).join(', ');
  return `${workload.links.length} FS records linked by the warm-up; ${workload.announcements.length} announcements (${describeAnnouncements(workload)}) of ${CHANGES} changes: ${kinds}`;
}

/** announcements per system and model, deletions apart */
function describeAnnouncements(workload: Workload): string {
  const perModel = new Map<string, number>();
  for (const a of workload.announcements) {
    const [system, model, , del] = a.split(' ');
    const key = `${system} ${model}${del ? ' delete' : ''}`;
    perModel.set(key, (perModel.get(key) ?? 0) + 1);
  }
  return [...perModel].map(([key, n]) => `${key} ${n}`).join(', ');
}

function describeStates(states: Record<string, number>): string {
  return Object.entries(states).map(([s, n]) => `${s} ${n}`).join(', ');
}

/** what runRound measures; the curve adds the workload and the set-up time */
type RoundFigures = Omit<WorkersRound, 'workload' | 'setUpSeconds' | 'pass'>;

/** sosync's /metrics as Prometheus text (a scrape: it also resets the event loop delay histogram) */
async function scrapeMetrics(port: number): Promise<string> {
  const answer = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (answer.status !== 200) throw new Error(`sosync's /metrics answered ${answer.status}`);
  return answer.text();
}

interface LoopDelay {
  meanMs: number;
  p99Ms: number;
}

/**
 * sosync's event loop delay since its last scrape, ms, with the sampling interval taken off (null
 * when its /metrics holds none)
 */
async function loopDelayOf(port: number): Promise<LoopDelay | null> {
  const text = await scrapeMetrics(port);
  const ms = (name: string) => {
    const m = new RegExp(`^nodejs_eventloop_lag_${name}_seconds(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
    return m ? Math.max(0, Number(m[1]) * 1000 - EVENT_LOOP_RESOLUTION_MS) : NaN;
  };
  const delay = { meanMs: ms('mean'), p99Ms: ms('p99') };
  return Object.values(delay).every(Number.isFinite) ? delay : null;
}

/**
 * Runs `announcements` through a fresh sosync with `workers` slots on a fresh sync table, after
 * WARM_JOBS untimed jobs when `warm`; timed from the bulk create until every job has ended.
 */
async function runRound(stage: Stage, workers: number, announcements: Announcement[], warm: boolean, pass = 1): Promise<RoundFigures> {
  const { dir, standIns, systems } = stage;
  const name = warm ? `sosync-${workers}` : 'sosync-warm-up';
  const database = await createTestDatabase('sosync_workers');
  const port = await freePort();
  const conf = writeSosyncConf(path.join(dir, `${name}.ini`), standIns.base, {
    port: String(port), state_dir: path.join(dir, `${name}-state`), log_level: 'Information', job_workers: String(workers),
    db_host: database.config.host, db_port: String(database.config.port), db_name: database.config.database, db_user: database.config.user,
    retry_base_ms: '300', retry_max_ms: '2000',
  });
  const profileDir = warm ? profileDirFor(`sosync-${workers}`) : undefined;
  const run = spawnSosync(conf, path.join(dir, `${name}.log`), port, profileArgs(profileDir));
  const client = new pg.Client({ ...database.config, types: utcTimestampTypes });
  try {
    await waitFor('sosync to answer', 120_000, async () => {
      if (!isLive(run)) throw new Error(`sosync exited (code ${run.child.exitCode}); see ${run.logFile}`);
      await statusOf(port);
      return true;
    });
    await client.connect();
    const timedAfter = warm && WARM_JOBS > 0 ? await warmUpProcess(port, client, systems.fsPool) : 0;
    const started = new Date();
    // one announcement per change, newest last, as the systems would have sent them
    const body = announcements.map((a, i) => ({
      job_date: new Date(started.getTime() - (announcements.length - i)).toISOString(),
      job_source_system: a.system, job_source_model: a.model, job_source_record_id: a.id,
      ...(a.delete ? { job_source_type: 'delete' } : {}),
    }));
    const callsBefore = TRACE_DIR && warm ? await callTimes(port) : null;
    await loopDelayOf(port); // resets the histogram: what the round's scrape reads is the round's
    const cpuBefore = { sosync: cpuSeconds(run.pid), standIns: standInsCpuSeconds(standIns), postgres: postgresCpuByPid() };
    const t0 = performance.now();
    const sentAt = Date.now();
    const windowFrom = monotonicUs();
    const answer = await fetch(`http://127.0.0.1:${port}/job/bulk-create`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (answer.status !== 200) throw new Error(`bulk create answered ${answer.status}: ${await answer.text()}`);
    let quietSince = Date.now();
    let lastEnded = -1;
    await waitFor(`job_workers = ${workers} to finish ${announcements.length} jobs`, 900_000, async () => {
      const { rows: [c] } = await client.query(`SELECT count(*) FILTER (WHERE job_state IN ('new', 'inprogress', 'error_retry'))::int AS open,
          count(*) FILTER (WHERE job_end IS NOT NULL)::int AS ended FROM sync_table`);
      if (c.ended !== lastEnded) { lastEnded = c.ended; quietSince = Date.now(); }
      // a missed NTP answer under load closes the drift gate for 30 minutes: lift it
      if (Date.now() - quietSince > 10_000) { quietSince = Date.now(); await forceDriftCheck(port); }
      // the round's time is its last job_end (roundSeconds): this poll only says when to stop, so it
      // need not be quick, and the less often it runs the less it takes of the cores the round runs on
      if (c.open > 0) await sleep(100);
      return c.open === 0;
    });
    const observedSeconds = (performance.now() - t0) / 1000;
    const window = { from: windowFrom, to: monotonicUs() };
    const loopDelay = await loopDelayOf(port);
    const cpu = {
      sosync: cpuSeconds(run.pid) - cpuBefore.sosync, standIns: standInsCpuSeconds(standIns) - cpuBefore.standIns,
      postgres: postgresCpuSecondsSince(cpuBefore.postgres),
    };
    const jobs = (await client.query<JobRow>('SELECT * FROM sync_table WHERE job_id > $1', [timedAfter])).rows;
    const roots = jobs.filter((j) => j.parent_job_id === null);
    const seconds = roundSeconds(sentAt, jobs, observedSeconds);
    if (TRACE_DIR && warm) writeTrace(`${workers}-${stage.latency.fs}-${stage.latency.fso}${REPEAT > 1 ? `-${pass}` : ''}`, started, seconds, jobs, callsBefore!, await callTimes(port));
    const states: Record<string, number> = {};
    for (const j of jobs) states[j.job_state] = (states[j.job_state] ?? 0) + 1;
    let duplicates = 0;
    for (const link of LINKS) {
      const d = await duplicateTargets(systems.fsPool, systems.online, link);
      duplicates += d.fs + d.fso;
    }
    const ranRoots = roots.filter((j) => j.job_start && j.job_end);
    const busyMs = ranRoots.reduce((sum, j) => sum + (j.job_end!.getTime() - j.job_start!.getTime()), 0);
    return {
      meanJobMs: busyMs / Math.max(1, ranRoots.length), meanInFlight: busyMs / 1000 / seconds,
      waited: jobs.filter((j) => j.job_log?.includes('waited for records another worker held')).length,
      deadlocks: jobs.filter((j) => j.job_log?.includes('(deadlock)') || j.job_error_text?.includes('(deadlock)')).length,
      workers, announced: announcements.length, rootJobs: roots.length, childJobs: jobs.length - roots.length, states, seconds, observedSeconds,
      jobsPerSecond: roots.length / seconds, ...overlaps(jobs), duplicates, cpu, loopDelay,
      profile: profileDir ? { window, sosyncDir: profileDir } : undefined,
    };
  } finally {
    await client.end().catch(() => undefined);
    if (profileDir) await endGently(run.child, 30_000);
    if (isLive(run)) await killHard(run);
    await database.drop();
  }
}

/**
 * A round's time: from the bulk create's send to the last job_end (sosync stamps it as the job
 * ends, on the same clock as the bench). The bench's poll (waitFor's 50 ms and 100 ms here between
 * queries) sees the end up to 150 ms and a query later; that lag is the observer's, not sosync's,
 * and in a 3 s round it would be several % of the figure. It must not exceed the observed time: a
 * job_end past it would be a clock that jumped.
 */
function roundSeconds(sentAt: number, jobs: JobRow[], observedSeconds: number): number {
  const lastEnd = Math.max(...jobs.map((j) => j.job_end?.getTime() ?? -Infinity));
  const seconds = (lastEnd - sentAt) / 1000;
  if (!(seconds > 0 && seconds <= observedSeconds)) {
    throw new Error(`workers bench: the last job_end is ${seconds.toFixed(3)} s after the bulk create, outside the observed ${observedSeconds.toFixed(3)} s`);
  }
  return seconds;
}

type CallTimes = Record<string, { count: number; sum: number }>;

/** BENCH_WORKERS_TRACE: one round's job runs and its FS and FSO calls (count, mean ms) as `<name>.json` */
function writeTrace(name: string, started: Date, seconds: number, jobs: JobRow[], before: CallTimes, after: CallTimes): void {
  const calls = Object.fromEntries(Object.entries(after).flatMap(([key, a]) => {
    const b = before[key] ?? { count: 0, sum: 0 };
    const count = a.count - b.count;
    return count > 0 ? [[key, { count, meanMs: (1000 * (a.sum - b.sum)) / count }]] : [];
  }));
  const runs = jobs.map((j) => ({ id: j.job_id, parent: j.parent_job_id, start: j.job_start, end: j.job_end, state: j.job_state, log: j.job_log }));
  fs.mkdirSync(TRACE_DIR!, { recursive: true });
  fs.writeFileSync(path.join(TRACE_DIR!, `${name}.json`), JSON.stringify({ t0: started.getTime(), seconds, calls, jobs: runs }));
}

/** BENCH_WORKERS_TRACE: sosync's FS and FSO calls so far (its /metrics), count and seconds by system and operation */
async function callTimes(port: number): Promise<CallTimes> {
  const text = await scrapeMetrics(port);
  const calls: CallTimes = {};
  for (const m of text.matchAll(/^sosync_system_call_duration_seconds_(sum|count)\{([^}]*)\} (\S+)$/gm)) {
    const entry = (calls[m[2]] ??= { count: 0, sum: 0 });
    entry[m[1] as 'sum' | 'count'] = Number(m[3]);
  }
  return calls;
}

/** WARM_JOBS new FS persons announced to the sosync on `port` and run to their end; returns the last job id. */
async function warmUpProcess(port: number, client: pg.Client, fsPool: sql.ConnectionPool): Promise<number> {
  const body: object[] = [];
  for (let i = 0; i < WARM_JOBS; i += 1) {
    const personId = await insertFsPerson(fsPool, `Warm${i}`, `Lauf${port}`);
    body.push({ job_date: new Date().toISOString(), job_source_system: 'fs', job_source_model: 'dbo.Person', job_source_record_id: personId });
  }
  const answer = await fetch(`http://127.0.0.1:${port}/job/bulk-create`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (answer.status !== 200) throw new Error(`warm-up bulk create answered ${answer.status}: ${await answer.text()}`);
  await waitFor('the warm-up jobs to end', 300_000, async () => {
    const { rows: [c] } = await client.query(`SELECT count(*) FILTER (WHERE job_state IN ('new', 'inprogress', 'error_retry'))::int AS open FROM sync_table`);
    if (c.open > 0) await sleep(20);
    return c.open === 0;
  });
  return Number((await client.query<{ last: string }>('SELECT coalesce(max(job_id), 0) AS last FROM sync_table')).rows[0].last);
}

/** The section's lines on the workload the rounds shared, and on their child jobs. */
function describeCurveWorkload(rounds: WorkersRound[]): string[] {
  if (rounds.length === 0) return [];
  const { workload } = rounds[0];
  const children = rounds.map((r) => r.childJobs);
  const perRound = rounds.map((r) => `${r.workers}: ${r.setUpSeconds.toFixed(0)} s`).join(', ');
  return [
    `Every round made the same changes and announced the same records (checked: the bench stops when a round's differ): ${describeWorkload(workload)}.`,
    '',
    children.every((n) => n === children[0])
      ? `Child jobs: ${children[0]} in every round.`
      : `Child jobs: ${rounds.map((r) => `${r.childJobs} at ${r.workers}`).join(', ')}. The announcements are the same, but whether a job makes child jobs, and how often a job runs again, depends on the order the slots run the jobs in.`,
    '',
    `Set-up per round (database, stand-ins, warm-up and changes; untimed), by job_workers: ${perRound}.`,
  ];
}

/** the round of `workers` with the median jobs/s (the lower middle one for an even count) */
function medianRound(rounds: WorkersRound[], workers: number): WorkersRound | undefined {
  const of = rounds.filter((r) => r.workers === workers).sort((a, b) => a.jobsPerSecond - b.jobsPerSecond);
  return of[Math.floor((of.length - 1) / 2)];
}

function report(results: Results, latency: Latency, rounds: WorkersRound[]): void {
  const one = medianRound(rounds, 1);
  for (const workers of WORKERS) {
    const r = medianRound(rounds, workers)!;
    const all = rounds.filter((x) => x.workers === workers);
    const ideal = one ? one.jobsPerSecond * r.workers : null;
    results.add({
      store: 'postgres',
      benchmark: `job_workers = ${r.workers}: ${r.rootJobs} jobs (${r.childJobs} child jobs) of the mix, FS ${latency.fs} ms and FSO ${latency.fso} ms per call`
        + (all.length > 1 ? ` (median of ${all.length} rounds: ${all.map((x) => x.jobsPerSecond.toFixed(2)).join(', ')} jobs/s)` : ''),
      value: `${r.jobsPerSecond.toFixed(2)} jobs/s`,
      baseline: one ? `${r.workers} × one worker (${one.jobsPerSecond.toFixed(2)} jobs/s${REPEAT > 1 ? ', median' : ''}) = ${ideal!.toFixed(2)} jobs/s` : 'no one-worker round',
      ratio: ideal ? r.jobsPerSecond / ideal : null,
      ...(ideal && r.workers > 1 ? { target: '≥ 0.8', met: r.jobsPerSecond / ideal >= 0.8 } : {}),
    });
  }
  results.section(`Parallel workers: throughput curve and checks, FS ${latency.fs} ms and FSO ${latency.fso} ms per call`, [
    `Each round starts from scratch (untimed): a fresh FS database, fresh stand-ins on it (FS ${latency.fs} ms, FSO ${latency.fso} ms injected per call; FS kept in PostgreSQL, so the FS stand-in serves transactions side by side as SQL Server does; FS and FSO each in a process of its own), ${WARM_UP.persons} FS persons and ${WARM_UP.companies} companies synced for the mix to change (by a sosync with ${WARM_UP_WORKERS} worker, so each gets the same FSO id in every round), then ${CHANGES} changes of the crash harness's mix (seed ${MIX_SEED}) made while no sosync ran. They are announced in one /job/bulk-create to a sosync on a fresh PostgreSQL sync table, timed until the last job ended (its job_end; the bench's poll noticed it later, see "observed s").`,
    '',
    ...describeCurveWorkload(rounds),
    '',
    ...(REPEAT > 1 ? [`Each worker count ran ${REPEAT} times, in ${REPEAT} passes over the counts (the table lists every round; the figures above are the median rounds').`, ''] : []),
    `${REPEAT > 1 ? '| pass ' : ''}| job_workers | jobs (child jobs) | seconds | observed s | jobs/s | speed-up vs 1 | mean job ms | jobs in flight (mean) | waited for a record / deadlocks | states | side by side | one record at once | duplicate targets | CPU s sosync | CPU s stand-ins | CPU s PostgreSQL (at least) | cores busy | sosync event loop delay mean / p99 ms |`,
    `${REPEAT > 1 ? '|---' : ''}|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|`,
    ...rounds.map((r) => `${REPEAT > 1 ? `| ${r.pass} ` : ''}| ${r.workers} | ${r.rootJobs} (${r.childJobs}) | ${r.seconds.toFixed(2)} | ${r.observedSeconds.toFixed(2)} | ${r.jobsPerSecond.toFixed(2)} | ${one ? (r.jobsPerSecond / one.jobsPerSecond).toFixed(2) : ''} | ${r.meanJobMs.toFixed(0)} | ${r.meanInFlight.toFixed(2)} | ${r.waited} / ${r.deadlocks} | ${describeStates(r.states)} | ${r.sideBySide} | ${r.clashes.length} | ${r.duplicates} | ${r.cpu.sosync.toFixed(1)} | ${r.cpu.standIns.toFixed(1)} | ${r.cpu.postgres.toFixed(1)} | ${((r.cpu.sosync + r.cpu.standIns + r.cpu.postgres) / r.observedSeconds).toFixed(2)} | ${r.loopDelay ? `${r.loopDelay.meanMs.toFixed(1)} / ${r.loopDelay.p99Ms.toFixed(1)}` : 'n/a'} |`),
    ...rounds.flatMap((r) => r.clashes.slice(0, 5).map((c) => `- job_workers = ${r.workers}: ${c}`)),
    ...rounds.flatMap((r) => (r.profileText ? ['', `### job_workers = ${r.workers}: CPU profiles (BENCH_WORKERS_PROFILE; profiled, so this round's figures above are slower than unprofiled)`, '', r.profileText] : [])),
  ].join('\n'));
}
