/**
 * A job engine (PGlite sync table, in-memory flow, NTP stand-in) inspected by a real Inspection,
 * behind the real HTTP app with the visualizer routes and the inspection WebSocket, on 127.0.0.1.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type express from 'express';
import WebSocket from 'ws';
import { createApp } from '../../src/server/app.ts';
import { FlowRegistry } from '../../src/flows/registry.ts';
import { createInspection, recordInspection, type Inspection } from '../../src/inspection/index.ts';
import { attachInspectionSocket, mountVisualizer } from '../../src/server/inspection.ts';
import { silentLogger } from '../../src/log.ts';
import { tokenCheck } from '../../src/server/auth.ts';
import { createMetrics, type Metrics } from '../../src/server/metrics.ts';
import { startHarness, type Harness } from '../support/engine.ts';
import type { MemoryFlowHooks } from '../support/memoryFlow.ts';

export interface InspectedService {
  harness: Harness;
  inspection: Inspection;
  metrics: Metrics;
  server: http.Server;
  baseUrl: string;
  wsUrl: string;
  /** adds a record to FS and announces it through /job/create; returns the job id */
  announce(name: string): Promise<number>;
  close(): Promise<void>;
}

export async function startInspectedService(hooks: MemoryFlowHooks = {}, options: { apiToken?: string; extraRoutes?: (app: express.Express) => void } = {}): Promise<InspectedService> {
  const logger = silentLogger();
  const inspection = createInspection(logger);
  let workers: Harness['workers'] | null = null;
  const metrics: Metrics = createMetrics({ store: { openJobStatistics: () => harness.table.store.openJobStatistics() }, workers: { status: () => workers!.control.status() } });
  const harness = await startHarness('pglite', { logger, onJobEnded: metrics.jobEnded });
  workers = harness.workers;
  // as the service wires it: inspected only while a client watches
  inspection.attach(harness.workers.supervisor);
  harness.flow.hooks = hooks;
  const auth: Record<string, string> = options.apiToken ? { authorization: `Bearer ${options.apiToken}` } : {};
  const app = createApp({
    store: harness.table.store,
    hasFlow: (model) => model === 'dbo.Thing' || model === 'x.thing',
    flows: new FlowRegistry([harness.flow]),
    workers: harness.workers.control,
    logger,
    commitId: () => null,
    apiToken: options.apiToken,
    metrics,
    extend: (a) => {
      options.extraRoutes?.(a);
      mountVisualizer(a, inspection);
    },
  });
  const server = http.createServer(app);
  attachInspectionSocket(server, inspection, logger, options.apiToken ? tokenCheck(options.apiToken) : null);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}`;

  return {
    harness,
    inspection,
    metrics,
    server,
    baseUrl,
    wsUrl: `ws://127.0.0.1:${port}/inspect`,
    async announce(name) {
      const record = harness.flow.fs.insert({ name });
      const response = await fetch(`${baseUrl}/job/create`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', ...auth },
        body: JSON.stringify({
          job_date: new Date().toISOString(),
          job_source_system: 'fs',
          job_source_model: 'dbo.Thing',
          job_source_record_id: record.id,
        }),
      });
      const body = (await response.json()) as { job_id: number | null; error_detail?: unknown };
      if (response.status !== 200 || typeof body.job_id !== 'number') throw new Error(`job/create refused: ${JSON.stringify(body)}`);
      return body.job_id;
    },
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await harness.close();
    },
  };
}

/** A WebSocket client that keeps every message and can wait for one that matches. */
export interface StreamClient {
  messages: Array<Record<string, any>>;
  raw: string[];
  /** resolves with the close code when the connection ends */
  closed: Promise<number>;
  waitFor(what: string, match: (m: Record<string, any>) => boolean): Promise<Record<string, any>>;
  close(): void;
}

/** `headers` go on the upgrade request; `token` is sent as the first message once open. */
export async function connectStream(url: string, options: { headers?: Record<string, string>; token?: string } = {}): Promise<StreamClient> {
  const ws = new WebSocket(url, { headers: options.headers });
  const messages: Array<Record<string, any>> = [];
  const raw: string[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (data) => {
    const text = data.toString();
    raw.push(text);
    messages.push(JSON.parse(text));
    for (const w of [...waiters]) w();
  });
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  if (options.token !== undefined) ws.send(JSON.stringify({ token: options.token }));
  return {
    messages,
    raw,
    closed,
    waitFor(what, match) {
      const found = messages.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        // a guard against hanging forever, not a timing assertion
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no inspection message: ${what} (got ${messages.length}: ${[...new Set(messages.map((m) => m.type))].join(', ')})`));
        }, 15_000);
        const check = () => {
          const m = messages.find(match);
          if (!m) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(m);
        };
        waiters.add(check);
      });
    },
    close() {
      ws.close();
    },
  };
}

/**
 * Runs one job (an FS record announced and synced to FSO) on its own harness with a recorder
 * attached from the start, and saves the recording to `file`. Returns the job id and the
 * messages recorded.
 */
export async function recordOneJob(file: string): Promise<{ jobId: number; messages: Array<Record<string, any>> }> {
  const recorder = recordInspection();
  const harness = await startHarness('pglite', { inspect: recorder.observer });
  let jobId: number;
  try {
    const record = harness.flow.fs.insert({ name: 'Recorded' });
    const job = await harness.table.store.createJob({ job_date: new Date(), job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: record.id, job_source_sosync_write_date: record.sosyncWriteDate });
    harness.workers.control.processJobs();
    await harness.workers.whenIdle();
    jobId = job.job_id;
    const row = await harness.table.store.getJob(jobId);
    if (row?.job_state !== 'done') throw new Error(`the recorded job ended ${row?.job_state}`);
  } finally {
    await harness.close();
  }
  recorder.save(file);
  return { jobId, messages: recorder.messages().map((m) => JSON.parse(m)) };
}

/** A promise a test resolves when it wants a held step to go on. */
export function gate(): { wait: Promise<void>; open(): void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}
