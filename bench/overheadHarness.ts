/**
 * The job engine with the real flows against the FS (TDS) and FSO (XML-RPC) stand-ins, in one
 * process, with every round trip counted where it arrives: the TDS server counts the requests it
 * answers, the FSO stand-in the calls it receives; the sync table's writes are counted at its store.
 * One job runs at a time through the job machine itself (no worker loop, no protocol worker, no
 * announcements), so the counts between two snapshots are that job's. The benchmark (bench/overhead.ts)
 * and the round-trip test (test/flows/roundTrips.test.ts) share it.
 */
import pg from 'pg';
import sql from 'mssql';
import { createActor, toPromise } from 'xstate';
import { createOnlineClient, type OnlineClient } from '../src/adapters/online/index.ts';
import { createStudioClient, type StudioClient } from '../src/adapters/studio/index.ts';
import { openSyncTable, type OpenedSyncTable, type SystemName } from '../src/adapters/syncTable/index.ts';
import { observeCalls } from '../src/adapters/callObserver.ts';
import { createFlows } from '../src/flows/index.ts';
import { FlowRegistry } from '../src/flows/registry.ts';
import { createJobLogic, type JobOutcome } from '../src/machines/jobActors.ts';
import { silentLogger } from '../src/log.ts';
import { startStudioStandIn, type StudioStandIn } from '../sandbox/studio/index.ts';
import { seedStudio } from '../sandbox/studio/seed.ts';
import { startOnlineStandIn, type OnlineStandIn } from '../sandbox/online/index.ts';
import { createTestDatabase, type TestDatabase } from '../test/support/postgres.ts';

const USER = 'sosync';
const PASSWORD = 'overhead-bench-pw';
const INSTANCE = 'overhead';

/** The store methods that write to the sync table (the rest only read). */
const storeWrites = new Set(['startJob', 'updateJob', 'findOrCreateChildJob', 'finishJob', 'createJob', 'createJobs']);

/** Round trips to each system and sync-table writes, as counted so far. */
export interface Counts {
  fs: number;
  fso: number;
  syncTableWrites: number;
}

export function countsBetween(before: Counts, after: Counts): Counts {
  return { fs: after.fs - before.fs, fso: after.fso - before.fso, syncTableWrites: after.syncTableWrites - before.syncTableWrites };
}

export interface OverheadSystem {
  fsStandIn: StudioStandIn;
  fso: OnlineStandIn;
  /** sosync's own clients, as the flows use them (the bare round trips use these too) */
  studio: StudioClient;
  online: OnlineClient;
  /** FS as its users change it (plain T-SQL, announced by nobody here) */
  fsUser: sql.ConnectionPool;
  table: OpenedSyncTable;
  /** the seeded FS persons and companies */
  personIds: number[];
  companyIds: number[];
  counts(): Counts;
  /**
   * The sync-table statements a job with `children` child jobs cannot avoid, straight on the store
   * for a scratch job: its start and its end (outcome, superseded jobs closed and protocol flag in
   * one statement), and for each child its row found or created, started and ended. Returns the ms.
   */
  bareSyncTableWrites(model: string, recordId: number, children?: number): Promise<number>;
  /**
   * one job through the job machine, to its end; with the round trips and writes it made and its
   * time (from its start to its end: creating the row is /job/create's work, not the job's)
   */
  runJob(system: SystemName, model: string, recordId: number): Promise<{ outcome: JobOutcome; counts: Counts; jobId: number; ms: number }>;
  close(): Promise<void>;
}

/** FS and the sync table in throw-away PostgreSQL databases; `persons` seeded FS persons (not yet in FSO). */
export async function startOverheadSystem(options: { persons: number; fsLatencyMs?: number; fsoLatencyMs?: number }): Promise<OverheadSystem> {
  const closers: Array<() => Promise<unknown>> = [];
  const close = async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  };
  try {
    const fsDb: TestDatabase = await createTestDatabase('sosync_overhead_fs');
    closers.push(() => fsDb.drop());
    const studioDb = new pg.Pool({ ...fsDb.config, max: 4 });
    closers.push(() => studioDb.end());
    const seeded = await seedStudio(studioDb, { persons: options.persons, bpkEvery: 0, companies: 1 });
    const logger = silentLogger();
    const fsStandIn = await startStudioStandIn({
      db: studioDb, databaseName: `mdb_${INSTANCE}`, users: [{ user: USER, password: PASSWORD }], logger, latencyMs: options.fsLatencyMs,
    });
    closers.push(() => fsStandIn.close());
    const fso = await startOnlineStandIn({
      database: INSTANCE, users: [{ login: USER, password: PASSWORD }], logger, latencyMs: options.fsoLatencyMs,
    });
    closers.push(() => fso.close());

    const syncDb = await createTestDatabase('sosync_overhead_sync');
    closers.push(() => syncDb.drop());
    const table = await openSyncTable({ kind: 'postgres', ...syncDb.config, database: syncDb.name });
    closers.push(() => table.db.close());

    const studio = createStudioClient({
      host: '127.0.0.1', port: fsStandIn.port, database: `mdb_${INSTANCE}`, user: USER, password: PASSWORD,
      encrypt: false, trustServerCertificate: true, connectTimeoutMs: 15_000, requestTimeoutMs: 60_000,
    }, logger);
    closers.push(() => studio.close());
    const online = createOnlineClient({ host: fso.url, database: INSTANCE, user: USER, password: PASSWORD, timeoutMs: 60_000 }, logger);
    closers.push(async () => online.close());
    const fsUser = await new sql.ConnectionPool({
      server: '127.0.0.1', port: fsStandIn.port, database: `mdb_${INSTANCE}`, user: USER, password: PASSWORD,
      options: { encrypt: false, trustServerCertificate: true }, requestTimeout: 60_000,
    }).connect();
    closers.push(() => fsUser.close());

    let syncTableWrites = 0;
    const store = observeCalls(table.store, 'fs', (call) => { if (storeWrites.has(call.operation)) syncTableWrites++; });
    const machine = createJobLogic({ store, flows: new FlowRegistry(createFlows({ studio, online })), now: () => new Date(), logger });
    const counts = (): Counts => ({ fs: fsStandIn.server.requestCount, fso: fso.callCount, syncTableWrites });

    return {
      fsStandIn, fso, studio, online, fsUser, table, counts, personIds: seeded.personIds, companyIds: seeded.companyIds,
      async bareSyncTableWrites(model, recordId, children = 0) {
        const job = await table.store.createJob({ job_date: new Date(), job_source_system: 'fs', job_source_model: model, job_source_record_id: recordId, job_source_sosync_write_date: new Date() });
        const t0 = process.hrtime.bigint();
        const started = await table.store.startJob(job.job_id);
        for (let i = 0; i < children; i++) {
          const { job: child } = await table.store.findOrCreateChildJob(job.job_id, 'fso', 'res.partner', recordId + i, new Date());
          await table.store.finishJob(await table.store.startJob(child.job_id), { job_state: 'done', job_end: new Date(), job_log: 'model up to date' });
        }
        await table.store.finishJob(started, { job_state: 'done', job_end: new Date(), job_log: 'model up to date' });
        return Number(process.hrtime.bigint() - t0) / 1e6;
      },
      async runJob(system, model, recordId) {
        // created as /job/create would (not counted: the job's own work starts at its pick)
        const job = await table.store.createJob({
          job_date: new Date(), job_source_system: system, job_source_model: model, job_source_record_id: recordId,
          // as FS and FSO announce: with the record's stamp, so the job closes older ones (one more write)
          job_source_sosync_write_date: new Date(),
        });
        const before = counts();
        const t0 = process.hrtime.bigint();
        const outcome = await toPromise(createActor(machine, { input: { job, ancestors: [] } }).start());
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        return { outcome, counts: countsBetween(before, counts()), jobId: job.job_id, ms };
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
