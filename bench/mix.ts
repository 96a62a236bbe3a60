/**
 * Realistic throughput (issue 14 point 7): the stand-ins in a process of their own with an injected
 * latency per call (sandbox_fs_latency_ms, sandbox_fso_latency_ms), sosync in a process of its own
 * on a PostgreSQL sync table, and the crash harness's mixed workload (bench/harness/mix.ts: creates,
 * updates and deletes in both directions, all flows, bPKs with child jobs), bounded.
 *
 * The changes are made first, while a collector on sosync's port takes the stand-ins'
 * announcements; then sosync starts and gets them all at once, so what is timed is sosync working a
 * queue, not the generator. Figures: jobs/s from the first announcement to an empty queue, against
 * the floor of that run — the round trips the stand-ins answered in the window (counted in their
 * process) × the injected latency, i.e. the best one worker could do if nothing else took time —
 * and the CPU seconds of each process (/proc/<pid>/stat) in the window. sosync runs under
 * `node --cpu-prof`; the top self-time functions of its profile go into the RESULTS section.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createTestDatabase } from '../test/support/postgres.ts';
import { freePort } from '../test/support/ports.ts';
import { monotonicUs, newestProfileIn, profileTables, selfTime } from './cpuProfile.ts';
import { Mix, randomSource, type Announcement } from './harness/mix.ts';
import {
  connectSystems, cpuSeconds, endGently, ensureBuilt, jobDateNow, postJob, root, sleep, sosyncBin, startStandIns, statusOf, waitFor, writeSosyncConf,
  type StandInsProcess,
} from './harness/processes.ts';
import type { Results } from './results.ts';

const OPS = Number(process.env.BENCH_MIX_N ?? 150);
const PERSONS = Number(process.env.BENCH_MIX_PERSONS ?? 200);
const FS_LATENCY_MS = Number(process.env.BENCH_MIX_FS_LATENCY_MS ?? 5);
const FSO_LATENCY_MS = Number(process.env.BENCH_MIX_FSO_LATENCY_MS ?? 20);
/** BENCH_MIX_JOB_WORKERS: sosync's `job_workers` (default 1); the curve over N is bench/workers.ts */
const JOB_WORKERS = Number(process.env.BENCH_MIX_JOB_WORKERS ?? 1);
/** the queue must be empty within this time after the announcements */
const DRAIN_TIMEOUT_MS = 600_000;

/** The stand-ins' answered round trips, asked for over SIGUSR2. */
async function roundTrips(stand: StandInsProcess): Promise<{ fs: number; fso: number }> {
  const seen = stand.output().length;
  stand.child.kill('SIGUSR2');
  const line = await waitFor('the stand-ins\' round trips', 10_000, async () => stand.output().slice(seen).match(/standins round trips fs=(\d+) fso=(\d+)/));
  return { fs: Number(line[1]), fso: Number(line[2]) };
}

interface Announced {
  contentType: string;
  body: Buffer;
}

/** Takes announcements on sosync's port while sosync is not running yet. */
async function collector(port: number): Promise<{ received: Announced[]; close(): Promise<void> }> {
  const received: Announced[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ contentType: req.headers['content-type'] ?? 'application/json', body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"job_id":0}');
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { received, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

export async function measureMix(results: Results): Promise<void> {
  ensureBuilt();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sosync-mix-'));
  const sosyncPort = await freePort();
  const workers = JOB_WORKERS === 1 ? '1 worker' : `${JOB_WORKERS} workers`;
  const database = await createTestDatabase('sosync_mix');
  let stand: StandInsProcess | null = null;
  let sosync: ReturnType<typeof spawn> | null = null;
  const pool = new pg.Pool({ ...database.config, database: database.name, max: 2 });
  try {
    const inbox = await collector(sosyncPort);
    stand = await startStandIns(dir, { persons: PERSONS, sosyncPort, fsLatencyMs: FS_LATENCY_MS, fsoLatencyMs: FSO_LATENCY_MS });
    const { fsPool, online } = await connectSystems(stand);
    const mix = new Mix({ fsPool, online, base: stand.base, random: randomSource(14) });
    await mix.load();
    // the one kind no system announces (nothing changed): the harness announces it itself
    const ownAnnouncements: Announcement[] = [];
    for (let i = 0; i < OPS; i++) {
      const { kind, announce } = await mix.next();
      if (kind === 'fs announce unsynced person') ownAnnouncements.push(...announce);
    }
    await fsPool.close();
    online.close();
    // FS announces from an outbox, FSO at once: wait until nothing more arrives
    let last = -1;
    while (inbox.received.length !== last) {
      last = inbox.received.length;
      await sleep(1500);
    }
    await inbox.close();

    const conf = writeSosyncConf(path.join(dir, 'sosync.ini'), stand.base, {
      port: String(sosyncPort), log_level: 'Warning',
      db_host: database.config.host, db_port: String(database.config.port), db_name: database.name, db_user: database.config.user,
      job_workers: String(JOB_WORKERS),
    });
    const profileDir = path.join(dir, 'profile');
    sosync = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir', profileDir, sosyncBin, '--conf', conf, '--log_file', path.join(dir, 'sosync.log')], { stdio: 'ignore' });
    const exited = new Promise<void>((resolve) => sosync!.on('exit', () => resolve()));
    await waitFor('sosync', 60_000, async () => {
      await statusOf(sosyncPort);
      return true;
    });

    const openJobs = async () => Number((await pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM sync_table WHERE job_state IN ('new', 'inprogress')")).rows[0].n);
    const cpu0 = { sosync: cpuSeconds(sosync.pid!), standIns: cpuSeconds(stand.child.pid!) };
    const trips0 = await roundTrips(stand);
    const t0 = performance.now();
    const windowFrom = monotonicUs();
    for (const a of inbox.received) {
      const r = await fetch(`http://127.0.0.1:${sosyncPort}/job/create`, { method: 'POST', headers: { 'content-type': a.contentType }, body: a.body });
      await r.arrayBuffer();
    }
    for (const a of ownAnnouncements) {
      await postJob(sosyncPort, { job_date: jobDateNow(), job_source_system: a.system, job_source_model: a.model, job_source_record_id: a.id });
    }
    await waitFor('an empty queue', DRAIN_TIMEOUT_MS, async () => (await openJobs()) === 0);
    const wallS = (performance.now() - t0) / 1000;
    const windowTo = monotonicUs();
    const trips = await roundTrips(stand);
    const cpu = { sosync: cpuSeconds(sosync.pid!) - cpu0.sosync, standIns: cpuSeconds(stand.child.pid!) - cpu0.standIns };
    const states = (await pool.query<{ job_state: string; n: number }>(
      'SELECT job_state, count(*)::int AS n FROM sync_table WHERE parent_job_id IS NULL GROUP BY job_state ORDER BY job_state')).rows;
    const children = Number((await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM sync_table WHERE parent_job_id IS NOT NULL')).rows[0].n);
    const jobs = states.reduce((a, r) => a + r.n, 0);
    const fsTrips = trips.fs - trips0.fs;
    const fsoTrips = trips.fso - trips0.fso;
    const floorS = (fsTrips * FS_LATENCY_MS + fsoTrips * FSO_LATENCY_MS) / 1000;

    await endGently(sosync, 30_000);
    const profileFile = newestProfileIn(profileDir);

    const latency = `FS ${FS_LATENCY_MS} ms, FSO ${FSO_LATENCY_MS} ms per call`;
    results.add({
      store: 'postgres', benchmark: `realistic mix, ${jobs} jobs (${OPS} changes, ${children} child jobs), ${latency}, ${workers}`,
      value: `${(jobs / wallS).toFixed(2)} jobs/s (${wallS.toFixed(1)} s)`,
      baseline: `floor: ${fsTrips} FS + ${fsoTrips} FSO round trips × latency = ${floorS.toFixed(1)} s (${(jobs / floorS).toFixed(2)} jobs/s)`,
      ratio: wallS / floorS,
    });
    results.add({
      store: 'postgres', benchmark: 'realistic mix, CPU in the window: sosync vs the stand-ins',
      value: `sosync ${cpu.sosync.toFixed(2)} s CPU (${((100 * cpu.sosync) / wallS).toFixed(0)} % of a core)`,
      baseline: `stand-ins ${cpu.standIns.toFixed(2)} s CPU (${((100 * cpu.standIns) / wallS).toFixed(0)} % of a core)`,
      ratio: cpu.sosync / cpu.standIns,
    });
    const lines = [
      `${OPS} changes made by the mix of bench/harness/mix.ts (${Object.entries(mix.counts).map(([k, n]) => `${k}: ${n}`).join(', ')}),`,
      `announced to sosync at once; ${jobs} root jobs (${states.map((r) => `${r.job_state} ${r.n}`).join(', ')}) and ${children} child jobs.`,
      `Stand-ins (PGlite FS, in-memory FSO) in their own process with ${latency}; sosync in its own process, ${workers}, PostgreSQL sync table.`,
      `Window: first announcement to an empty queue, ${wallS.toFixed(1)} s. Round trips answered by the stand-ins in the window: FS ${fsTrips}, FSO ${fsoTrips}`,
      `(everything sosync sent, the protocol worker's copies to FSO included) — ${(fsTrips / jobs).toFixed(1)} FS and ${(fsoTrips / jobs).toFixed(1)} FSO per root job.`,
      `Floor (one worker, nothing but latency): ${floorS.toFixed(1)} s; measured ÷ floor = ${(wallS / floorS).toFixed(2)}.`,
      `CPU in the window: sosync ${cpu.sosync.toFixed(2)} s, stand-ins ${cpu.standIns.toFixed(2)} s (user + system, /proc/<pid>/stat).`,
      `One worker waits for every answer, so the window is close to floor + stand-ins' CPU + sosync's CPU = `
        + `${(floorS + cpu.standIns + cpu.sosync).toFixed(1)} s (measured ${wallS.toFixed(1)} s; skipped jobs were closed by a newer announcement of their record).`,
    ];
    if (profileFile) {
      const summary = selfTime(profileFile, { from: windowFrom, to: windowTo });
      const span = summary.windowed ? 'the window only' : 'whole process life (no sample fell in the window)';
      lines.push('', `sosync CPU profile (node --cpu-prof, ${span}):`, '', profileTables(summary, 15));
    } else {
      lines.push('', 'sosync wrote no CPU profile (it did not exit on SIGTERM within 30 s).');
    }
    results.section('Realistic throughput: mixed workload with injected latency', lines.join('\n'));
  } finally {
    if (sosync && sosync.exitCode === null && sosync.signalCode === null) sosync.kill('SIGKILL');
    if (stand) {
      await endGently(stand.child, 10_000);
      if (stand.child.exitCode === null) stand.child.kill('SIGKILL');
    }
    await pool.end().catch(() => undefined);
    await database.drop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
