/**
 * Builds the running service from a Config: sync table, clients of both systems, flows, the
 * actor system, and the HTTP server. `close()` takes it down in reverse order.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/index.ts';
import type { Logger } from './log.ts';
import { openSyncTable, type OpenedSyncTable } from './adapters/syncTable/index.ts';
import { createClock, parseServer } from './adapters/clock/index.ts';
import { createOnlineClient, parseOnlineHost, type OnlineClient } from './adapters/online/index.ts';
import { createStudioClient, type StudioClient } from './adapters/studio/index.ts';
import { createFlows } from './flows/index.ts';
import { FlowRegistry } from './flows/registry.ts';
import { createDriftSource } from './machines/drift.ts';
import { createProtocolCopier } from './machines/protocolCopier.ts';
import { createWorkerSystem, type WorkerSystem } from './machines/system.ts';
import { createInspection } from './inspection/index.ts';
import { createApp } from './server/app.ts';
import { attachInspectionSocket, mountInspectionOff, mountVisualizer } from './server/inspection.ts';
import { commitId } from './version.ts';

export interface RunningService {
  /** the bound HTTP port (differs from config.port when that was 0) */
  port: number;
  urls: string[];
  table: OpenedSyncTable;
  workers: WorkerSystem;
  studio: StudioClient;
  online: OnlineClient;
  close(): Promise<void>;
}

/** Where the two systems and the NTP servers are, after the sandbox (if any) has started. */
export interface Endpoints {
  studio: Config['studio'];
  online: Config['online'];
  ntpServers: string[];
}

export async function startService(config: Config, logger: Logger, endpoints: Endpoints = config): Promise<RunningService> {
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
    const now = () => new Date();
    const table = await openSyncTable(
      config.db ? { kind: 'postgres', ...config.db } : { kind: 'pglite', dataDir: config.stateDir },
      now,
    );
    cleanups.push(() => table.db.close());
    logger.info({ sync_table: table.description, migrations_applied: table.migrations.applied, schema_version: table.migrations.current }, 'sync table ready');

    const studio = createStudioClient(endpoints.studio, logger);
    cleanups.push(() => studio.close());

    const online = createOnlineClient({
      host: endpoints.online.host,
      database: endpoints.online.database,
      user: endpoints.online.user,
      password: endpoints.online.password,
      timeoutMs: endpoints.online.timeoutMs,
    }, logger);
    cleanups.push(() => online.close());

    const flows = new FlowRegistry(createFlows({ studio, online, now, logger }));

    const clock = createClock({
      ntpServers: endpoints.ntpServers,
      fsoHost: parseOnlineHost(endpoints.online.host).hostname,
      fsoNtpPort: endpoints.online.ntpPort,
      timeoutMs: config.ntpTimeoutMs,
      logger,
    });
    for (const server of endpoints.ntpServers) parseServer(server);

    // inspect = false: no observer on any actor, no stream, no page
    const inspection = config.inspect ? createInspection(logger) : null;
    const workers = createWorkerSystem({
      store: table.store,
      flows,
      drift: createDriftSource({ clock, toleranceMs: config.maxTimeDriftMs, measureFs: () => studio.clockOffsetMs() }),
      toleranceMs: config.maxTimeDriftMs,
      throttleMs: config.throttleMs,
      now,
      logger,
      protocol: createProtocolCopier({ store: table.store, online, batchSize: config.protocolBatchSize, now, logger }),
      inspect: inspection?.observer,
    });
    cleanups.push(async () => {
      const clean = await workers.stop(8000);
      if (!clean) logger.warn('the current job did not finish in time; it stays inprogress and runs again after restart');
    });

    const app = createApp({
      store: table.store,
      hasFlow: flows.hasFlow,
      workers: workers.control,
      logger,
      commitId,
      extend: (a) => (inspection ? mountVisualizer(a, inspection) : mountInspectionOff(a)),
    });

    const servers: http.Server[] = [];
    let port = config.port;
    for (const address of config.listen) {
      const server = http.createServer(app);
      if (inspection) attachInspectionSocket(server, inspection, logger);
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

    // jobs left open by an earlier run (or a crash) are picked up at once (SPEC §4.7)
    workers.control.processJobs();
    workers.control.processProtocol();

    return { port, urls, table, workers, studio, online, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
