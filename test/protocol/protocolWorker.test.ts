/**
 * The protocol worker end to end: finished jobs appear in FSO's sosync.job through the production
 * client and the Odoo stand-in, follow later changes, and survive an FSO outage.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createOnlineClient, type OnlineClient } from '../../src/adapters/online/index.ts';
import { createWorkerSystem, type WorkerSystem } from '../../src/machines/system.ts';
import { createProtocolCopier, sosyncJobValues } from '../../src/adapters/online/index.ts';
import { FlowRegistry } from '../../src/flows/registry.ts';
import { silentLogger } from '../../src/log.ts';
import { startOnlineStandIn, type OnlineStandIn } from '../../sandbox/online/index.ts';
import { openTable, type StoreKind } from '../support/engine.ts';
import type { OpenedSyncTable } from '../../src/adapters/syncTable/index.ts';
import { MemoryFlow } from '../support/memoryFlow.ts';
import { sleep, until } from '../support/wait.ts';


for (const kind of ['postgres', 'pglite'] as StoreKind[]) {
  describe(`protocol worker on ${kind}`, () => {
    let fso: OnlineStandIn;
    let online: OnlineClient;
    let table: OpenedSyncTable;
    let drop: () => Promise<void>;
    let workers: WorkerSystem;
    const logger = silentLogger();

    before(async () => {
      fso = await startOnlineStandIn({ database: 'proto', users: [{ login: 'sosync', password: 'pw-secret' }], logger });
      online = createOnlineClient({ host: fso.url, database: 'proto', user: 'sosync', password: 'pw-secret', timeoutMs: 1000 }, logger);
      ({ table, drop } = await openTable(kind));
      workers = createWorkerSystem({
        store: table.store,
        flows: new FlowRegistry([new MemoryFlow('memory', { fs: 'dbo.Thing', fso: 'x.thing' })]),
        drift: { measure: async () => ({ at: new Date(), sources: {}, ok: true }) },
        toleranceMs: 30,
        throttleMs: 0,
        logger,
        protocol: createProtocolCopier({ store: table.store, online, batchSize: 3, now: () => new Date(), logger }),
        protocolRetryMs: 200,
      });
    });
    after(async () => {
      await workers.stop(2000);
      online.close();
      await fso.close();
      await drop();
    });

    const sosyncJobs = () => fso.store.all('sosync.job');

    test('ready rows are copied in batches with the sosync.job field names; the id is kept', async () => {
      const ids: number[] = [];
      for (let i = 1; i <= 7; i++) {
        const job = await table.store.createJob({ job_date: new Date(), job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: i });
        await table.store.updateJob(job.job_id, { job_state: 'done', job_log: `done ${i}`, sync_target_request: '<x/>', job_to_fso_can_sync: i <= 6 });
        ids.push(job.job_id);
      }
      const status = await workers.control.processProtocol();
      assert.ok(['idle', 'running', 'restartRequested'].includes(status.activity));
      await until(async () => (await table.store.countProtocolPending()) === 0, 'all copied');
      const rows = sosyncJobs();
      assert.equal(rows.length, 6, 'only rows ready for the protocol');
      for (const id of ids.slice(0, 6)) {
        const job = (await table.store.getJob(id))!;
        const remote = rows.find((r) => r.job_id === id)!;
        assert.ok(remote, `job ${id} in sosync.job`);
        assert.equal(job.job_fso_id, remote.id);
        assert.equal(remote.state, 'done');
        assert.equal(remote.log, job.job_log);
        assert.equal(remote.target_request, '<x/>');
        assert.equal(remote.source_model, 'dbo.Thing');
        assert.ok(job.job_to_fso_sync_date! >= job.job_last_change!);
      }
      assert.equal((await table.store.getJob(ids[6]))!.job_fso_id, null);
    });

    test('a changed row is updated in place (by job_fso_id), not copied twice', async () => {
      const job = (await table.store.listJobs({ limit: 1, order: 'asc' }).next()).value!;
      const before = sosyncJobs().length;
      await table.store.updateJob(job.job_id, { job_log: 'changed later' });
      workers.control.processProtocol();
      await until(async () => (await table.store.countProtocolPending()) === 0, 'copied again');
      assert.equal(sosyncJobs().length, before);
      assert.equal(fso.store.get('sosync.job', job.job_fso_id!)!.log, 'changed later');
    });

    test('a row without job_fso_id whose copy exists is found by job_id, not duplicated', async () => {
      const job = (await table.store.listJobs({ limit: 1, order: 'asc' }).next()).value!;
      await table.db.query('UPDATE sync_table SET job_fso_id = NULL, job_to_fso_sync_date = NULL WHERE job_id = $1', [job.job_id]);
      const before = sosyncJobs().length;
      workers.control.processProtocol();
      await until(async () => (await table.store.countProtocolPending()) === 0, 'copied');
      assert.equal(sosyncJobs().length, before);
      assert.equal((await table.store.getJob(job.job_id))!.job_fso_id, job.job_fso_id);
    });

    test('FSO unreachable: rows stay pending, status shows the error, and they are copied after it returns', async () => {
      await fso.faults.refuseConnections(true);
      const job = await table.store.createJob({ job_date: new Date(), job_source_system: 'fso', job_source_model: 'x.thing', job_source_record_id: 99 });
      await table.store.updateJob(job.job_id, { job_state: 'error', job_error_code: 'sync_source', job_to_fso_can_sync: true });
      workers.control.processProtocol();
      await until(async () => (await workers.control.status()).protocol_worker.activity === 'error', 'protocol worker in error');
      const status = await workers.control.status();
      assert.equal(status.protocol_worker.activity, 'error');
      assert.match(String(status.protocol_worker.last_error), /127\.0\.0\.1/);
      assert.equal(status.protocol_worker.pending_rows, 1);
      assert.equal((await table.store.getJob(job.job_id))!.job_fso_id, null);
      await fso.faults.refuseConnections(false);
      await until(async () => (await table.store.getJob(job.job_id))!.job_fso_id !== null, 'copied after the outage', 10_000);
      const remote = fso.store.get('sosync.job', (await table.store.getJob(job.job_id))!.job_fso_id!)!;
      assert.equal(remote.state, 'error');
      assert.equal(remote.error_code, 'sync_source');
      assert.equal((await workers.control.status()).protocol_worker.activity, 'idle');
    });

    test('the copied values are the sync_table columns under their sosync.job names, password-free', async () => {
      const job = (await table.store.listJobs({ limit: 1, order: 'desc' }).next()).value!;
      const values = sosyncJobValues(job);
      assert.equal(values.job_id, job.job_id);
      assert.equal(values.state, job.job_state);
      assert.ok(!('fso_id' in values), 'the copy does not carry its own bookkeeping');
      assert.ok(!JSON.stringify(online.lastExchange()).includes('pw-secret'));
    });
  });
}
