/**
 * sosync end to end: the FS stand-in (TDS), the FSO stand-in (Odoo XML-RPC) and the NTP stand-in,
 * and the whole service started by `startService` from a configuration read out of an INI file —
 * the same path a real deployment takes. The stand-ins announce their changes to the service's
 * /job/create over HTTP; the service reaches them over TDS and XML-RPC.
 *
 * The sync table lives in PostgreSQL (a throw-away database) or in PGlite (in memory); the FS
 * stand-in keeps FS in a throw-away PostgreSQL database either way.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import sql from 'mssql';
import { readConfig, type Config } from '../../src/config/index.ts';
import { createLogger, silentLogger, type Logger } from '../../src/log.ts';
import { startService, type RunningService, type ServiceOptions } from '../../src/service.ts';
import type { JobRow } from '../../src/adapters/syncTable/index.ts';
import { startStudioStandIn, type StudioStandIn } from '../../sandbox/studio/index.ts';
import { startOnlineStandIn, type OnlineStandIn } from '../../sandbox/online/index.ts';
import { startNtpStandIn, type NtpStandIn } from '../../sandbox/ntp/ntpStandIn.ts';
import { createTestDatabase, type TestDatabase } from './postgres.ts';
import { freePort } from './ports.ts';

export type StoreKind = 'postgres' | 'pglite';
export const storeKinds: readonly StoreKind[] = ['postgres', 'pglite'];

/** Logins of both stand-ins; distinctive, so a test can prove it never reaches the job rows. */
export const E2E_USER = 'sosync';
export const E2E_PASSWORD = 'Pässwort-e2e-7f3c!';
export const INSTANCE = 'e2e';

export const today = (): string => new Date().toISOString().slice(0, 10);

/** A parameter for FS statements: a plain value, or one with an explicit SQL type. */
export type FsParam = unknown | { type: 'date' | 'datetime2' | 'int' | 'nvarchar' | 'bit'; value: unknown };

/** FS as its users change it: plain T-SQL through mssql (a TDS client), no loop-guard switch. */
export interface FsEditor {
  /** one statement (or batch); returns the first result set */
  query<T = Record<string, any>>(text: string, params?: Record<string, FsParam>): Promise<T[]>;
  /** statements in one transaction (FS announces one change per record and transaction) */
  transaction<T>(work: (q: FsEditor['query']) => Promise<T>): Promise<T>;
  /** INSERT, then the new row (FS's tables have triggers: no OUTPUT without INTO); date-typed columns are bound as dates */
  insert(table: string, values: Record<string, unknown>, q?: FsEditor['query']): Promise<Record<string, any>>;
  /** the rows of `table` matching `where` (T-SQL, with @params), ordered by the key */
  rows(table: string, where?: string, params?: Record<string, FsParam>): Promise<Record<string, any>[]>;
  close(): Promise<void>;
}

const dateColumns = new Set(['Geburtsdatum', 'BPKErzwungenGeburtsdatum', 'GültigVon', 'GültigBis', 'FehlerGeburtsdatum']);
const keyOf: Record<string, string> = {
  Person: 'PersonID', PersonAdresse: 'PersonAdresseID', PersonAdresseAM: 'PersonAdresseAMID', PersonEmail: 'PersonEmailID',
  PersonTelefon: 'PersonTelefonID', PersonGruppe: 'PersonGruppeID', PersonEmailGruppe: 'PersonEmailGruppeID',
  xBPKAccount: 'xBPKAccountID', PersonBPK: 'PersonBPKID',
};

function bind(request: sql.Request, name: string, param: FsParam, column?: string): void {
  const typed = param !== null && typeof param === 'object' && !(param instanceof Date) && 'type' in (param as object)
    ? param as { type: string; value: unknown } : null;
  const value = typed ? typed.value : param;
  const type = typed?.type ?? (column && dateColumns.has(column) ? 'date'
    : value instanceof Date ? 'datetime2'
    : typeof value === 'number' ? 'int'
    : typeof value === 'boolean' ? 'bit' : 'nvarchar');
  switch (type) {
    case 'date': request.input(name, sql.Date, value === null ? null : new Date(`${String(value)}T00:00:00Z`)); break;
    case 'datetime2': request.input(name, sql.DateTime2(3), value); break;
    case 'int': request.input(name, sql.Int, value); break;
    case 'bit': request.input(name, sql.Bit, value); break;
    default: request.input(name, sql.NVarChar(sql.MAX), value === null || value === undefined ? null : String(value));
  }
}

/** Rows with `date` columns as 'YYYY-MM-DD' (mssql hands them out as UTC midnight Dates). */
function normalize(row: Record<string, any>): Record<string, any> {
  const out: Record<string, any> = {};
  for (const [k, v] of Object.entries(row)) out[k] = dateColumns.has(k) && v instanceof Date ? v.toISOString().slice(0, 10) : v;
  return out;
}

export async function openFsEditor(port: number): Promise<FsEditor> {
  const pool = await new sql.ConnectionPool({
    server: '127.0.0.1', port, database: `mdb_${INSTANCE}`, user: E2E_USER, password: E2E_PASSWORD,
    options: { encrypt: false, trustServerCertificate: true, useUTC: true, appName: 'fs-user' },
    pool: { max: 2, min: 0 },
  }).connect();
  const run = (target: sql.ConnectionPool | sql.Transaction) => async <T>(text: string, params: Record<string, FsParam> = {}): Promise<T[]> => {
    const request = new sql.Request(target as sql.ConnectionPool);
    for (const [name, value] of Object.entries(params)) bind(request, name, value);
    const result = await request.query(text);
    return ((result.recordset ?? []) as Record<string, any>[]).map(normalize) as T[];
  };
  const editor: FsEditor = {
    query: run(pool),
    async transaction(work) {
      const tx = new sql.Transaction(pool);
      await tx.begin();
      try {
        const result = await work(run(tx));
        await tx.commit();
        return result;
      } catch (err) {
        await tx.rollback().catch(() => undefined);
        throw err;
      }
    },
    async insert(table, values, q = editor.query) {
      const cols = Object.keys(values);
      const request: Record<string, FsParam> = {};
      cols.forEach((c, i) => {
        const v = values[c];
        request[`p${i}`] = dateColumns.has(c) ? { type: 'date', value: v } : v;
      });
      const [row] = await q(
        `INSERT INTO dbo.[${table}] (${cols.map((c) => `[${c}]`).join(', ')}) VALUES (${cols.map((_, i) => `@p${i}`).join(', ')});\n`
          + `SELECT * FROM dbo.[${table}] WHERE [${keyOf[table] ?? `${table}ID`}] = SCOPE_IDENTITY();`,
        request,
      );
      return row;
    },
    rows: (table, where = '1 = 1', params = {}) => editor.query(`SELECT * FROM dbo.[${table}] WHERE ${where} ORDER BY [${keyOf[table] ?? table + 'ID'}];`, params),
    close: () => pool.close(),
  };
  return editor;
}

export interface EndToEnd {
  kind: StoreKind;
  service: RunningService;
  /** http://127.0.0.1:port of sosync */
  base: string;
  /** the configuration the service was started with */
  config: Config;
  fsStandIn: StudioStandIn;
  fso: OnlineStandIn;
  ntp: NtpStandIn;
  fs: FsEditor;
  /** until no job is open and both stand-ins have nothing left to announce (stable twice) */
  waitForJobs(timeoutMs?: number): Promise<void>;
  /** every sync_table row, by job_id */
  jobs(): Promise<JobRow[]>;
  /** the highest job_id so far (0 when none) */
  lastJobId(): Promise<number>;
  /** rows created after `jobId` */
  jobsAfter(jobId: number): Promise<JobRow[]>;
  /** POST /job/create with these parameters (JSON) */
  announce(params: Record<string, unknown>): Promise<{ status: number; json: any }>;
  get(path: string): Promise<{ status: number; json: any; text: string }>;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function testLogger(): Logger {
  const level = process.env.SOSYNC_TEST_LOG;
  return level ? createLogger({ level: level as 'debug' }) : silentLogger();
}

export interface EndToEndOptions extends ServiceOptions {
  /** lines added to the INI (after the defaults, so they win) */
  ini?: string[];
  /** FSO's password for sosync's login (default E2E_PASSWORD, which FS uses) */
  fsoPassword?: string;
  /** sent as Bearer token by get() and announce(), and given to the stand-ins' announcers */
  apiToken?: string;
  logger?: Logger;
}

export async function startEndToEnd(kind: StoreKind, options: EndToEndOptions = {}): Promise<EndToEnd> {
  const logger = options.logger ?? testLogger();
  const fsoPassword = options.fsoPassword ?? E2E_PASSWORD;
  const auth: Record<string, string> = options.apiToken ? { authorization: `Bearer ${options.apiToken}` } : {};
  const closers: Array<() => Promise<unknown>> = [];
  const close = async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  };
  try {
    // FS is kept in PostgreSQL for both kinds: the store under test is the sync table's, and a
    // second embedded engine would only add start-up time
    const fsDb = await createTestDatabase('sosync_e2e_fs');
    closers.push(() => fsDb.drop());
    const studioDb = new pg.Pool({ ...fsDb.config, max: 4 });
    closers.push(() => studioDb.end());
    let syncDb: TestDatabase | null = null;
    if (kind === 'postgres') {
      const db = await createTestDatabase('sosync_e2e_sync');
      syncDb = db;
      closers.push(() => db.drop());
    }

    const fsStandIn = await startStudioStandIn({
      db: studioDb,
      databaseName: `mdb_${INSTANCE}`,
      users: [{ user: E2E_USER, password: E2E_PASSWORD }],
      logger: logger.child({ side: 'fs' }),
      announceRetryMs: 200,
    });
    closers.push(() => fsStandIn.close());
    const fso = await startOnlineStandIn({
      database: INSTANCE,
      users: [{ login: E2E_USER, password: fsoPassword }],
      logger: logger.child({ side: 'fso' }),
      announceRetryDelayMs: 100,
    });
    closers.push(() => fso.close());
    const ntp = await startNtpStandIn({ host: '127.0.0.1' });
    closers.push(() => ntp.close());

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sosync-e2e-'));
    closers.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
    const ini = [
      '[sosync]',
      `instance = ${INSTANCE}`,
      'listen = 127.0.0.1',
      `port = ${await freePort()}`,
      `studio_mssql_host = 127.0.0.1,${fsStandIn.port}`,
      `studio_sosync_user = ${E2E_USER}`,
      `studio_sosync_pw = ${E2E_PASSWORD}`,
      'studio_mssql_encrypt = false',
      'studio_mssql_trust_server_certificate = true',
      `online_host = ${fso.url}`,
      `online_sosync_user = ${E2E_USER}`,
      `online_sosync_pw = ${fsoPassword}`,
      `online_ntp_port = ${ntp.port}`,
      `ntp_servers = 127.0.0.1:${ntp.port}`,
      'ntp_timeout_ms = 1000',
      // a loaded test machine measures FS's clock through a busy event loop
      'max_time_drift_ms = 2000',
      `state_dir = ${dir}`,
      'log_level = Warning',
      ...(options.ini ?? []),
      ...(syncDb ? [`db_host = ${syncDb.config.host}`, `db_port = ${syncDb.config.port}`, `db_name = ${syncDb.name}`, `db_user = ${syncDb.config.user}`] : []),
      ...(options.ini ?? []),
    ].join('\n');
    const iniFile = path.join(dir, 'e2e.ini');
    fs.writeFileSync(iniFile, `${ini}\n`, { mode: 0o600 });
    const { config, warnings } = readConfig(['--conf', iniFile]);
    if (warnings.length > 0) throw new Error(`unexpected configuration warnings: ${warnings.join('; ')}`);
    if (config.sandbox) throw new Error('the end-to-end configuration must not start the sandbox');
    // PGlite in memory: nothing of the test is left on disk
    const service = await startService(kind === 'pglite' ? { ...config, stateDir: null } : config, logger, config, options);
    closers.push(() => service.close());
    const base = service.urls[0];
    fsStandIn.engine.setAnnounceUrl(`${base}/job/create`, auth);
    fso.setAnnounceUrl(`${base}/job/create`, auth);

    const fsEditor = await openFsEditor(fsStandIn.port);
    closers.push(() => fsEditor.close());

    const db = service.table.db;
    const count = async () => Number((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM sync_table')).rows[0].n);
    const jobs = async () => (await db.query<JobRow>('SELECT * FROM sync_table ORDER BY job_id')).rows;

    const e2e: EndToEnd = {
      kind,
      service,
      base,
      config,
      fsStandIn,
      fso,
      ntp,
      fs: fsEditor,
      async waitForJobs(timeoutMs = 30_000) {
        const deadline = Date.now() + timeoutMs;
        let stable = 0;
        let lastTotal = -1;
        for (;;) {
          await fso.flushAnnouncements();
          await fsStandIn.engine.flushAnnouncements();
          const pending = await fsStandIn.engine.pendingAnnouncements();
          const open = await service.table.store.countOpenRootJobs();
          const total = await count();
          stable = pending === 0 && open === 0 && total === lastTotal ? stable + 1 : 0;
          lastTotal = total;
          if (stable >= 2) return;
          if (Date.now() > deadline) {
            const openJobs = (await jobs()).filter((j) => j.job_state === 'new' || j.job_state === 'inprogress');
            const latest = (await jobs()).slice(-5).map((j) => ({ id: j.job_id, state: j.job_state, model: j.job_source_model, system: j.job_source_system, record: j.job_source_record_id }));
            throw new Error(`jobs still open after ${timeoutMs} ms (FS announcements pending: ${pending}, open root jobs: ${open}, rows: ${total}): ${JSON.stringify(openJobs.map((j) => ({ id: j.job_id, state: j.job_state, model: j.job_source_model, log: j.job_log })))}; the latest rows: ${JSON.stringify(latest)}`);
          }
          await sleep(open > 0 ? 20 : 40);
        }
      },
      jobs,
      async lastJobId() {
        return Number((await db.query<{ n: number }>('SELECT coalesce(max(job_id), 0)::int AS n FROM sync_table')).rows[0].n);
      },
      async jobsAfter(jobId) {
        return (await db.query<JobRow>('SELECT * FROM sync_table WHERE job_id > $1 ORDER BY job_id', [jobId])).rows;
      },
      async announce(params) {
        const res = await fetch(`${base}/job/create`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify(params) });
        return { status: res.status, json: await res.json() };
      },
      async get(p) {
        const res = await fetch(base + p, { headers: auth });
        const text = await res.text();
        let json: any;
        try { json = JSON.parse(text); } catch { json = undefined; }
        return { status: res.status, json, text };
      },
      close,
    };
    return e2e;
  } catch (err) {
    await close();
    throw err;
  }
}

/** An FSO datetime text ("YYYY-MM-DD HH:MM:SS.ffffff") for /job/create. */
export function jobDate(date = new Date()): string {
  return date.toISOString().replace('T', ' ').replace('Z', '');
}

/** A short description of job rows for assertion messages. */
export function describeJobs(rows: JobRow[]): string {
  return JSON.stringify(rows.map((j) => ({
    id: j.job_id, parent: j.parent_job_id, system: j.job_source_system, model: j.job_source_model, record: j.job_source_record_id,
    type: j.job_source_type, state: j.job_state, error: j.job_error_text, log: j.job_log,
  })));
}

/** The one job created after `since` (a change announces exactly one job, and nothing echoes back). */
export async function onlyNewJob(e: EndToEnd, since: number): Promise<JobRow> {
  const rows = await e.jobsAfter(since);
  if (rows.length !== 1) throw new Error(`expected exactly one new job, got ${rows.length}: ${describeJobs(rows)}`);
  return rows[0];
}

/** The job is done, without error. */
export function assertDone(job: JobRow): void {
  if (job.job_state !== 'done') throw new Error(`job ${job.job_id} is ${job.job_state}: ${job.job_error_code ?? ''} ${job.job_error_text ?? ''} ${job.job_log ?? ''}`);
}

/** FSO keeps sosync_write_date as ISO text; FS as datetime2. */
export function sameInstant(fsoText: unknown, fsDate: unknown): boolean {
  return typeof fsoText === 'string' && fsDate instanceof Date && new Date(fsoText).getTime() === fsDate.getTime();
}
