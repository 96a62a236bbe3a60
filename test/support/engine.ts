/**
 * A job engine over a real sync table (PostgreSQL or PGlite) with in-memory flows and a local
 * NTP stand-in, for the engine tests.
 */
import { openSyncTable, type OpenedSyncTable } from '../../src/adapters/syncTable/index.ts';
import { createClock } from '../../src/adapters/clock/index.ts';
import { FlowRegistry } from '../../src/flows/registry.ts';
import { createDriftSource } from '../../src/adapters/clock/index.ts';
import { createWorkerSystem, type WorkerSystem, type WorkerSystemOptions } from '../../src/machines/system.ts';
import { silentLogger, type Logger } from '../../src/log.ts';
import { startNtpStandIn, type NtpStandIn } from '../../sandbox/ntp/ntpStandIn.ts';
import { MemoryFlow } from './memoryFlow.ts';
import { createTestDatabase, type TestDatabase } from './postgres.ts';

export type StoreKind = 'postgres' | 'pglite';

export interface Harness {
  table: OpenedSyncTable;
  flow: MemoryFlow;
  ntp: NtpStandIn;
  workers: WorkerSystem;
  logger: Logger;
  close(): Promise<void>;
}

export async function openTable(kind: StoreKind): Promise<{ table: OpenedSyncTable; drop(): Promise<void> }> {
  if (kind === 'pglite') {
    const table = await openSyncTable({ kind: 'pglite', dataDir: null });
    return { table, drop: () => table.db.close() };
  }
  const database: TestDatabase = await createTestDatabase();
  const table = await openSyncTable({ kind: 'postgres', ...database.config, database: database.name });
  return {
    table,
    async drop() {
      await table.db.close();
      await database.drop();
    },
  };
}

export async function startHarness(kind: StoreKind, options: Partial<WorkerSystemOptions> & { toleranceMs?: number; logger?: Logger } = {}): Promise<Harness> {
  const { table, drop } = await openTable(kind);
  const ntp = await startNtpStandIn();
  const logger = options.logger ?? silentLogger();
  const clock = createClock({ ntpServers: [`127.0.0.1:${ntp.port}`], timeoutMs: 300, sampleCount: 1, logger });
  const flow = new MemoryFlow('memory', { fs: 'dbo.Thing', fso: 'x.thing' });
  const toleranceMs = options.toleranceMs ?? 1000;
  const workers = createWorkerSystem({
    store: table.store,
    flows: new FlowRegistry([flow]),
    drift: createDriftSource({ clock, toleranceMs }),
    toleranceMs,
    throttleMs: 0,
    logger,
    protocol: null,
    ...options,
  });
  return {
    table, flow, ntp, workers, logger,
    async close() {
      await workers.stop(2000);
      await ntp.close();
      await drop();
    },
  };
}
