/**
 * Crash harness: one built sosync process (`node dist/src/main.js --conf`) with its sync table on
 * PostgreSQL (a fresh database per run) or in PGlite (its state_dir), the stand-ins in a process of
 * their own with a data directory, a mix of changes in both systems (bench/harness/mix.ts) made
 * while jobs run, and sosync SIGKILLed at random moments and restarted again and again. At the
 * end, after a final drain, it checks from outside:
 *   - no job lost: every job the harness announced is in the sync table, and no job at all is
 *     `new`, `inprogress` or `error_retry`; a job in `error` must have an error text;
 *   - no duplicate target in either system, by foreign id (FSO records per sosync_fs_id, FS rows
 *     per sosync_fso_id), for every flow's models;
 *   - both systems agree: every linked record's mapped fields are equal (the flows' own
 *     compareFields, as /service/quick-check shows them), every link points both ways, a deleted
 *     record's counterpart is gone (or deactivated), and every record the mix made has a counterpart.
 * All traffic stays on 127.0.0.1; every wait is bounded.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createStudioClient } from '../src/adapters/studio/index.ts';
import { openSyncTable, type OpenedSyncTable } from '../src/adapters/syncTable/index.ts';
import { createFlows } from '../src/flows/index.ts';
import type { Flow } from '../src/flows/flow.ts';
import { silentLogger } from '../src/log.ts';
import { readConfig } from '../src/config/index.ts';
import { createTestDatabase, type TestDatabase } from '../test/support/postgres.ts';
import { freePort } from '../test/support/ports.ts';
import { Mix, randomSource, type Announcement, type OpKind } from './harness/mix.ts';
import {
  connectSystems, duplicateTargets, ensureBuilt, forceDriftCheck, isLive, jobDateNow, killHard, postJob, sleep, spawnSosync,
  startStandIns, statusOf, waitFor, writeSosyncConf, type LinkedModels, type SosyncRun,
} from './harness/processes.ts';

export type CrashStore = 'postgres' | 'pglite';

export interface CrashOptions {
  store: CrashStore;
  /** jobs the harness announces (one per change of the mix) */
  jobs: number;
  kills: number;
  /** seed of the mix (the kill moments are random regardless) */
  seed?: number;
  /** longest random pause between a job finishing and the kill (ms); default 1500 */
  maxKillDelayMs?: number;
  /** FS persons the stand-ins seed; default enough for the mix */
  persons?: number;
  /** bound of the final drain (ms); default 300 000 */
  drainMs?: number;
  /** the drain ends once no job was open for this long (ms); default 5000 */
  quietMs?: number;
  say?: (line: string) => void;
}

export interface CrashResult {
  store: CrashStore;
  kills: number;
  /** jobs the harness announced and got a job id for */
  jobsAnnounced: number;
  /** root jobs in the sync table (the harness's and the systems' own announcements) */
  rootJobs: number;
  childJobs: number;
  jobStates: Record<string, number>;
  /** the error texts of jobs in `error`, digits as N, with how often each came */
  errors: Record<string, number>;
  /** jobs lost: announced but not in the table, open after the drain, or an error without text */
  lost: string[];
  /** duplicate targets per model, by foreign id */
  duplicates: Record<string, number>;
  duplicateCount: number;
  /** records sosync wrote that carry no foreign id (a create whose link was never written) */
  orphans: string[];
  /** linked records whose fields differ, half links, deletions not carried, records never synced */
  disagreements: string[];
  /** linked record pairs whose fields were compared */
  compared: number;
  ops: Record<string, number>;
  /** sosync starts (the first and one per kill) */
  starts: number;
  seconds: number;
}

const LINKS: Array<LinkedModels & { fsModel: string }> = [
  { fsTable: 'Person', fsKey: 'PersonID', fsoModel: 'res.partner', fsModel: 'dbo.Person' },
  { fsTable: 'xBPKAccount', fsKey: 'xBPKAccountID', fsoModel: 'res.company', fsModel: 'dbo.xBPKAccount' },
  { fsTable: 'PersonBPK', fsKey: 'PersonBPKID', fsoModel: 'res.partner.bpk', fsModel: 'dbo.PersonBPK' },
];

const OUTCOME = /"msg":"(job (done|skipped|error|aborted|requeued)|job ended)/g;

/** how many jobs a run's log says ended */
function outcomesIn(run: SosyncRun): number {
  const text = fs.existsSync(run.logFile) ? fs.readFileSync(run.logFile, 'utf8') : '';
  return text.match(OUTCOME)?.length ?? 0;
}

export async function runCrashHarness(options: CrashOptions): Promise<CrashResult> {
  const say = options.say ?? (() => undefined);
  const started = Date.now();
  ensureBuilt();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sosync-crash-'));
  const database: TestDatabase | null = options.store === 'postgres' ? await createTestDatabase('sosync_crash') : null;
  const children: ChildProcess[] = [];
  const runs: SosyncRun[] = [];
  let table: OpenedSyncTable | null = null;
  let systems: Awaited<ReturnType<typeof connectSystems>> | null = null;
  // a harness that is itself stopped takes its children along
  const killChildren = () => { for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); };
  process.on('exit', killChildren);
  try {
    const port = await freePort();
    const persons = options.persons ?? Math.max(50, Math.ceil(options.jobs * 0.3));
    const standIns = await startStandIns(dir, { persons, sosyncPort: port });
    children.push(standIns.child);
    say(`stand-ins up (${persons} FS persons), data in ${path.join(dir, 'standins')}`);

    systems = await connectSystems(standIns);
    const { fsPool, online } = systems;
    // records without a counterpart before sosync runs: any other unlinked record at the end was
    // written by sosync without its link (an interrupted create followed by a second one)
    const unlinkedBefore = await unlinkedRecords(fsPool, online);

    const stateDir = path.join(dir, 'state');
    const conf = writeSosyncConf(path.join(dir, 'sosync.ini'), standIns.base, {
      port: String(port),
      state_dir: stateDir,
      ...(database ? {
        db_host: database.config.host, db_port: String(database.config.port), db_name: database.config.database, db_user: database.config.user,
      } : {}),
      // a job that meets a kill's aftermath (a system busy, a connection reset) is retried soon
      retry_base_ms: '500',
      retry_max_ms: '4000',
      outage_probe_interval_ms: '500',
    });
    const start = (): SosyncRun => {
      const run = spawnSosync(conf, path.join(dir, `sosync-${runs.length}.log`), port);
      children.push(run.child);
      runs.push(run);
      return run;
    };
    const current = () => runs[runs.length - 1];
    const up = async (run: SosyncRun) => {
      await waitFor(`sosync run ${runs.length} to answer`, 120_000, async () => {
        if (!isLive(run)) throw new Error(`sosync exited (code ${run.child.exitCode}); see ${run.logFile}`);
        await statusOf(run.port);
        return true;
      });
    };
    await up(start());
    say(`sosync up (pid ${current().pid}, sync table on ${options.store})`);

    const mix = new Mix({ fsPool, online, base: standIns.base, random: randomSource(options.seed ?? 12) });
    await mix.load();

    // --- the mix: changes and the harness's announcements, paced by the kills -------------------
    const announcedIds: Array<{ id: number; what: string }> = [];
    const perKill = Math.max(1, Math.ceil(options.jobs / Math.max(options.kills, 1)));
    let killsDone = 0;
    let opsDone = 0;
    let killing = true;
    const announceOne = async (a: Announcement) => {
      const job = {
        job_date: jobDateNow(), job_source_system: a.system, job_source_model: a.model, job_source_record_id: a.id,
        ...(a.delete ? { job_source_type: 'delete' } : {}),
      };
      // sosync may be down (killed, restarting): the announcement is repeated until it is stored
      const id = await waitFor(`/job/create for ${a.system} ${a.model} ${a.id}`, 180_000, async () => {
        const run = current();
        return isLive(run) ? await postJob(run.port, job) : null;
      });
      announcedIds.push({ id, what: `${a.delete ? 'delete ' : ''}${a.system} ${a.model} ${a.id}` });
    };
    const mixLoop = (async () => {
      for (let i = 0; i < options.jobs; i++) {
        // at most two batches ahead of the kills, so kills are spread over the whole mix
        const limit = Date.now() + 600_000;
        while (killing && i >= (killsDone + 2) * perKill && Date.now() < limit) await sleep(20);
        const { announce } = await mix.next();
        for (const a of announce) await announceOne(a);
        opsDone++;
      }
    })();
    let mixDone = false;
    let mixError: Error | null = null;
    mixLoop.catch((err: Error) => { mixError = err; }).finally(() => { mixDone = true; });
    const mixFailed = () => { if (mixError) throw new Error(`the mix failed: ${mixError.message}`); };

    // no job ended for 10 s: maybe a missed NTP answer closed the drift gate
    let quietCheck = Date.now();
    const unstick = async (run: SosyncRun): Promise<false> => {
      if (Date.now() - quietCheck > 10_000 && isLive(run)) {
        quietCheck = Date.now();
        await forceDriftCheck(run.port);
      }
      return false;
    };

    // --- SIGKILL at random moments, restart ------------------------------------------------------
    const random = Math.random;
    for (let k = 0; k < options.kills; k++) {
      const target = Math.min(options.jobs, (k + 1) * perKill);
      await waitFor('the mix', 600_000, async () => opsDone >= target || mixDone);
      mixFailed();
      const run = current();
      // a kill after at least one job of this run ended (the one the last kill interrupted is
      // usually the first), at a random moment — mostly inside a later job
      await waitFor('a job to end', 120_000, async () => outcomesIn(run) >= 1 || !isLive(run) || (await unstick(run))).catch(() => undefined);
      quietCheck = Date.now();
      await sleep(random() * (options.maxKillDelayMs ?? 1500));
      await killHard(run);
      killsDone++;
      await up(start());
      if ((k + 1) % 10 === 0 || k + 1 === options.kills) say(`kill ${k + 1}/${options.kills}; ${opsDone} changes made, ${announcedIds.length} jobs announced`);
    }
    killing = false;
    await mixLoop.catch(() => undefined);
    mixFailed();
    say(`mix done: ${announcedIds.length} jobs announced; draining`);

    // --- the final drain ---------------------------------------------------------------------------
    const openJobs = async (t: OpenedSyncTable) => Number((await t.db.query<{ n: string }>(
      `SELECT count(*) AS n FROM sync_table WHERE job_state IN ('new', 'inprogress', 'error_retry')`)).rows[0].n);
    if (options.store === 'postgres') table = await openTable(options.store, database, stateDir, null);
    // PGlite is sosync's alone while it runs: ask its API
    const openNow = async () => (table ? await openJobs(table) : await openViaApi(current().port));
    let quietSince = 0;
    let lastOutcomes = -1;
    await waitFor('the final drain', options.drainMs ?? 300_000, async () => {
      const n = outcomesIn(current());
      if (n !== lastOutcomes) { lastOutcomes = n; quietCheck = Date.now(); }
      if ((await openNow()) > 0) { quietSince = 0; return await unstick(current()); }
      quietSince ||= Date.now();
      // the systems' own announcements (FS retries from an outbox) may still come
      return Date.now() - quietSince > (options.quietMs ?? 5000);
    }).catch(() => undefined);
    const last = current();
    last.child.kill('SIGTERM');
    await Promise.race([last.exited, sleep(20_000)]);
    if (isLive(last)) await killHard(last);
    table ??= await openTable(options.store, database, stateDir, null);

    // --- no job lost ---------------------------------------------------------------------------------
    const rows = (await table.db.query<{ job_id: number; parent_job_id: number | null; job_state: string; job_error_text: string | null; job_source_system: string; job_source_model: string; job_source_record_id: number }>(
      'SELECT job_id, parent_job_id, job_state, job_error_text, job_source_system, job_source_model, job_source_record_id FROM sync_table')).rows;
    const byId = new Map(rows.map((r) => [Number(r.job_id), r]));
    const lost: string[] = [];
    for (const { id, what } of announcedIds) if (!byId.has(id)) lost.push(`job ${id} (${what}) was stored (HTTP 200) but is not in the sync table`);
    const describe = (r: typeof rows[number]) => `job ${r.job_id} (${r.job_source_system} ${r.job_source_model} ${r.job_source_record_id})`;
    for (const r of rows) {
      if (['new', 'inprogress', 'error_retry'].includes(r.job_state)) lost.push(`${describe(r)} is still ${r.job_state}`);
      else if (r.job_state === 'error' && !(r.job_error_text ?? '').trim()) lost.push(`${describe(r)} ended in error without a text`);
      else if (!['done', 'skipped', 'error'].includes(r.job_state)) lost.push(`${describe(r)} ended ${r.job_state}`);
    }
    const roots = rows.filter((r) => r.parent_job_id === null);
    const jobStates: Record<string, number> = {};
    for (const r of roots) jobStates[r.job_state] = (jobStates[r.job_state] ?? 0) + 1;
    const errors: Record<string, number> = {};
    for (const r of rows.filter((x) => x.job_state === 'error')) {
      const text = (r.job_error_text ?? '').split('\n')[0].replace(/\d+/g, 'N').slice(0, 160);
      errors[text] = (errors[text] ?? 0) + 1;
    }
    await table.db.close();
    table = null;

    // --- duplicates and agreement ---------------------------------------------------------------------
    const duplicates: Record<string, number> = {};
    for (const link of LINKS) {
      const d = await duplicateTargets(fsPool, online, link);
      duplicates[link.fsoModel] = d.fso;
      duplicates[`dbo.${link.fsTable}`] = d.fs;
    }
    const orphans = [...await unlinkedRecords(fsPool, online)].filter((key) => !unlinkedBefore.has(key) && !mix.made.has(key))
      .map((key) => `${key.replaceAll('|', ' ')} was written without its counterpart's id (not made by the mix, not there before)`);
    const disagreements: string[] = [];
    let compared = 0;
    const config = readConfig(['--conf', conf]).config;
    const studio = createStudioClient(config.studio, silentLogger());
    const flows = createFlows({ studio, online });
    try {
      for (const link of LINKS) {
        const flow = flows.find((f) => f.models.fso === link.fsoModel)!;
        compared += await agreement(flow, link, fsPool, online, disagreements);
      }
      // every record the mix made or changed has a counterpart (unless deleted)
      for (const [system, model, id] of mix.touched()) {
        const flow = flows.find((f) => f.models.fs === model || f.models.fso === model)!;
        const info = await flow.readModelInfo(system, id);
        if (!info) continue;
        if (info.foreignId === null) disagreements.push(`${system} ${model} ${id} was changed but has no counterpart`);
      }
    } finally {
      await studio.close();
    }
    systems = null;
    await fsPool.close();
    online.close();

    return {
      store: options.store, kills: killsDone, jobsAnnounced: announcedIds.length,
      rootJobs: roots.length, childJobs: rows.length - roots.length, jobStates, errors, lost,
      duplicates, duplicateCount: Object.values(duplicates).reduce((a, b) => a + b, 0), orphans,
      disagreements, compared, ops: mix.counts as Record<OpKind, number>, starts: runs.length,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await table?.db.close().catch(() => undefined);
    if (systems) {
      await systems.fsPool.close().catch(() => undefined);
      systems.online.close();
    }
    killChildren();
    process.off('exit', killChildren);
    await database?.drop().catch(() => undefined);
    if (!process.env.SOSYNC_CRASH_KEEP) fs.rmSync(dir, { recursive: true, force: true });
    else say(`kept ${dir}`);
  }
}

/** how many jobs /job/list shows new, inprogress or error_retry (at most one is asked for) */
async function openViaApi(port: number): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${port}/job/list?state=new,inprogress,error_retry&limit=1`, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(10_000) });
  if (r.status !== 200) throw new Error(`/job/list answered ${r.status}`);
  const body = await r.json() as unknown;
  const list = Array.isArray(body) ? body : Object.values(body as Record<string, unknown>).find(Array.isArray) ?? [];
  return (list as unknown[]).length;
}

/** the sync table as sosync left it (PGlite: only once sosync has stopped) */
async function openTable(store: CrashStore, database: TestDatabase | null, stateDir: string, previous: OpenedSyncTable | null): Promise<OpenedSyncTable> {
  if (previous) return previous;
  if (store === 'postgres') return await openSyncTable({ kind: 'postgres', ...database!.config, max: 2 });
  return await openSyncTable({ kind: 'pglite', dataDir: stateDir });
}

/** every record without a foreign id on either side, as system|model|id */
async function unlinkedRecords(fsPool: import('mssql').ConnectionPool, online: import('../src/adapters/online/index.ts').OnlineClient): Promise<Set<string>> {
  const keys = new Set<string>();
  for (const link of LINKS) {
    for (const id of await online.search(link.fsoModel, [['sosync_fs_id', '=', false]], { context: { active_test: false } })) keys.add(`fso|${link.fsoModel}|${id}`);
    const rows = (await fsPool.request().query(`SELECT [${link.fsKey}] AS id FROM dbo.[${link.fsTable}] WHERE sosync_fso_id IS NULL`)).recordset;
    for (const r of rows) keys.add(`fs|${link.fsModel}|${r.id as number}`);
  }
  return keys;
}

/**
 * Every linked pair of one flow, from both sides: the link points both ways, the mapped fields
 * agree; a record whose counterpart is gone is inactive (FSO) or gone itself. Returns the number
 * of pairs compared.
 */
async function agreement(flow: Flow, link: LinkedModels, fsPool: import('mssql').ConnectionPool, online: import('../src/adapters/online/index.ts').OnlineClient, out: string[]): Promise<number> {
  const fsRows = (await fsPool.request().query(`SELECT [${link.fsKey}] AS id, sosync_fso_id FROM dbo.[${link.fsTable}] WHERE sosync_fso_id IS NOT NULL`)).recordset as Array<{ id: number; sosync_fso_id: number }>;
  const withActive = link.fsoModel === 'res.partner';
  const fsoRecords = await online.searchRead(link.fsoModel, [['sosync_fs_id', '!=', false]], {
    fields: ['sosync_fs_id', ...(withActive ? ['active'] : [])], context: { active_test: false },
  });
  const fsoById = new Map(fsoRecords.map((r) => [r.id as number, r]));
  const fsById = new Map(fsRows.map((r) => [r.id, r]));
  let compared = 0;
  for (const row of fsRows) {
    const record = fsoById.get(row.sosync_fso_id) ?? (await online.read(link.fsoModel, row.sosync_fso_id, ['sosync_fs_id', ...(withActive ? ['active'] : [])], { context: { active_test: false } }))[0];
    const label = `dbo.${link.fsTable} ${row.id} ↔ ${link.fsoModel} ${row.sosync_fso_id}`;
    if (!record || (withActive && record.active === false)) {
      out.push(`${label}: the FSO record is ${record ? 'inactive' : 'gone'}, the FS row is still there`);
      continue;
    }
    if (record.sosync_fs_id !== row.id) {
      out.push(`${label}: the FSO record points to ${String(record.sosync_fs_id)}`);
      continue;
    }
    const fields = await flow.compareFields(row.id, row.sosync_fso_id);
    compared++;
    for (const f of fields.filter((x) => x.differs)) {
      out.push(`${label}: ${f.fs_field} ${JSON.stringify(f.fs_value)} ≠ ${f.fso_field} ${JSON.stringify(f.fso_value)}`);
    }
  }
  for (const record of fsoRecords) {
    const fsId = record.sosync_fs_id as number;
    if (fsById.get(fsId)?.sosync_fso_id === record.id) continue;
    if (withActive && record.active === false) continue; // deactivated after its FS record was deleted
    const label = `${link.fsoModel} ${String(record.id)} → dbo.${link.fsTable} ${fsId}`;
    const fsRow = (await fsPool.request().input('id', fsId).query(`SELECT sosync_fso_id FROM dbo.[${link.fsTable}] WHERE [${link.fsKey}] = @id`)).recordset[0];
    out.push(fsRow ? `${label}: the FS row points to ${String(fsRow.sosync_fso_id)}` : `${label}: the FS row is gone, the FSO record is still there`);
  }
  return compared;
}
