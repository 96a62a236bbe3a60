/**
 * The protocol worker end to end: finished jobs appear in FSO's sosync.job through the production
 * client and the Odoo stand-in, follow later changes, and survive an FSO outage.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createOnlineClient, type OnlineClient } from '../../src/adapters/online/index.ts';
import { createWorkerSystem, type WorkerSystem } from '../../src/machines/system.ts';
import { PROTOCOL_GATHER_MS } from '../../src/machines/protocol.ts';
import { createProtocolCopier, formatOdooDatetime, sosyncJobValues } from '../../src/adapters/online/index.ts';
import { OnlineStore, modelDefs } from '../../sandbox/online/index.ts';
import { magicFields } from '../../sandbox/online/models.ts';
import { logCapture } from '../support/logs.ts';
import { FlowRegistry } from '../../src/flows/registry.ts';
import { silentLogger } from '../../src/log.ts';
import { startOnlineStandIn, type OnlineStandIn } from '../../sandbox/online/index.ts';
import { openTable, type StoreKind } from '../support/engine.ts';
import type { OpenedSyncTable } from '../../src/adapters/syncTable/index.ts';
import { MemoryFlow } from '../support/memoryFlow.ts';
import { sleep, until } from '../support/wait.ts';


const magicFieldNames = new Set(Object.keys(magicFields));
/** the protocol worker's gathering here: longer than PROTOCOL_GATHER_MS, so a loaded machine still ends three jobs within it */
const GATHER_MS = 4 * PROTOCOL_GATHER_MS;

for (const kind of ['postgres', 'pglite'] as StoreKind[]) {
  describe(`protocol worker on ${kind}`, () => {
    let fso: OnlineStandIn;
    let online: OnlineClient;
    let table: OpenedSyncTable;
    let drop: () => Promise<void>;
    let workers: WorkerSystem;
    const logger = silentLogger();
    const memory = new MemoryFlow('memory', { fs: 'dbo.Thing', fso: 'x.thing' });

    before(async () => {
      fso = await startOnlineStandIn({ database: 'proto', users: [{ login: 'sosync', password: 'pw-secret' }], logger });
      online = createOnlineClient({ host: fso.url, database: 'proto', user: 'sosync', password: 'pw-secret', timeoutMs: 1000 }, logger);
      ({ table, drop } = await openTable(kind));
      workers = createWorkerSystem({
        store: table.store,
        flows: new FlowRegistry([memory]),
        drift: { measure: async () => ({ at: new Date(), sources: {}, ok: true }) },
        toleranceMs: 30,
        throttleMs: 0,
        logger,
        protocol: createProtocolCopier({ store: table.store, online, batchSize: 3, now: () => new Date(), logger }),
        protocolRetryMs: 200,
        protocolGatherMs: GATHER_MS,
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
        assert.equal(remote.job_state, 'done');
        assert.equal(remote.job_log, job.job_log);
        assert.equal(remote.sync_target_request, '<x/>');
        assert.equal(remote.job_source_model, 'dbo.Thing');
        assert.equal(remote.job_date, formatOdooDatetime(job.job_date!), 'Datetime as Odoo stores it');
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
      assert.equal(fso.store.get('sosync.job', job.job_fso_id!)!.job_log, 'changed later');
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

    /** sosync.job calls the stand-in receives while `work` runs; `refuse` fails a create that holds that job */
    async function sosyncJobCalls(work: () => Promise<void>, refuse?: number): Promise<{ method: string; args: unknown[] }[]> {
      const calls: { method: string; args: unknown[] }[] = [];
      fso.faults.onCall((call) => {
        if (call.model !== 'sosync.job') return;
        calls.push({ method: call.method, args: call.args });
        const created = call.method === 'create' ? [call.args[0]].flat() as { job_id?: number }[] : [];
        if (refuse !== undefined && created.some((v) => v.job_id === refuse)) throw new Error(`job ${refuse} refused by the test`);
      });
      try {
        await work();
      } finally {
        fso.faults.onCall(null);
      }
      return calls;
    }

    const readyJobs = async (count: number, from: number) => {
      const ids: number[] = [];
      for (let i = 0; i < count; i++) {
        const job = await table.store.createJob({ job_date: new Date(), job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: from + i });
        await table.store.updateJob(job.job_id, { job_state: 'done', job_to_fso_can_sync: true });
        ids.push(job.job_id);
      }
      return ids;
    };

    test('a batch of new rows costs one search by job_id and one create of all of them', async () => {
      const ids = await readyJobs(3, 200);
      const calls = await sosyncJobCalls(async () => {
        workers.control.processProtocol();
        await until(async () => (await table.store.countProtocolPending()) === 0, 'copied');
      });
      assert.deepEqual(calls.map((c) => c.method).filter((m) => m !== 'fields_get'), ['search_read', 'create']);
      assert.deepEqual(calls.find((c) => c.method === 'search_read')!.args[0], [['job_id', 'in', ids]]);
      const created = calls.find((c) => c.method === 'create')!.args[0] as { job_id: number }[];
      assert.deepEqual(created.map((v) => v.job_id), ids);
      for (const id of ids) {
        const job = (await table.store.getJob(id))!;
        assert.equal(fso.store.get('sosync.job', job.job_fso_id!)!.job_id, id, `job ${id} recorded with its own FSO id`);
      }
    });

    test('jobs that end one after the other within the gathering time are copied in one batch', async () => {
      const ids: number[] = [];
      const calls = await sosyncJobCalls(async () => {
        for (let i = 0; i < 3; i++) {
          const [id] = await readyJobs(1, 250 + i);
          ids.push(id);
          // as the job worker does when a job ends
          workers.control.jobCreated((await table.store.getJob(id))!);
          await sleep(20);
        }
        await until(async () => (await table.store.countProtocolPending()) === 0, 'copied');
      });
      const creates = calls.filter((c) => c.method === 'create').map((c) => [c.args[0]].flat().map((v) => (v as { job_id: number }).job_id));
      assert.deepEqual(creates, [ids], `one create of the three (gathering ${GATHER_MS} ms), not one per job`);
    });

    test('a create FSO refuses is retried row by row: the others are copied, the refused row alone stays pending', async () => {
      const ids = await readyJobs(3, 300);
      const refused = ids[1];
      const calls = await sosyncJobCalls(async () => {
        workers.control.processProtocol();
        await until(async () => (await table.store.getJob(ids[2]))!.job_fso_id !== null, 'the others copied');
        // while FSO still refuses it (the worker tries the row again at once, and on its timer)
        assert.equal((await table.store.getJob(ids[0]))!.job_fso_id !== null, true);
        assert.equal((await table.store.getJob(refused))!.job_fso_id, null);
        assert.equal(fso.store.all('sosync.job').filter((r) => r.job_id === refused).length, 0);
        assert.ok((await table.store.protocolPending(10)).some((r) => r.job_id === refused), 'still pending');
      }, refused);
      const creates = calls.filter((c) => c.method === 'create').slice(0, 4).map((c) => [c.args[0]].flat().map((v) => (v as { job_id: number }).job_id));
      assert.deepEqual(creates, [ids, [ids[0]], [ids[1]], [ids[2]]], 'the list, then each row on its own');
      workers.control.processProtocol();
      await until(async () => (await table.store.countProtocolPending()) === 0, 'copied once FSO takes it');
      assert.equal(fso.store.all('sosync.job').filter((r) => ids.includes(r.job_id as number)).length, 3, 'each row once');
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
      assert.equal(remote.job_state, 'error');
      assert.equal(remote.job_error_code, 'sync_source');
      assert.equal((await workers.control.status()).protocol_worker.activity, 'idle');
    });

    test('sent values: only FSO\'s fields under the column names, Odoo Datetimes, ISO char dates, false for empty, error_retry as error', async () => {
      const start = new Date('2026-03-01T10:00:00.123Z');
      const job = await table.store.createJob({ job_date: new Date('2026-03-01T09:59:58.000Z'), job_source_system: 'fs', job_source_model: 'dbo.Thing',
        job_source_record_id: 4711, job_source_sosync_write_date: new Date('2026-03-01T09:59:57.456Z'), job_priority: 2000, job_source_type: 'delete' });
      const row = await table.store.updateJob(job.job_id, { job_state: 'error_retry', job_start: start, job_log: 'ran once', job_closed_by_job_id: 3 });
      const values = sosyncJobValues(row);
      assert.deepEqual(Object.keys(values).sort(), Object.keys(fso.store.model('sosync.job').fields).filter((f) => !magicFieldNames.has(f)).sort(),
        'exactly the fields FSO\'s sosync.job has');
      assert.equal(values.job_id, job.job_id);
      assert.equal(values.job_date, '2026-03-01 09:59:58');
      assert.equal(values.job_start, '2026-03-01T10:00:00.123Z');
      assert.equal(values.job_source_sosync_write_date, '2026-03-01T09:59:57.456Z');
      assert.equal(values.job_end, false);
      assert.equal(values.job_error_code, false);
      assert.equal(values.job_state, 'error');
      assert.match(String(values.job_log), /^ran once\njob_state error_retry is sent to FSO as error/);
      for (const notSent of ['job_priority', 'job_closed_by_job_id', 'job_source_type', 'job_fso_id', 'job_to_fso_can_sync', 'job_last_change']) {
        assert.ok(!(notSent in values), `${notSent} is not sent`);
      }
      await table.store.updateJob(job.job_id, { job_to_fso_can_sync: true });
      workers.control.processProtocol();
      await until(async () => (await table.store.countProtocolPending()) === 0, 'copied');
      const remote = fso.store.get('sosync.job', (await table.store.getJob(job.job_id))!.job_fso_id!)!;
      assert.equal(remote.job_state, 'error');
      assert.equal(remote.job_start, '2026-03-01T10:00:00.123Z');
      assert.equal((await table.store.getJob(job.job_id))!.job_state, 'error_retry', 'the sync table keeps its own state');
    });

    test('the stand-in refuses a field FSO does not have, and a state outside its selection', async () => {
      await assert.rejects(online.create('sosync.job', { job_id: 1, job_priority: 5 }), /Invalid field 'job_priority' on model 'sosync\.job'/);
      await assert.rejects(online.create('sosync.job', { job_id: 1, job_state: 'error_retry' }), /Wrong value for sosync\.job\.job_state: 'error_retry'/);
    });

    test('after a burst, every finished job reaches FSO with no further announcement or request', async () => {
      const flow = memory;
      const ids: number[] = [];
      for (let i = 0; i < 12; i++) {
        const rec = flow.fs.insert({ n: i });
        ids.push((await table.store.createJob({ job_date: new Date(), job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: rec.id })).job_id);
      }
      // only the job worker is started: the protocol worker must be woken by the jobs ending
      workers.control.processJobs();
      await until(async () => (await table.store.countOpenRootJobs()) === 0, 'all jobs ran');
      await until(async () => (await workers.control.status()).protocol_worker.pending_rows === 0, 'pending_rows reaches 0');
      for (const id of ids) {
        const job = (await table.store.getJob(id))!;
        assert.equal(job.job_state, 'done');
        assert.ok(job.job_fso_id, `job ${id} copied to FSO`);
      }
    });

    test('the copied values are password-free', async () => {
      assert.ok(!JSON.stringify(fso.store.all('sosync.job')).includes('pw-secret'));
    });
  });
}

describe('FSO without a sosync.job model', () => {
  test('the protocol worker says so in the status, logs it once, and stops trying until /service/processprotocol', async () => {
    const capture = logCapture();
    const fso = await startOnlineStandIn({ database: 'proto', users: [{ login: 'sosync', password: 'pw' }], logger: silentLogger(),
      store: new OnlineStore(modelDefs.filter((m) => m.name !== 'sosync.job')) });
    const online = createOnlineClient({ host: fso.url, database: 'proto', user: 'sosync', password: 'pw', timeoutMs: 1000 }, silentLogger());
    const { table, drop } = await openTable('pglite');
    let calls = 0;
    const copier = createProtocolCopier({ store: table.store, online, batchSize: 3, now: () => new Date(), logger: capture.logger });
    const workers = createWorkerSystem({
      store: table.store,
      flows: new FlowRegistry([new MemoryFlow('memory', { fs: 'dbo.Thing', fso: 'x.thing' })]),
      drift: { measure: async () => ({ at: new Date(), sources: {}, ok: true }) },
      toleranceMs: 30, throttleMs: 0, logger: capture.logger,
      protocol: { copyBatch: () => { calls++; return copier.copyBatch(); } },
      protocolRetryMs: 50,
    });
    try {
      for (let i = 1; i <= 2; i++) {
        const job = await table.store.createJob({ job_date: new Date(), job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: i });
        await table.store.updateJob(job.job_id, { job_state: 'done', job_to_fso_can_sync: true });
      }
      workers.control.processProtocol();
      await until(async () => (await workers.control.status()).protocol_worker.fso_model_missing === true, 'model missing reported');
      const status = (await workers.control.status()).protocol_worker;
      assert.equal(status.activity, 'error');
      assert.match(String(status.last_error), /FSO has no model sosync\.job/);
      assert.equal(status.pending_rows, 2);
      // announcements and finished jobs wake it, the retry timer runs out: none of them tries again
      workers.control.jobCreated((await table.store.getJob(1))!);
      await sleep(300);
      assert.equal(calls, 1, 'one attempt, no retries');
      assert.equal(capture.lines.filter((l) => /no model sosync\.job/.test(String(l.error))).length, 1, 'one log line');
      workers.control.processProtocol();
      await until(() => calls === 2, 'tried again on /service/processprotocol');
      await until(async () => (await workers.control.status()).protocol_worker.fso_model_missing === true, 'still missing');
    } finally {
      await workers.stop(2000);
      online.close();
      await fso.close();
      await drop();
    }
  });
});
