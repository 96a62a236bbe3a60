/**
 * Benchmarks (`npm run bench`). Each prints a ratio against a baseline measured in the same run, on
 * the same machine and database, so the numbers compare across machines:
 *   1. job engine: N jobs through the job machine and supervisor vs the bare sync-table writes one
 *      job needs (start, outcome, protocol flag) — what the actor machinery costs per job;
 *   2. /job/create over HTTP (validation, negotiation) vs store.createJob directly;
 *   3. live inspection on (nobody watching, and with a viewer) vs off for the same jobs
 *      (bench/inspection.ts);
 *   4. /job/bulk-create of 10,000 announcements over HTTP (validation, one multi-row insert) vs
 *      the same 10,000 rows stored directly by one store.createJobs call;
 *   5. supersede collapse: 1,000 announcements of one record vs one (bench/supersede.ts);
 *   6. pick-up at scale, PostgreSQL only: claiming the next job with 10 thousand, 1 million and
 *      10 million rows in sync_table vs the smallest (bench/pick.ts);
 *   7. /job/list over 1 million rows, PostgreSQL only: time to first row and peak RSS of the
 *      serving process vs a bare cursor server (bench/listing.ts), run on the pick-up table at
 *      1 million rows;
 *   8. announce-to-start latency on an idle queue, PostgreSQL only: p50 and p99 vs graphile-worker
 *      on the same server (bench/latency.ts);
 *   9. ingest, PostgreSQL only: /job/create requests/s at 50 concurrent connections vs a bare
 *      express + pg endpoint doing one INSERT per request (bench/ingest.ts);
 *  10. engine overhead, PostgreSQL only: up-to-date and update jobs of each flow through the job
 *      machine and the real flows against the FS and FSO stand-ins vs the bare client round trips
 *      such a job cannot avoid, with round trips and sync-table writes per job (bench/overhead.ts);
 *  11. realistic throughput, PostgreSQL only: a mixed workload through sosync and the stand-ins in
 *      processes of their own, with an injected per-call latency, vs the floor of its round trips
 *      × latency; CPU per process and a CPU profile of sosync (bench/mix.ts);
 *  12. parallel workers, PostgreSQL only: jobs/s of a latency-injected mix with job_workers = 1, 4
 *      and 8 vs N × one worker (bench/workers.ts);
 *  13. the sandbox from outside: `npm start` to the first /service/status vs a bare PGlite start,
 *      up-to-date jobs/s and creates/s vs the bare reads from outside (bench/sandbox.ts).
 * Runs on PGlite and, when reachable, on the local PostgreSQL server. Every figure is printed and
 * written with the machine's description to bench/RESULTS.md (bench/results.ts).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { formatInspectionCost, measureInspectionCost } from './inspection.ts';
import { openTable, type StoreKind } from '../test/support/engine.ts';
import { MemoryFlow } from '../test/support/memoryFlow.ts';
import { benchApp, benchWorkers } from './benchService.ts';
import { describeMachine, Results } from './results.ts';
import { measureSupersede } from './supersede.ts';
import { measurePickAtScale, pickSizes } from './pick.ts';
import { measureListing } from './listing.ts';
import { measureLatency } from './latency.ts';
import { measureIngest } from './ingest.ts';
import { measureWorkers } from './workers.ts';
import { measureOverhead } from './overhead.ts';
import { measureMix } from './mix.ts';
import { measureSandbox } from './sandbox.ts';

const JOBS = Number(process.env.BENCH_JOBS ?? 300);

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
    const workers = benchWorkers(table.store, flow);
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
  const server = http.createServer(benchApp(table));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
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
  const server = http.createServer(benchApp(table));
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

/**
 * BENCH_ONLY=bulk runs only the bulk-create benchmark, BENCH_ONLY=scale only pick-up and listing,
 * BENCH_ONLY=latency only announce-to-start latency, BENCH_ONLY=ingest only ingest (/job/create at
 * 50 connections), BENCH_ONLY=overhead only the engine overhead, BENCH_ONLY=mix only the realistic
 * throughput, BENCH_ONLY=workers only the parallel workers' curve, BENCH_ONLY=sandbox only the
 * sandbox. A partial run writes bench/RESULTS.<part>.md, so bench/RESULTS.md always holds a whole run.
 */
const only = process.env.BENCH_ONLY || undefined;
const parts = ['bulk', 'scale', 'latency', 'ingest', 'overhead', 'mix', 'workers', 'sandbox'];
if (only !== undefined && !parts.includes(only)) throw new Error(`BENCH_ONLY=${only}: one of ${parts.join(', ')}`);
const LISTING_ROWS = 1_000_000;

async function postgresVersion(): Promise<string | null> {
  const client = new pg.Client({ connectionString: process.env.SOSYNC_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test' });
  try {
    await client.connect();
    return (await client.query<{ version: string }>('SELECT version()')).rows[0].version.replace(/ on .*$/, '');
  } catch {
    return null;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The pick-up table grown through the sizes, with the listing measured at 1 million rows. */
async function scaleRun(results: Results): Promise<void> {
  const sizes = pickSizes();
  const listAt = sizes.find((n) => n >= LISTING_ROWS) ?? sizes[sizes.length - 1];
  await measurePickAtScale(results, {
    sizes,
    atSize: async (rows, database) => {
      if (rows === listAt) await measureListing(results, database, rows);
    },
  });
}

async function main() {
  const results = new Results();
  const postgres = await postgresVersion();
  const kinds: StoreKind[] = ['pglite'];
  if (postgres) kinds.push('postgres');
  else console.log('PostgreSQL not reachable on 127.0.0.1:5432: PGlite only');
  console.log(`sosync benchmarks, ${JOBS} jobs each, node ${process.version}`);
  for (const kind of only === undefined || only === 'bulk' ? kinds : []) {
    console.log(`\n[${kind}]`);
    if (only !== 'bulk') {
      const plain = await engineRun(kind);
      results.add({
        store: kind, benchmark: `job engine, ${JOBS} up-to-date jobs through the machines`,
        value: `${fmt(plain.engine)} (${perJob(plain.engine)})`, baseline: `the row writes alone ${fmt(plain.baseline)} (${perJob(plain.baseline)})`,
        ratio: plain.engine / plain.baseline,
      });
      const inspection = await measureInspectionCost(kind);
      console.log(formatInspectionCost(inspection));
      for (const [what, t] of [['wall', inspection.wallUs], ['CPU', inspection.cpuUs]] as const) {
        results.add({
          store: kind, benchmark: `inspection on, nobody watching (${what}, median of ${inspection.rounds} rounds × ${inspection.jobs} jobs)`,
          value: `${t.unwatched.toFixed(0)} µs/job`, baseline: `inspection off ${t.off.toFixed(0)} µs/job`,
          ratio: t.unwatched / t.off, target: '≤ 1.05', met: t.unwatched / t.off <= 1.05,
        });
        results.add({
          store: kind, benchmark: `inspection on, one viewer (${what})`,
          value: `${t.watched.toFixed(0)} µs/job`, baseline: `inspection off ${t.off.toFixed(0)} µs/job`, ratio: t.watched / t.off,
        });
      }
      const create = await createRun(kind);
      results.add({
        store: kind, benchmark: `/job/create, ${JOBS} sequential requests`,
        value: `over HTTP ${fmt(create.http)} (${perJob(create.http)})`, baseline: `store.createJob directly ${fmt(create.direct)}`,
        ratio: create.http / create.direct,
      });
      await measureSupersede(kind, results);
    }
    const bulk = await bulkRun(kind);
    const perBulkJob = (ms: number) => `${((ms / BULK_JOBS) * 1000).toFixed(0)} µs/job`;
    results.add({
      store: kind, benchmark: `/job/bulk-create, ${BULK_JOBS} jobs in one request`,
      value: `over HTTP ${fmt(bulk.http)} (${perBulkJob(bulk.http)})`, baseline: `one store.createJobs call ${fmt(bulk.direct)}`,
      ratio: bulk.http / bulk.direct,
    });
    results.add({
      store: kind, benchmark: '/job/bulk-create per job vs one store.createJob per row',
      value: perBulkJob(bulk.http), baseline: `${perJob(bulk.oneByOne)} over ${JOBS} rows`,
      ratio: (bulk.http / BULK_JOBS) / (bulk.oneByOne / JOBS),
    });
  }
  // the parts after the per-store runs, in this order; the PostgreSQL ones are left out without a server
  const later: Array<{ part: string; title: string; needsPostgres: boolean; run: (r: Results) => Promise<unknown> }> = [
    { part: 'latency', title: 'postgres, announce-to-start latency', needsPostgres: true, run: measureLatency },
    { part: 'ingest', title: 'postgres, ingest at 50 connections', needsPostgres: true, run: measureIngest },
    { part: 'workers', title: 'postgres, parallel workers on a latency-injected mix', needsPostgres: true, run: measureWorkers },
    { part: 'overhead', title: 'postgres, engine overhead per flow', needsPostgres: true, run: measureOverhead },
    { part: 'mix', title: 'postgres, realistic throughput', needsPostgres: true, run: measureMix },
    { part: 'scale', title: 'postgres, at scale', needsPostgres: true, run: scaleRun },
    { part: 'sandbox', title: 'sandbox, from outside', needsPostgres: false, run: measureSandbox },
  ];
  for (const { part, title, needsPostgres, run } of later) {
    if ((needsPostgres && !postgres) || (only !== undefined && only !== part)) continue;
    console.log(`\n[${title}]`);
    await run(results);
  }
  const settings = Object.entries(process.env).filter(([k]) => k.startsWith('BENCH_')).map(([k, v]) => `${k}=${v} `).join('');
  const command = `${settings}${process.env.npm_lifecycle_event === 'bench' ? 'npm run bench' : `tsx ${process.argv.slice(1).join(' ')}`}`;
  const file = results.write(command, describeMachine(postgres), only ? `RESULTS.${only}.md` : undefined);
  console.log(`\nwritten to ${file}`);
}

await main();
