/**
 * The HTTP app over a sync table with no workers behind it: what the API benchmarks measure is
 * the route and the store, not the job engine.
 */
import type { OpenedSyncTable } from '../src/adapters/syncTable/index.ts';
import type { WorkerControl } from '../src/machines/workers.ts';
import { createApp } from '../src/server/app.ts';
import { createWorkerSystem } from '../src/machines/system.ts';
import { FlowRegistry } from '../src/flows/registry.ts';
import { silentLogger } from '../src/log.ts';
import { MemoryFlow } from '../test/support/memoryFlow.ts';

export const noWorkers: WorkerControl = {
  status: async () => ({}) as never,
  processJobs: () => ({}) as never,
  processProtocol: () => ({}) as never,
  forceDriftCheck: async () => ({ activity: 'idle' as const }) as never,
  drift: async () => ({}),
  jobCreated: () => undefined,
};

/** createApp over `table` with the in-memory bench flow for dbo.Thing / x.thing. */
export function benchApp(table: OpenedSyncTable) {
  const flows = new FlowRegistry([new MemoryFlow('bench', { fs: 'dbo.Thing', fso: 'x.thing' })]);
  return createApp({ store: table.store, hasFlow: flows.hasFlow, flows, workers: noWorkers, logger: silentLogger(), commitId: () => null });
}

/** The real worker system over `store` with one in-memory flow, no protocol worker, no drift gate. */
export function benchWorkers(store: OpenedSyncTable['store'], flow: MemoryFlow) {
  return createWorkerSystem({
    store, flows: new FlowRegistry([flow]), logger: silentLogger(), protocol: null, throttleMs: 0, toleranceMs: 30,
    drift: { measure: async () => ({ at: new Date(), sources: {}, ok: true }) },
  });
}
