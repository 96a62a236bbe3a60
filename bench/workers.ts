/**
 * Parallel workers' throughput curve (`BENCH_ONLY=workers npm run bench`): the stand-ins in a
 * process of their own (FS on PostgreSQL, see startPgStandIns) with an injected per-call latency
 * (FS 5 ms per request, FSO 20 ms per call, as over a network), and for each N of BENCH_WORKERS (default 1,4,8) a sosync process with
 * `job_workers = N` on a fresh PostgreSQL sync table. Each round makes the same number of changes
 * of the crash harness's mix (bench/harness/mix.ts: creates, updates and deletes in both systems,
 * every flow) while no sosync runs, then announces them in one /job/bulk-create and times until
 * every job has ended. jobs/s per N is set against N × the one-worker figure of the same run
 * (target ≥ 0.8 · N). Each round is checked as the HA harness checks: no record in two running jobs
 * at once (done jobs sharing a record have disjoint job_start–job_end), no duplicate target, every
 * job ended. CPU seconds of sosync and of the stand-ins are read from /proc. Each timed round's
 * sosync first runs WARM_JOBS untimed jobs of its own (see there).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sql from 'mssql';
import pg from 'pg';
import type { JobRow } from '../src/adapters/syncTable/index.ts';
import { utcTimestampTypes } from '../src/adapters/syncTable/database.ts';
import { overlaps } from '../test/support/overlaps.ts';
import { createTestDatabase, type TestDatabase } from '../test/support/postgres.ts';
import { freePort } from '../test/support/ports.ts';
import { Mix, randomSource, type Announcement } from './harness/mix.ts';
import {
  connectSystems, cpuSeconds, duplicateTargets, postgresCpuSeconds, ensureBuilt, forceDriftCheck, isLive, killHard, root, sleep, spawnSosync,
  statusOf, waitFor, writeSosyncConf, type LinkedModels, type StandInsProcess,
} from './harness/processes.ts';
import type { PgStandInsOptions } from './harness/pgStandIns.ts';
import type { Results } from './results.ts';

const WORKERS = (process.env.BENCH_WORKERS ?? '1,4,8').split(',').map(Number);
const CHANGES = Number(process.env.BENCH_WORKERS_CHANGES ?? 240);
const WARM_UP = { persons: 150, unannounced: 100, companies: 30 };
/**
 * Jobs each timed round's sosync runs first, untimed (new FS persons it creates in FSO): a service
 * runs for days, so the round measures a process whose code is compiled, not one that is starting.
 * `BENCH_WORKERS_WARM=0` times from the first job.
 */
const WARM_JOBS = Number(process.env.BENCH_WORKERS_WARM ?? 60);

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

export interface WorkersRound {
  workers: number;
  announced: number;
  rootJobs: number;
  childJobs: number;
  states: Record<string, number>;
  seconds: number;
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
}

/**
 * The stand-ins in a process of their own (harness/pgStandIns.ts), FS on a PostgreSQL database of
 * the bench's: with the sandbox's PGlite the FS stand-in runs one transaction at a time, which
 * would be what the curve measures.
 */
async function startPgStandIns(fsDb: TestDatabase, latency: Latency): Promise<StandInsProcess> {
  const options: PgStandInsOptions = {
    fsDb: fsDb.config, fsLatencyMs: latency.fs, fsoLatencyMs: latency.fso, user: 'sosync', password: 'bench-Passwort-1', instance: 'bench',
  };
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'bench/harness/pgStandIns.ts'), JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  const ports = await waitFor('the stand-ins', 120_000, async () => {
    if (child.exitCode !== null) throw new Error(`stand-ins exited: ${out}`);
    const ready = /^ready (.*)$/m.exec(out);
    return ready ? JSON.parse(ready[1]) as StandInsProcess['ports'] : null;
  });
  const base = {
    instance: options.instance,
    studio_mssql_host: `127.0.0.1,${ports.fs}`, studio_mssql_db: `mdb_${options.instance}`,
    studio_sosync_user: options.user, studio_sosync_pw: options.password,
    studio_mssql_encrypt: 'false', studio_mssql_trust_server_certificate: 'true',
    online_host: `http://127.0.0.1:${ports.fso}`, online_sosync_user: options.user, online_sosync_pw: options.password,
    online_ntp_port: String(ports.ntp), ntp_servers: `127.0.0.1:${ports.ntp}`,
  };
  return { child, ports, base, output: () => out };
}

/** Records for the mix to change, synced once before the rounds (untimed): persons, companies, and persons never announced. */
async function warmUpChanges(fsPool: sql.ConnectionPool): Promise<Announcement[]> {
  const announce: Announcement[] = [];
  for (let i = 0; i < WARM_UP.persons + WARM_UP.unannounced; i += 1) {
    const request = fsPool.request().input('v', sql.NVarChar, `Vorname${i}`).input('n', sql.NVarChar, `Name${i}`);
    const [row] = (await request.query('INSERT INTO dbo.Person (Vorname, Name) OUTPUT INSERTED.PersonID VALUES (@v, @n)')).recordset;
    if (i < WARM_UP.persons) announce.push({ system: 'fs', model: 'dbo.Person', id: row.PersonID });
  }
  for (let i = 0; i < WARM_UP.companies; i += 1) {
    const [row] = (await fsPool.request().input('n', sql.NVarChar, `Verein ${i}`).query('INSERT INTO dbo.xBPKAccount (Name) OUTPUT INSERTED.xBPKAccountID VALUES (@n)')).recordset;
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

/** One curve: a round for each N of WORKERS, against stand-ins with the given latency. */
async function measureCurve(latency: Latency, say: (line: string) => void): Promise<WorkersRound[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sosync-workers-'));
  const fsDb = await createTestDatabase('sosync_workers_fs');
  const standIns = await startPgStandIns(fsDb, latency);
  const rounds: WorkersRound[] = [];
  const systems = await connectSystems(standIns);
  try {
    const warmUp = await round(Math.max(...WORKERS), await warmUpChanges(systems.fsPool), false);
    say(`  warm-up: ${warmUp.rootJobs} jobs synced ${WARM_UP.persons} FS persons and ${WARM_UP.companies} companies in ${warmUp.seconds.toFixed(1)} s`);
    const mix = new Mix({ fsPool: systems.fsPool, online: systems.online, base: standIns.base, random: randomSource(7) });
    await mix.load();
    for (const workers of WORKERS) {
      const announcements: Announcement[] = [];
      for (let i = 0; i < CHANGES; i += 1) announcements.push(...(await mix.next()).announce);
      rounds.push(await round(workers, announcements));
      const r = rounds.at(-1)!;
      say(`  job_workers = ${workers}: ${r.rootJobs} jobs (${r.childJobs} child jobs) in ${r.seconds.toFixed(1)} s = ${r.jobsPerSecond.toFixed(2)} jobs/s; `
        + `${r.sideBySide} pairs side by side, ${r.clashes.length} on one record at once, ${r.duplicates} duplicate targets; `
        + `CPU sosync ${r.cpu.sosync.toFixed(1)} s, stand-ins ${r.cpu.standIns.toFixed(1)} s, PostgreSQL ≥ ${r.cpu.postgres.toFixed(1)} s; mean job ${r.meanJobMs.toFixed(0)} ms, ${r.meanInFlight.toFixed(2)} in flight`);
    }
  } finally {
    await systems.fsPool.close().catch(() => undefined);
    standIns.child.kill('SIGKILL');
    await fsDb.drop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }

  /** Runs `announcements` through a fresh sosync with `workers` slots, after WARM_JOBS untimed jobs when `warm`. */
  async function round(workers: number, announcements: Announcement[], warm = true): Promise<WorkersRound> {
    const database = await createTestDatabase('sosync_workers');
    const port = await freePort();
    const conf = writeSosyncConf(path.join(dir, `sosync-${workers}.ini`), standIns.base, {
      port: String(port), state_dir: path.join(dir, `state-${workers}`), log_level: 'Information', job_workers: String(workers),
      db_host: database.config.host, db_port: String(database.config.port), db_name: database.config.database, db_user: database.config.user,
      retry_base_ms: '300', retry_max_ms: '2000',
    });
    const run = spawnSosync(conf, path.join(dir, `sosync-${workers}.log`), port);
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
      const cpuBefore = { sosync: cpuSeconds(run.pid), standIns: cpuSeconds(standIns.child.pid!), postgres: postgresCpuSeconds() };
      const t0 = performance.now();
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
        if (c.open > 0) await sleep(20);
        return c.open === 0;
      });
      const seconds = (performance.now() - t0) / 1000;
      const cpu = {
        sosync: cpuSeconds(run.pid) - cpuBefore.sosync, standIns: cpuSeconds(standIns.child.pid!) - cpuBefore.standIns,
        postgres: postgresCpuSeconds() - cpuBefore.postgres,
      };
      const jobs = (await client.query<JobRow>('SELECT * FROM sync_table WHERE job_id > $1', [timedAfter])).rows;
      const roots = jobs.filter((j) => j.parent_job_id === null);
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
        workers, announced: announcements.length, rootJobs: roots.length, childJobs: jobs.length - roots.length, states, seconds,
        jobsPerSecond: roots.length / seconds, ...overlaps(jobs), duplicates, cpu,
      };
    } finally {
      await client.end().catch(() => undefined);
      if (isLive(run)) await killHard(run);
      await database.drop();
    }
  }
  return rounds;
}

/** WARM_JOBS new FS persons announced to the sosync on `port` and run to their end; returns the last job id. */
async function warmUpProcess(port: number, client: pg.Client, fsPool: sql.ConnectionPool): Promise<number> {
  const body: object[] = [];
  for (let i = 0; i < WARM_JOBS; i += 1) {
    const request = fsPool.request().input('v', sql.NVarChar, `Warm${i}`).input('n', sql.NVarChar, `Lauf${port}`);
    const [row] = (await request.query('INSERT INTO dbo.Person (Vorname, Name) OUTPUT INSERTED.PersonID VALUES (@v, @n)')).recordset;
    body.push({ job_date: new Date().toISOString(), job_source_system: 'fs', job_source_model: 'dbo.Person', job_source_record_id: row.PersonID });
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

function report(results: Results, latency: Latency, rounds: WorkersRound[]): void {
  const one = rounds.find((r) => r.workers === 1);
  for (const r of rounds) {
    const ideal = one ? one.jobsPerSecond * r.workers : null;
    results.add({
      store: 'postgres',
      benchmark: `job_workers = ${r.workers}: ${r.rootJobs} jobs of the mix, FS ${latency.fs} ms and FSO ${latency.fso} ms per call`,
      value: `${r.jobsPerSecond.toFixed(2)} jobs/s`,
      baseline: one ? `${r.workers} × one worker (${one.jobsPerSecond.toFixed(2)} jobs/s) = ${ideal!.toFixed(2)} jobs/s` : 'no one-worker round',
      ratio: ideal ? r.jobsPerSecond / ideal : null,
      ...(ideal && r.workers > 1 ? { target: '≥ 0.8', met: r.jobsPerSecond / ideal >= 0.8 } : {}),
    });
  }
  results.section(`Parallel workers: throughput curve and checks, FS ${latency.fs} ms and FSO ${latency.fso} ms per call`, [
    `Each round: ${CHANGES} changes of the crash harness's mix made while no sosync ran, announced in one /job/bulk-create, timed until every job ended; a fresh PostgreSQL sync table per round, the same stand-ins process throughout (FS ${latency.fs} ms, FSO ${latency.fso} ms injected per call; FS kept in PostgreSQL, so the FS stand-in serves transactions side by side as SQL Server does). Before the rounds, ${WARM_UP.persons} FS persons and ${WARM_UP.companies} companies are synced once (untimed) for the mix to change.`,
    '',
    '| job_workers | jobs (child jobs) | seconds | jobs/s | speed-up vs 1 | mean job ms | jobs in flight (mean) | waited for a record / deadlocks | states | side by side | one record at once | duplicate targets | CPU s sosync | CPU s stand-ins | CPU s PostgreSQL (at least) | cores busy |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rounds.map((r) => `| ${r.workers} | ${r.rootJobs} (${r.childJobs}) | ${r.seconds.toFixed(1)} | ${r.jobsPerSecond.toFixed(2)} | ${one ? (r.jobsPerSecond / one.jobsPerSecond).toFixed(2) : ''} | ${r.meanJobMs.toFixed(0)} | ${r.meanInFlight.toFixed(2)} | ${r.waited} / ${r.deadlocks} | ${Object.entries(r.states).map(([s, n]) => `${s} ${n}`).join(', ')} | ${r.sideBySide} | ${r.clashes.length} | ${r.duplicates} | ${r.cpu.sosync.toFixed(1)} | ${r.cpu.standIns.toFixed(1)} | ${r.cpu.postgres.toFixed(1)} | ${((r.cpu.sosync + r.cpu.standIns + r.cpu.postgres) / r.seconds).toFixed(2)} |`),
    ...rounds.flatMap((r) => r.clashes.slice(0, 5).map((c) => `- job_workers = ${r.workers}: ${c}`)),
  ].join('\n'));
}
