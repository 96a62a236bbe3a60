/**
 * Builds the running service from a Config: sync table, clients of both systems, flows, the
 * actor system, and the HTTP server. `close()` takes it down in reverse order.
 */
import http from 'node:http';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/index.ts';
import type { Logger } from './log.ts';
import {
  ClaimSession,
  FinishedJobCleanup, openSyncTable, readActiveProcess, wakeActiveProcess, WorkerLock, type OpenedSyncTable, type ProcessIdentity,
  type SyncTableLocation,
} from './adapters/syncTable/index.ts';
import { createClock, createDriftSource, systemNow } from './adapters/clock/index.ts';
import { createOnlineClient, createProtocolCopier, parseOnlineHost, type OnlineClient } from './adapters/online/index.ts';
import { createStudioClient, type StudioClient } from './adapters/studio/index.ts';
import { createFlows } from './flows/index.ts';
import { FlowRegistry } from './flows/registry.ts';
import type { InspectionEvent } from 'xstate';
import { createWorkerSystem, type WorkerSystem } from './machines/system.ts';
import { createInspection } from './inspection/index.ts';
import type { WorkerControl, WorkerReport } from './machines/workers.ts';
import { createApp } from './server/app.ts';
import { attachInspectionSocket, mountInspectionOff, mountVisualizer } from './server/inspection.ts';
import { tokenCheck } from './server/auth.ts';
import { createMetrics } from './server/metrics.ts';
import { observeCalls } from './adapters/callObserver.ts';
import { commitId } from './version.ts';

export interface RunningService {
  /** the bound HTTP port (differs from config.port when that was 0) */
  port: number;
  urls: string[];
  table: OpenedSyncTable;
  /** the job and protocol workers while this process is the active one, else null */
  workers(): WorkerSystem | null;
  studio: StudioClient;
  online: OnlineClient;
  cleanup: FinishedJobCleanup;
  close(): Promise<void>;
}

/** How often a standby tries the worker lock and the active process proves it still holds it. */
const LOCK_RETRY_MS = 1000;

/** Where the two systems and the NTP servers are, after the sandbox (if any) has started. */
export interface Endpoints {
  studio: Config['studio'];
  online: Config['online'];
  ntpServers: string[];
}

/**
 * What a test harness may add: a second inspection observer and shorter worker retry timings; and
 * where the sync table lives when the configuration does not say (the sandbox's shared PGlite).
 */
export interface ServiceOptions {
  syncTable?: SyncTableLocation;
  inspect?: (event: InspectionEvent) => void;
  driftLockMs?: number;
  faultRetryMs?: number;
  protocolRetryMs?: number;
  /** how long a WAKE waits for more ended jobs before the protocol batch (default PROTOCOL_GATHER_MS) */
  protocolGatherMs?: number;
}

export async function startService(config: Config, logger: Logger, endpoints: Endpoints = config, options: ServiceOptions = {}): Promise<RunningService> {
  const cleanups: Array<() => Promise<void> | void> = [];
  const closeAll = async () => {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (err) {
        logger.warn({ err }, 'error while closing');
      }
    }
  };
  try {
    const now = systemNow;
    const table = await openSyncTable(
      // every worker slot queries through the pool while its claim session holds its locks
      options.syncTable ?? (config.db ? { kind: 'postgres', ...config.db, max: Math.max(5, config.jobWorkers + 3) } : { kind: 'pglite', dataDir: config.stateDir }),
      now,
    );
    cleanups.push(() => table.db.close());
    logger.info({ sync_table: table.description, migrations_applied: table.migrations.applied, schema_version: table.migrations.current }, 'sync table ready');

    // the worker status is read per scrape, once the workers exist
    let workerControl: WorkerControl | null = null;
    const metrics = createMetrics({
      store: table.store,
      workers: { status: () => workerControl!.status() },
    });

    // every job slot may be in a call at once, and the protocol worker and the API's checks beside them:
    // fewer connections than that would queue parallel workers behind each other
    const connections = config.jobWorkers + 2;
    const studio = observeCalls(createStudioClient({ ...endpoints.studio, poolMax: Math.max(5, connections) }, logger), 'fs', metrics.callObserved);
    cleanups.push(() => studio.close());

    const online = observeCalls(createOnlineClient({
      host: endpoints.online.host,
      database: endpoints.online.database,
      user: endpoints.online.user,
      password: endpoints.online.password,
      timeoutMs: endpoints.online.timeoutMs,
      maxSockets: Math.max(4, connections),
    }, logger), 'fso', metrics.callObserved);
    cleanups.push(() => online.close());

    const flows = new FlowRegistry(createFlows({ studio, online }));

    const clock = createClock({
      ntpServers: endpoints.ntpServers,
      fsoHost: parseOnlineHost(endpoints.online.host).hostname,
      fsoNtpPort: endpoints.online.ntpPort,
      timeoutMs: config.ntpTimeoutMs,
      logger,
    });

    const driftSource = createDriftSource({ clock, toleranceMs: config.maxTimeDriftMs, measureFs: () => studio.clockOffsetMs() });
    // inspect = false: no observer on any actor, no stream, no page
    const inspection = config.inspect ? createInspection(logger) : null;
    const observer = inspection?.observer;
    const startWorkers = () => inspected(createWorkerSystem({
      store: table.store,
      flows,
      drift: {
        async measure() {
          const measurement = await driftSource.measure();
          metrics.driftMeasured(measurement);
          return measurement;
        },
      },
      toleranceMs: config.maxTimeDriftMs,
      throttleMs: config.throttleMs,
      now,
      logger,
      protocol: createProtocolCopier({ store: table.store, online, batchSize: config.protocolBatchSize, now, logger }),
      // a harness's own observer needs every event; otherwise the systems are attached below
      inspect: options.inspect
        ? (event: InspectionEvent) => {
            observer?.next?.(event);
            options.inspect!(event);
          }
        : undefined,
      driftLockMs: options.driftLockMs,
      faultRetryMs: options.faultRetryMs,
      protocolRetryMs: options.protocolRetryMs,
      protocolGatherMs: options.protocolGatherMs,
      onJobEnded: metrics.jobEnded,
      retry: config.retry,
      probeIntervalMs: config.outageProbeIntervalMs,
      // one call each: FS answers a SELECT, FSO accepts the login
      probes: { fs: () => studio.serverTimeUtc(), fso: () => online.authenticate() },
      parallel: config.db && config.jobWorkers > 1
        ? { workers: config.jobWorkers, openClaims: (slot) => new ClaimSession(config.db!, `${slot} ${os.hostname()} ${process.pid}`) }
        : undefined,
    }));
    // attached, the systems are inspected only while a page watches (inspection costs nothing otherwise)
    function inspected(workers: WorkerSystem): WorkerSystem {
      inspection?.attach(workers.supervisor);
      if (workers.protocol) inspection?.attach(workers.protocol);
      return workers;
    }
    const roles = config.db
      ? await sharedTableRoles(config.db, table, startWorkers, logger, now)
      : singleProcessRole(startWorkers(), logger);
    workerControl = roles.control;
    cleanups.push(() => roles.close());

    const cleanup = new FinishedJobCleanup({ store: table.store, keepFinishedDays: config.keepFinishedDays, logger, now });
    cleanup.start();
    cleanups.push(() => cleanup.stop());

    const app = createApp({
      store: table.store,
      hasFlow: flows.hasFlow,
      flows,
      workers: roles.control,
      cleanup,
      logger,
      commitId,
      apiToken: config.apiToken,
      metrics,
      extend: (a) => (inspection ? mountVisualizer(a, inspection) : mountInspectionOff(a)),
    });
    const tokens = config.apiToken ? tokenCheck(config.apiToken) : null;

    const servers: http.Server[] = [];
    let port = config.port;
    for (const address of config.listen) {
      const server = http.createServer(app);
      if (inspection) attachInspectionSocket(server, inspection, logger, tokens);
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err: NodeJS.ErrnoException) =>
          reject(new Error(`cannot listen on ${address}:${port}: ${err.code ?? err.message}`)));
        server.listen(port, address, () => resolve());
      });
      port = (server.address() as AddressInfo).port;
      servers.push(server);
      cleanups.push(() => new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }));
    }
    const urls = config.listen.map((a) => `http://${a === '0.0.0.0' ? '127.0.0.1' : a}:${port}`);
    logger.info({ urls, flows: flows.models, throttle_ms: config.throttleMs, max_time_drift_ms: config.maxTimeDriftMs }, 'sosync is listening');

    return { port, urls, table, workers: roles.workers, studio, online, cleanup, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

interface Roles {
  control: WorkerControl;
  workers(): WorkerSystem | null;
  close(): Promise<void>;
}

/** Jobs left open by an earlier run (or a crash, or a process that lost the lock) are picked up at once (SPEC §4.7). */
function resume(workers: WorkerSystem): void {
  workers.control.processJobs();
  workers.control.processProtocol();
}

async function stopWorkers(workers: WorkerSystem, logger: Logger, timeoutMs: number): Promise<void> {
  const clean = await workers.stop(timeoutMs);
  if (!clean) logger.warn('the current job did not finish in time; it stays inprogress and runs again after restart');
}

/** The embedded sync table belongs to this one process (its state directory is locked): always active. */
function singleProcessRole(workers: WorkerSystem, log: Logger): Roles {
  resume(workers);
  return {
    control: { ...workers.control, status: async () => ({ ...await workers.control.status(), role: 'active' }) },
    workers: () => workers,
    close: () => stopWorkers(workers, log, 8000),
  };
}

/**
 * Processes sharing a PostgreSQL sync table: the one holding the worker lock runs the workers,
 * the others are standbys that answer the API and wake the active one (issue: one job worker).
 */
async function sharedTableRoles(
  db: NonNullable<Config['db']>,
  table: OpenedSyncTable,
  startWorkers: () => WorkerSystem,
  log: Logger,
  now: () => Date,
): Promise<Roles> {
  const me: ProcessIdentity = { host: os.hostname(), pid: process.pid };
  let workers: WorkerSystem | null = null;
  let closing = false;
  let timer: NodeJS.Timeout | null = null;
  let lastProblem: string | null = null;

  const demote = (reason: string) => {
    const running = workers;
    workers = null;
    log.error({ reason }, 'lost the job worker lock: stopping the workers, this process is a standby now');
    // the current job cannot be recalled; it is not waited for, so a new active process is not held up
    if (running) void stopWorkers(running, log, 0);
  };
  const lock = new WorkerLock(db, me, {
    lost: demote,
    wake: () => workers?.control.processJobs(),
  }, now);

  const tick = async () => {
    try {
      if (lock.isHeld) await lock.heartbeat();
      else if (await lock.tryAcquire()) {
        if (closing) return;
        log.info({ host: me.host, pid: me.pid }, 'holding the job worker lock: this process is the active one');
        workers = startWorkers();
        resume(workers);
      }
      lastProblem = null;
    } catch (err) {
      // the database may be away; say so once per kind of problem, not every second
      const problem = (err as Error).message;
      if (problem !== lastProblem) log.warn({ error: problem }, 'cannot reach the sync table for the job worker lock; retrying');
      lastProblem = problem;
    }
    if (!closing) timer = setTimeout(() => void tick(), LOCK_RETRY_MS);
  };
  await tick();

  const wake = () => {
    wakeActiveProcess(table.db).catch((err) => log.warn({ error: (err as Error).message }, 'could not wake the active process'));
  };
  const standbyReport = (detail: string): WorkerReport => ({ activity: 'idle', role: 'standby', detail });

  const control: WorkerControl = {
    async status() {
      const active = await readActiveProcess(table.db).catch(() => null);
      const role = workers ? 'active' : 'standby';
      const base = workers
        ? await workers.control.status()
        : {
            job_worker: standbyReport('standby: the job worker runs in the active process'),
            protocol_worker: standbyReport('standby: the protocol worker runs in the active process'),
          };
      return { ...base, role, this_process: me, active_process: active };
    },
    processJobs() {
      if (workers) return workers.control.processJobs();
      wake();
      return standbyReport('standby: the active process was woken');
    },
    processProtocol() {
      if (workers) return workers.control.processProtocol();
      wake();
      return standbyReport('standby: the active process was woken');
    },
    async forceDriftCheck() {
      return workers ? workers.control.forceDriftCheck() : standbyReport('standby: the drift gate is the active process\'s');
    },
    async drift() {
      return workers ? workers.control.drift() : { role: 'standby', detail: 'the drift gate is the active process\'s' };
    },
    jobCreated(job) {
      if (workers) workers.control.jobCreated(job);
      else wake();
    },
  };

  return {
    control,
    workers: () => workers,
    async close() {
      closing = true;
      if (timer) clearTimeout(timer);
      const running = workers;
      workers = null;
      if (running) await stopWorkers(running, log, 8000);
      await lock.release();
    },
  };
}
