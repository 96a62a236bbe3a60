/**
 * Ingest (issue 14 point 1), PostgreSQL only: /job/create requests per second at 50 concurrent
 * connections (autocannon), sosync's express app against a bare express + pg endpoint doing one
 * INSERT per request, both on one fresh database (dropped afterwards), each server in a process of
 * its own (bench/ingestServer.ts). The two take turns, BENCH_INGEST_ROUNDS times each, for
 * BENCH_INGEST_SECONDS each, after a warm-up. After every run the 200s the server answered are
 * compared with the rows its table gained: an accepted job that is not stored, or a row nobody was
 * told about, fails the benchmark.
 *
 * BENCH_INGEST_PROFILE=1 adds one more sosync run under `node --cpu-prof` (not counted) and writes
 * its hottest functions to the results.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import pg from 'pg';
import { openSyncTable } from '../src/adapters/syncTable/index.ts';
import { createTestDatabase, type TestDatabase } from '../test/support/postgres.ts';
import type { IngestDatabase, IngestServerMessage } from './ingestServer.ts';
import { newestProfileIn, profileTables, selfTime } from './cpuProfile.ts';
import type { Results } from './results.ts';
import { median } from './stats.ts';

export const INGEST_CONNECTIONS = 50;
/** the pool openPostgres gives the service (its default), and the bare endpoint's */
const POOL_SIZE = 5;
const SECONDS = Number(process.env.BENCH_INGEST_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_INGEST_ROUNDS ?? 3);
const WARM_UP_SECONDS = 2;
/** how long a server may take to answer the requests still under way when the load stopped */
const SETTLE_TIMEOUT_MS = 10_000;

const serverScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'ingestServer.ts');

type Side = 'sosync' | 'bare';

interface Server {
  side: Side;
  url: string;
  /** the 200s answered so far and the requests still under way */
  count(): Promise<{ ok: number; open: number }>;
  stop(): Promise<void>;
}

function startServer(side: Side, database: IngestDatabase, execArgv: string[] = []): Promise<Server> {
  const child: ChildProcess = fork(serverScript, [side, JSON.stringify(database), String(POOL_SIZE)], {
    execArgv: ['--import', 'tsx', ...execArgv],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = (type: IngestServerMessage['type']) => new Promise<IngestServerMessage>((resolve, reject) => {
    const onMessage = (m: IngestServerMessage) => {
      if (m.type !== type) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(m);
    };
    const onExit = (code: number | null) => reject(new Error(`the ${side} server exited (${code}) before "${type}"`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
  return next('ready').then((ready) => ({
    side,
    url: `http://127.0.0.1:${(ready as { port: number }).port}/job/create`,
    async count() {
      const answer = next('count');
      child.send({ type: 'count' });
      const m = (await answer) as Extract<IngestServerMessage, { type: 'count' }>;
      return { ok: m.ok, open: m.open };
    },
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.send({ type: 'exit' });
    }),
  }), (err) => {
    child.kill();
    throw err;
  });
}

/** An announcement as FSO's addon posts it: every field, unset ones `false`, ASCII-escaped JSON. */
function announcement(recordId: number): string {
  const now = new Date().toISOString().replace('T', ' ').replace('Z', '000');
  return JSON.stringify({
    job_date: now,
    job_source_system: 'fso',
    job_source_model: 'res.partner',
    job_source_record_id: recordId,
    job_source_sosync_write_date: now,
    job_source_fields: { firstname: 'Jürgen', lastname: 'Müller', email: `j.mueller${recordId}@example.org`, street: 'Hauptstraße 12' },
    job_source_target_record_id: false,
    job_source_type: '',
    job_priority: 1000,
    job_source_merge_into_record_id: false,
    job_source_target_merge_into_record_id: false,
  }).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

let nextRecordId = 1;

function load(url: string, seconds: number): Promise<autocannon.Result> {
  return autocannon({
    url,
    connections: INGEST_CONNECTIONS,
    duration: seconds,
    method: 'POST',
    headers: { 'content-type': 'application/json; charset=utf-8' },
    requests: [{ setupRequest: (request) => ({ ...request, body: announcement(nextRecordId++) }) }],
  });
}

export interface IngestRun {
  side: Side;
  requestsPerSecond: number;
  p50: number;
  p99: number;
  /** 200s autocannon received; the server answered `answered` (it also answers requests cut off when the load stopped) */
  received: number;
  answered: number;
  rows: number;
  non2xx: number;
  errors: number;
}

async function rowCount(client: pg.Client, side: Side): Promise<number> {
  const table = side === 'sosync' ? 'sync_table' : 'bare_jobs';
  return Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
}

/** waits until the server has answered every request it received */
async function settled(server: Server): Promise<{ ok: number }> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  for (;;) {
    const c = await server.count();
    if (c.open === 0) return c;
    if (Date.now() > deadline) throw new Error(`the ${server.side} server still has ${c.open} requests under way`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** one measured run: load, then the 200s against the rows the table gained */
async function measureRun(server: Server, client: pg.Client, seconds: number): Promise<IngestRun> {
  const before = { ...(await settled(server)), rows: await rowCount(client, server.side) };
  const result = await load(server.url, seconds);
  const after = { ...(await settled(server)), rows: await rowCount(client, server.side) };
  const run: IngestRun = {
    side: server.side,
    requestsPerSecond: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    received: result['2xx'],
    answered: after.ok - before.ok,
    rows: after.rows - before.rows,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
  if (run.answered !== run.rows) throw new Error(`${server.side}: ${run.answered} answered 200 but ${run.rows} rows stored`);
  if (run.received > run.answered || run.answered > run.received + INGEST_CONNECTIONS) {
    throw new Error(`${server.side}: autocannon got ${run.received} 200s, the server answered ${run.answered}`);
  }
  if (run.non2xx > 0) throw new Error(`${server.side}: ${run.non2xx} answers were not 2xx`);
  return run;
}

async function prepareDatabase(database: TestDatabase): Promise<IngestDatabase> {
  const config = { ...database.config, database: database.name };
  const table = await openSyncTable({ kind: 'postgres', ...config });
  try {
    // the bare endpoint's table: sync_table's columns, defaults and indexes, its own id sequence
    await table.db.query(`CREATE TABLE bare_jobs (LIKE sync_table INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)`);
    await table.db.query(`CREATE SEQUENCE bare_jobs_job_id_seq OWNED BY bare_jobs.job_id`);
    await table.db.query(`ALTER TABLE bare_jobs ALTER COLUMN job_id SET DEFAULT nextval('bare_jobs_job_id_seq')`);
  } finally {
    await table.db.close();
  }
  return config;
}

/** Alternating runs of both servers, then (when asked) one profiled sosync run. */
export async function measureIngest(results: Results): Promise<IngestRun[]> {
  const database = await createTestDatabase('sosync_bench_ingest');
  const client = new pg.Client({ ...database.config, database: database.name });
  const servers: Server[] = [];
  try {
    const config = await prepareDatabase(database);
    await client.connect();
    servers.push(await startServer('sosync', config), await startServer('bare', config));
    for (const server of servers) await load(server.url, WARM_UP_SECONDS);
    const runs: IngestRun[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // who goes first alternates, so neither side always follows the other's WAL and vacuum
      for (const server of round % 2 === 0 ? servers : [...servers].reverse()) {
        const run = await measureRun(server, client, SECONDS);
        runs.push(run);
        console.log(`  ${run.side}: ${run.requestsPerSecond.toFixed(0)} req/s, p50 ${run.p50} ms, p99 ${run.p99} ms, ${run.answered} answered 200 = ${run.rows} rows`);
      }
    }
    await Promise.all(servers.splice(0).map((s) => s.stop()));
    report(results, runs);
    if (process.env.BENCH_INGEST_PROFILE === '1') await profiledRun(results, config);
    return runs;
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await client.end().catch(() => undefined);
    await database.drop();
  }
}

function report(results: Results, runs: IngestRun[]): void {
  const of = (side: Side) => runs.filter((r) => r.side === side);
  const med = (side: Side, key: 'requestsPerSecond' | 'p50' | 'p99') => median(of(side).map((r) => r[key]));
  const what = `${INGEST_CONNECTIONS} connections, ${SECONDS} s × ${ROUNDS} runs each, pool of ${POOL_SIZE}, medians`;
  const sosyncRate = med('sosync', 'requestsPerSecond');
  const bareRate = med('bare', 'requestsPerSecond');
  results.add({
    store: 'postgres', benchmark: `/job/create requests/s (${what}; ratio: higher is better)`,
    value: `${sosyncRate.toFixed(0)} req/s`, baseline: `bare express + pg, one INSERT per request ${bareRate.toFixed(0)} req/s`,
    ratio: sosyncRate / bareRate, target: '≥ 1.0', met: sosyncRate >= bareRate,
  });
  for (const p of ['p50', 'p99'] as const) {
    results.add({
      store: 'postgres', benchmark: `/job/create latency ${p} (${what})`,
      value: `${med('sosync', p).toFixed(1)} ms`, baseline: `bare express + pg ${med('bare', p).toFixed(1)} ms`, ratio: med('sosync', p) / med('bare', p),
    });
  }
  results.section('Ingest: /job/create at 50 connections, run by run', [
    `autocannon, ${INGEST_CONNECTIONS} connections, POST /job/create with an announcement as FSO's addon sends it (every field, ASCII-escaped JSON),`,
    'each server in a process of its own on one PostgreSQL database. sosync: the service\'s express app over the PostgreSQL store,',
    'the worker system behind it with its supervisor stopped (the wake is sent, no job is picked). bare: express + pg, one INSERT',
    'of the same columns per request into a table like sync_table (same indexes), no validation. "answered" counts the 200s the',
    'server sent (including those to requests autocannon cut off when its time was up); "rows" what the table gained in the run.',
    '',
    '| run | server | req/s | p50 | p99 | 200s received | 200s answered | rows stored | errors |',
    '|---|---|---|---|---|---|---|---|---|',
    ...runs.map((r, i) => `| ${Math.floor(i / 2) + 1} | ${r.side} | ${r.requestsPerSecond.toFixed(0)} | ${r.p50} ms | ${r.p99} ms | ${r.received} | ${r.answered} | ${r.rows} | ${r.errors} |`),
  ].join('\n'));
}

/** one sosync run under --cpu-prof, not counted: where the service's time goes under this load */
async function profiledRun(results: Results, config: IngestDatabase): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sosync-ingest-profile-'));
  try {
    const server = await startServer('sosync', config, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
    await load(server.url, WARM_UP_SECONDS);
    const result = await load(server.url, SECONDS);
    await server.stop();
    const file = newestProfileIn(dir);
    if (!file) throw new Error('the profiled server wrote no profile');
    const profile = profileTables(selfTime(file), 20);
    results.section('Ingest: where sosync\'s time goes (CPU profile under load)', [
      `One more sosync run of ${SECONDS} s under \`node --cpu-prof\` (${result.requests.average.toFixed(0)} req/s while profiled; not counted above),`,
      'the whole life of the server process. Self time by where the code lives, then by function.',
      '',
      profile,
    ].join('\n'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
