/**
 * Benchmarks (`npm run bench`). Each prints a ratio against a baseline measured in the same run, on
 * the same machine and database, so the numbers compare across machines:
 *   1. job engine: N jobs through the job machine and supervisor vs the bare sync-table writes one
 *      job needs (start, outcome, protocol flag) — what the actor machinery costs per job;
 *   2. /job/create over HTTP (validation, negotiation) vs store.createJob directly;
 *   3. live inspection on (nobody watching, and with a viewer) vs off for the same jobs
 *      (bench/inspection.ts);
 *   4. /job/bulk-create of 10,000 announcements over HTTP (validation, one multi-row insert) vs
 *      the same 10,000 rows stored directly by one store.createJobs call.
 * Runs on PGlite and, when reachable, on the local PostgreSQL server.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from '../src/server/app.ts';
import { formatInspectionCost, measureInspectionCost } from './inspection.ts';
import { createWorkerSystem } from '../src/machines/system.ts';
import { FlowRegistry } from '../src/flows/registry.ts';
import { silentLogger } from '../src/log.ts';
import { openTable, type StoreKind } from '../test/support/engine.ts';
import { MemoryFlow } from '../test/support/memoryFlow.ts';

const JOBS = Number(process.env.BENCH_JOBS ?? 300);
const logger = silentLogger();

async function time(fn: () => Promise<void>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function engineRun(kind: StoreKind): Promise<{ baseline: number; engine: number }> {
  const { table, drop } = await openTable(kind);
  try {
    const flow = new MemoryFlow('bench', { fs: 'dbo.Thing', fso: 'x.thing' });
    const records = Array.from({ length: JOBS }, (_, i) => flow.fs.insert({ i }));
    // baseline: the three row writes a job makes, without machines
    const baseline = await time(async () => {
      for (const r of records) {
        const job = await table.store.createJob({ job_date: new Date(), job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: r.id });
        await table.store.startJob(job.job_id);
        await table.store.updateJob(job.job_id, { job_state: 'done', job_end: new Date() });
        await table.store.updateJob(job.job_id, { job_to_fso_can_sync: true });
      }
    });
    await table.db.query('DELETE FROM sync_table');
    const workers = createWorkerSystem({
      store: table.store, flows: new FlowRegistry([flow]), logger, protocol: null, throttleMs: 0, toleranceMs: 30,
      drift: { measure: async () => ({ at: new Date(), sources: {}, ok: true }) },
    });
    const engine = await time(async () => {
      for (const r of records) {
        await table.store.createJob({ job_date: new Date(), job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: r.id, job_source_sosync_write_date: r.sosyncWriteDate });
      }
      workers.control.processJobs();
      await new Promise((r) => setTimeout(r, 5));
      await workers.whenIdle();
    });
    const done = Number((await table.db.query<{ n: string }>(`SELECT count(*) AS n FROM sync_table WHERE job_state = 'done'`)).rows[0].n);
    if (done !== JOBS) throw new Error(`expected ${JOBS} done jobs, found ${done}`);
    await workers.stop();
    return { baseline, engine };
  } finally {
    await drop();
  }
}

async function createRun(kind: StoreKind): Promise<{ direct: number; http: number }> {
  const { table, drop } = await openTable(kind);
  const flow = new MemoryFlow('bench', { fs: 'dbo.Thing', fso: 'x.thing' });
  const workers = { status: async () => ({}) as never, processJobs: () => ({}) as never, processProtocol: () => ({}) as never, forceDriftCheck: async () => ({ activity: 'idle' as const }), drift: async () => ({}), jobCreated: () => undefined };
  const flows = new FlowRegistry([flow]);
  const app = createApp({ store: table.store, hasFlow: flows.hasFlow, flows, workers, logger, commitId: () => null });
  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    void flow;
    const direct = await time(async () => {
      for (let i = 1; i <= JOBS; i++) await table.store.createJob({ job_date: new Date(), job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: i });
    });
    const viaHttp = await time(async () => {
      for (let i = 1; i <= JOBS; i++) {
        const r = await fetch(`${base}/job/create?job_date=${encodeURIComponent(new Date().toISOString())}&source_system=fs&source_model=dbo.Thing&source_record_id=${i}`);
        if (r.status !== 200) throw new Error(`create failed: ${r.status}`);
        await r.arrayBuffer();
      }
    });
    return { direct, http: viaHttp };
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await drop();
  }
}

const BULK_JOBS = Number(process.env.BENCH_BULK_JOBS ?? 10_000);

async function bulkRun(kind: StoreKind): Promise<{ direct: number; http: number; oneByOne: number }> {
  const { table, drop } = await openTable(kind);
  const flow = new MemoryFlow('bench', { fs: 'dbo.Thing', fso: 'x.thing' });
  const flows = new FlowRegistry([flow]);
  const workers = { status: async () => ({}) as never, processJobs: () => ({}) as never, processProtocol: () => ({}) as never, forceDriftCheck: async () => ({ activity: 'idle' as const }), drift: async () => ({}), jobCreated: () => undefined };
  const app = createApp({ store: table.store, hasFlow: flows.hasFlow, flows, workers, logger, commitId: () => null });
  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const jobDate = new Date().toISOString();
  const announcements = Array.from({ length: BULK_JOBS }, (_, i) => ({
    job_date: jobDate, job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: i + 1, job_source_sosync_write_date: jobDate,
  }));
  try {
    const direct = await time(async () => {
      const ids = await table.store.createJobs(announcements.map((a) => ({ ...a, job_source_system: 'fs' as const, job_date: new Date(a.job_date), job_source_sosync_write_date: new Date(a.job_source_sosync_write_date) })));
      if (ids.length !== BULK_JOBS) throw new Error(`stored ${ids.length} of ${BULK_JOBS}`);
    });
    await table.db.query('DELETE FROM sync_table');
    const viaHttp = await time(async () => {
      const r = await fetch(`${base}/job/bulk-create`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(announcements) });
      const answer = (await r.json()) as { job_ids?: number[] };
      if (r.status !== 200 || answer.job_ids?.length !== BULK_JOBS) throw new Error(`bulk create failed: ${r.status}`);
    });
    await table.db.query('DELETE FROM sync_table');
    // what the same rows cost stored one statement each (a sample of JOBS rows)
    const oneByOne = await time(async () => {
      for (let i = 1; i <= JOBS; i++) await table.store.createJob({ job_date: new Date(jobDate), job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: i });
    });
    return { direct, http: viaHttp, oneByOne };
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await drop();
  }
}

const fmt = (ms: number) => `${ms.toFixed(0)} ms`;
const perJob = (ms: number) => `${((ms / JOBS) * 1000).toFixed(0)} µs/job`;

/** BENCH_ONLY=bulk runs only the bulk-create benchmark */
const only = process.env.BENCH_ONLY;

async function main() {
  const kinds: StoreKind[] = ['pglite'];
  try {
    const { openTable: probe } = await import('../test/support/engine.ts');
    const t = await probe('postgres');
    await t.drop();
    kinds.push('postgres');
  } catch {
    console.log('PostgreSQL not reachable on 127.0.0.1:5432: PGlite only');
  }
  console.log(`sosync benchmarks, ${JOBS} jobs each, node ${process.version}`);
  for (const kind of kinds) {
    console.log(`\n[${kind}]`);
    if (only !== 'bulk') {
      const plain = await engineRun(kind);
      const inspection = await measureInspectionCost(kind);
      const create = await createRun(kind);
      console.log(`  job engine     baseline ${fmt(plain.baseline)} (${perJob(plain.baseline)}), engine ${fmt(plain.engine)} (${perJob(plain.engine)})  ratio ${(plain.engine / plain.baseline).toFixed(2)}`);
      console.log(formatInspectionCost(inspection));
      console.log(`  /job/create    direct ${fmt(create.direct)}, over HTTP ${fmt(create.http)}  ratio ${(create.http / create.direct).toFixed(2)}`);
    }
    const bulk = await bulkRun(kind);
    const perBulkJob = (ms: number) => `${((ms / BULK_JOBS) * 1000).toFixed(0)} µs/job`;
    console.log(`  /job/bulk-create ${BULK_JOBS} jobs  createJobs directly ${fmt(bulk.direct)}, over HTTP ${fmt(bulk.http)} (${perBulkJob(bulk.http)})  ratio ${(bulk.http / bulk.direct).toFixed(2)}`);
    console.log(`                   one store.createJob per row ${perJob(bulk.oneByOne)} over ${JOBS} rows  bulk over HTTP per job vs that: ${((bulk.http / BULK_JOBS) / (bulk.oneByOne / JOBS)).toFixed(3)}`);
  }
}

await main();
