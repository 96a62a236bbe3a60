/**
 * The FS stand-in: the SQL engine over PostgreSQL/PGlite behind a TDS server, so sosync's
 * production client (mssql) talks to it exactly as to SQL Server.
 */
import { createStudioEngine, type StudioEngine } from './sql/index.ts';
import type { StudioEngineOptions } from './sql/engine.ts';
import { createTdsServer, type TdsServer } from './tds/server.ts';

export interface StudioStandInOptions extends StudioEngineOptions {
  /** 0 or absent: a free port */
  port?: number;
  /** default 127.0.0.1 */
  host?: string;
  /** ms added before every request is answered (see TdsServerOptions.latencyMs); default 0 */
  latencyMs?: number;
}

export interface StudioStandIn {
  port: number;
  engine: StudioEngine;
  server: TdsServer;
  close(): Promise<void>;
}

export async function startStudioStandIn(options: StudioStandInOptions): Promise<StudioStandIn> {
  const logger = options.logger.child({ component: 'studio-stand-in' });
  const engine = await createStudioEngine({
    db: options.db,
    databaseName: options.databaseName,
    users: options.users,
    announceUrl: options.announceUrl,
    logger,
    failStatements: options.failStatements,
    announceRetryMs: options.announceRetryMs,
  });
  const server = createTdsServer({ engine, logger, latencyMs: options.latencyMs });
  let port: number;
  try {
    port = await server.listen(options.port ?? 0, options.host ?? '127.0.0.1');
  } catch (err) {
    await engine.close();
    throw err;
  }
  logger.info({ port, database: options.databaseName, backend: engine.backendKind }, 'FS stand-in (TDS) listening');
  return {
    port,
    engine,
    server,
    async close() {
      await server.close();
      await engine.close();
    },
  };
}

export { createStudioEngine, type StudioEngine, type StudioUser, type StatementFailure } from './sql/index.ts';
export type { StudioDatabase } from './sql/backend.ts';
