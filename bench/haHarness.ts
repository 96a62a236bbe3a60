/**
 * High-availability harness: several built sosync processes (`node dist/src/main.js --conf`) on one
 * PostgreSQL sync table, the stand-ins in a process of their own (`dist/sandbox/standins.js` with a
 * data directory), jobs announced to random processes while the active process is SIGKILLed and
 * restarted again and again. At the end it checks, from outside:
 *   - every announced job finished (none `new`/`inprogress`);
 *   - no two processes ran jobs at the same time (each process logs "job started" and the job's
 *     outcome; a killed process's open job ends at the moment of the kill);
 *   - no duplicate target (FSO partners per sosync_fs_id, FS persons per sosync_fso_id);
 * and reports how long each takeover took (kill → a standby reports itself active).
 * All traffic stays on 127.0.0.1; every wait is bounded.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createTestDatabase } from '../test/support/postgres.ts';
import { freePort } from '../test/support/ports.ts';
import {
  connectSystems, duplicateTargets, ensureBuilt, isLive, jobDateNow, killHard, PERSON_LINK, postJob, sleep, spawnSosync,
  startStandIns, statusOf, waitFor, writeSosyncConf, type SosyncRun,
} from './harness/processes.ts';

export { ensureBuilt } from './harness/processes.ts';

export interface HaOptions {
  processes: number;
  jobs: number;
  kills: number;
  /** progress lines go here */
  say?: (line: string) => void;
}

export interface HaResult {
  kills: number;
  jobs: number;
  jobStates: Record<string, number>;
  unfinished: number;
  overlaps: string[];
  duplicateFsoPartners: number;
  duplicateFsPersons: number;
  /** kill → a standby answers /service/status as active */
  takeoverMs: number[];
  /** kill → a standby logs that it holds the worker lock */
  lockTakeoverMs: number[];
  seconds: number;
}

interface Incarnation extends SosyncRun {
  slot: number;
}

interface Interval {
  pid: number;
  jobId: number;
  start: number;
  end: number;
}

/** When each run logged that it took the worker lock. */
function lockTakenAt(run: Incarnation): number[] {
  const text = fs.existsSync(run.logFile) ? fs.readFileSync(run.logFile, 'utf8') : '';
  return text.split('\n').filter((l) => l.includes('holding the job worker lock')).map((l) => Date.parse((JSON.parse(l) as { time: string }).time));
}

/** Root-job intervals of one process from its log: "job started" (first for the job) → outcome line. */
function intervalsOf(run: Incarnation, endOfRun: number): Interval[] {
  const open = new Map<number, number>();
  const out: Interval[] = [];
  const text = fs.existsSync(run.logFile) ? fs.readFileSync(run.logFile, 'utf8') : '';
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { time: string; msg: string; job_id?: number };
    if (typeof entry.job_id !== 'number') continue;
    const t = Date.parse(entry.time);
    if (entry.msg === 'job started') {
      if (!open.has(entry.job_id)) open.set(entry.job_id, t);
    } else if (/^job (done|skipped|error|aborted|requeued)|job ended/.test(entry.msg)) {
      const start = open.get(entry.job_id);
      if (start !== undefined) out.push({ pid: run.pid, jobId: entry.job_id, start, end: t });
      open.clear();
    }
  }
  // child jobs start inside their root; whatever is still open ran until the process ended
  const firstOpen = Math.min(...open.values());
  if (open.size > 0) out.push({ pid: run.pid, jobId: [...open.keys()][0], start: firstOpen, end: run.killedAt ?? endOfRun });
  return out;
}

export async function runHaHarness(options: HaOptions): Promise<HaResult> {
  const say = options.say ?? (() => undefined);
  const started = Date.now();
  ensureBuilt();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sosync-ha-'));
  const database = await createTestDatabase('sosync_ha');
  const children: ChildProcess[] = [];
  const runs: Incarnation[] = [];
  try {
    // --- the stand-ins, in their own process ---------------------------------------------------
    const sosyncPorts = await Promise.all(Array.from({ length: options.processes }, () => freePort()));
    const persons = Math.ceil(options.jobs / 0.8) + 5;
    const standIns = await startStandIns(dir, { persons, sosyncPort: sosyncPorts[0] });
    children.push(standIns.child);
    say(`stand-ins up (${persons} FS persons)`);

    // --- sosync processes ------------------------------------------------------------------------
    const confOf = (slot: number): string => writeSosyncConf(path.join(dir, `sosync-${slot}.ini`), standIns.base, {
      port: String(sosyncPorts[slot]),
      db_host: database.config.host,
      db_port: String(database.config.port),
      db_name: database.config.database,
      db_user: database.config.user,
      state_dir: path.join(dir, `state-${slot}`),
    });
    const start = (slot: number): Incarnation => {
      const logFile = path.join(dir, `sosync-${slot}-${runs.length}.log`);
      const run: Incarnation = { ...spawnSosync(confOf(slot), logFile, sosyncPorts[slot]), slot };
      children.push(run.child);
      runs.push(run);
      return run;
    };
    const live = () => runs.filter(isLive);
    const findActive = async (): Promise<Incarnation | null> => {
      for (const run of live()) {
        const s = await statusOf(run.port).catch(() => null);
        if (s?.role === 'active') return run;
      }
      return null;
    };

    for (let slot = 0; slot < options.processes; slot++) start(slot);
    const firstActive = await waitFor('a first active process', 60_000, findActive);
    say(`${options.processes} sosync processes up; active pid ${firstActive.pid}`);

    // --- the jobs: FS persons without an FSO partner (each job creates one) ----------------------
    const { fsPool, online } = await connectSystems(standIns);
    const unsynced = (await fsPool.request().query('SELECT PersonID FROM dbo.Person WHERE sosync_fso_id IS NULL ORDER BY PersonID'))
      .recordset.map((r) => r.PersonID as number).slice(0, options.jobs);
    if (unsynced.length < options.jobs) throw new Error(`only ${unsynced.length} unsynced FS persons for ${options.jobs} jobs`);

    let announced = 0;
    const announce = async (count: number) => {
      for (const personId of unsynced.slice(announced, announced + count)) {
        // any live process takes the job: a standby stores it and wakes the active one
        await waitFor(`/job/create for person ${personId}`, 30_000, async () => {
          const targets = live();
          const target = targets[Math.floor(Math.random() * targets.length)];
          return (await postJob(target.port, { job_date: jobDateNow(), job_source_system: 'fs', job_source_model: 'dbo.Person', job_source_record_id: personId })) !== null;
        });
        announced++;
      }
    };

    // --- kill the active process again and again ---------------------------------------------------
    // a pool: a connection ended by the server (a restart, an administrator) is replaced, not fatal
    const table = new pg.Pool({ ...database.config, max: 2 });
    table.on('error', () => undefined);
    const finished = async () => Number((await table.query(`SELECT count(*) AS n FROM sync_table WHERE parent_job_id IS NULL AND job_state IN ('done', 'error', 'skipped')`)).rows[0].n);
    const takeoverMs: number[] = [];
    const killTimes: number[] = [];
    const perKill = Math.ceil(options.jobs / Math.max(options.kills, 1));
    // one batch ahead, so a kill always finds queued work
    await announce(Math.min(perKill, options.jobs));
    for (let k = 0; k < options.kills; k++) {
      const before = await finished();
      await announce(Math.min(perKill, options.jobs - announced));
      const active = await waitFor('an active process', 60_000, findActive);
      // the kills are spread over the run: a batch of jobs finishes (the first of them usually the
      // one the predecessor left), then the kill lands at a random moment, mostly inside a job
      const target = Math.min(before + perKill, announced - 1);
      await waitFor('progress after the takeover', 300_000, async () => (await finished()) >= target);
      await sleep(Math.random() * 1000);
      await killHard(active);
      killTimes.push(active.killedAt!);
      start(active.slot);
      const next = await waitFor(`a takeover after kill ${k + 1}`, 60_000, async () => {
        const run = await findActive();
        return run && run !== active ? run : null;
      });
      takeoverMs.push(Date.now() - active.killedAt!);
      say(`kill ${k + 1}/${options.kills}: pid ${active.pid} → pid ${next.pid} active after ${takeoverMs.at(-1)} ms; ${await finished()} jobs finished`);
    }
    await announce(options.jobs - announced);

    // --- the end: every job finished ---------------------------------------------------------------
    const open = async () => Number((await table.query(`SELECT count(*) AS n FROM sync_table WHERE job_state IN ('new', 'inprogress')`)).rows[0].n);
    await waitFor('every job to finish', 600_000, async () => (await open()) === 0).catch(() => undefined);
    const states = await table.query<{ job_state: string; n: string }>(
      `SELECT job_state, count(*) AS n FROM sync_table WHERE parent_job_id IS NULL GROUP BY job_state`);
    const jobStates = Object.fromEntries(states.rows.map((r) => [r.job_state, Number(r.n)]));
    const unfinished = await open();
    await table.end();

    // --- duplicates, by foreign id -----------------------------------------------------------------
    const duplicates = await duplicateTargets(fsPool, online, PERSON_LINK);
    await fsPool.close();
    online.close();

    // --- stop, then compare the processes' job intervals ----------------------------------------------
    for (const run of live()) run.child.kill('SIGTERM');
    await Promise.race([Promise.all(runs.map((r) => r.exited)), sleep(15_000)]);
    const endOfRun = Date.now();
    const intervals = runs.flatMap((r) => intervalsOf(r, endOfRun)).sort((a, b) => a.start - b.start);
    const overlaps: string[] = [];
    for (let i = 0; i < intervals.length; i++) {
      for (let j = i + 1; j < intervals.length && intervals[j].start < intervals[i].end; j++) {
        if (intervals[j].pid !== intervals[i].pid) {
          overlaps.push(`job ${intervals[i].jobId} in pid ${intervals[i].pid} and job ${intervals[j].jobId} in pid ${intervals[j].pid} overlap`);
        }
      }
    }
    say(`${intervals.length} job intervals from ${runs.length} process runs compared`);
    const taken = runs.flatMap(lockTakenAt).sort((a, b) => a - b);
    const lockTakeoverMs = killTimes.map((t) => (taken.find((at) => at >= t) ?? NaN) - t);
    return {
      kills: options.kills, jobs: options.jobs, jobStates, unfinished, overlaps,
      duplicateFsoPartners: duplicates.fso, duplicateFsPersons: duplicates.fs, takeoverMs, lockTakeoverMs, seconds: (Date.now() - started) / 1000,
    };
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await database.drop().catch(() => undefined);
    if (!process.env.SOSYNC_HA_KEEP) fs.rmSync(dir, { recursive: true, force: true });
  }
}
