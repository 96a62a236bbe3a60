/**
 * One HTTP server of the ingest benchmark (bench/ingest.ts), in a process of its own so that the
 * load generator and the server under test do not share an event loop. Forked with an IPC channel:
 * argv[2] is `sosync` or `bare`, argv[3] the database as JSON, argv[4] the pool size. It answers `ready` with its port,
 * `count` with the 200s it has answered and the requests still under way, and exits (writing a CPU profile when run with --cpu-prof)
 * on `exit`.
 *
 *   sosync: createApp, the service's express app, over the real PostgreSQL store (a pool of
 *     the size the service opens it with) and the real worker system, whose supervisor is stopped
 *     before the load: /job/create validates, stores and wakes the worker as always, but no job is
 *     picked, so only ingest is measured.
 *   bare: express + pg, the same pool size, one INSERT of the same columns into `bare_jobs` (a
 *     table like sync_table, with its indexes) per request, no validation.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import pg from 'pg';
import { openSyncTable } from '../src/adapters/syncTable/index.ts';
import { createApp } from '../src/server/app.ts';
import { FlowRegistry } from '../src/flows/registry.ts';
import { silentLogger } from '../src/log.ts';
import { MemoryFlow } from '../test/support/memoryFlow.ts';
import { benchWorkers } from './benchService.ts';

export interface IngestDatabase {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
}

export type IngestServerMessage = { type: 'ready'; port: number } | { type: 'count'; ok: number; open: number };

async function sosyncHandler(database: IngestDatabase, poolSize: number): Promise<{ handler: http.RequestListener; close(): Promise<void> }> {
  const table = await openSyncTable({ kind: 'postgres', ...database, max: poolSize });
  // the models FSO announces most, each with a flow (the flows' own work is not measured here)
  const flow = new MemoryFlow('partner', { fs: 'dbo.Person', fso: 'res.partner' });
  const flows = new FlowRegistry([flow]);
  const workers = benchWorkers(table.store, flow);
  workers.supervisor.send({ type: 'STOP' });
  const app = createApp({ store: table.store, hasFlow: flows.hasFlow, flows, workers: workers.control, logger: silentLogger(), commitId: () => null });
  return {
    handler: app,
    async close() {
      await workers.stop();
      await table.db.close();
    },
  };
}

function bareHandler(database: IngestDatabase, poolSize: number): { handler: http.RequestListener; close(): Promise<void> } {
  const pool = new pg.Pool({ ...database, max: poolSize, options: '-c TimeZone=UTC' });
  pool.on('error', () => undefined);
  const app = express();
  app.use(express.json());
  app.post('/job/create', async (req, res) => {
    const b = req.body as Record<string, unknown>;
    const now = new Date();
    const result = await pool.query<{ job_id: number }>(
      `INSERT INTO bare_jobs (job_date, job_priority, job_source_system, job_source_model, job_source_record_id,
         job_source_target_record_id, job_source_sosync_write_date, job_source_fields, job_source_type,
         job_fetched, job_run_count, job_state, job_last_change)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, 'new', $10) RETURNING job_id`,
      [b.job_date, b.job_priority ?? 1000, b.job_source_system, b.job_source_model, b.job_source_record_id,
        b.job_source_target_record_id || null, b.job_source_sosync_write_date || null,
        b.job_source_fields === undefined ? null : JSON.stringify(b.job_source_fields), b.job_source_type || '', now],
    );
    res.json({ job_id: result.rows[0].job_id });
  });
  return { handler: app, close: () => pool.end() };
}

async function main(): Promise<void> {
  const kind = process.argv[2];
  const database = JSON.parse(process.argv[3]) as IngestDatabase;
  const poolSize = Number(process.argv[4]);
  if (kind !== 'sosync' && kind !== 'bare') throw new Error(`unknown server ${kind}`);
  const served = kind === 'sosync' ? await sosyncHandler(database, poolSize) : bareHandler(database, poolSize);
  // the 200s this server has answered (the rows it must have stored), counted when the answer is
  // given, whether or not the client is still there to read it; and the requests not yet answered
  let ok = 0;
  let open = 0;
  const server = http.createServer((req, res) => {
    open++;
    const end = res.end.bind(res) as (...args: unknown[]) => http.ServerResponse;
    res.end = ((...args: unknown[]) => {
      open--;
      if (res.statusCode === 200) ok++;
      return end(...args);
    }) as typeof res.end;
    served.handler(req, res);
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const send = (message: IngestServerMessage) => process.send!(message);
  process.on('message', async (message: { type: string }) => {
    if (message.type === 'count') send({ type: 'count', ok, open });
    if (message.type === 'exit') {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await served.close();
      process.exit(0);
    }
  });
  // the orchestrator gone (killed, crashed) ends this process too
  process.on('disconnect', () => process.exit(1));
  send({ type: 'ready', port: (server.address() as AddressInfo).port });
}

await main();
