/**
 * Model-based tests: the paths come from the machines (the rows of jobModel.ts and workerModels.ts
 * over XState's graph utilities), each runs for real against the FS and FSO stand-ins and the
 * running service, and the coverage gate checks that the real runs together took every state and
 * transition of all three machines.
 *
 *   SOSYNC_MBT=simple      the longer simple-paths variant
 *   SOSYNC_MBT_PATH=<id>   one path only (its id or its name, as a failure prints it)
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startEndToEnd, jobDate, type EndToEnd } from '../support/endToEnd.ts';
import type { JobRow } from '../../src/adapters/syncTable/index.ts';
import { coverageGaps, scenarioOf, selectedPaths, statesAlong, type MachineModel, type ModelPath } from './model.ts';
import { childModels, emptyJobScenario, jobModel, type JobScenario } from './jobModel.ts';
import { clearWorkerFaults, protocolModel, STOP_THROTTLE_MS, stopsTheWorker, supervisorModel, type WorkerScenario } from './workerModels.ts';
import { Recorder } from './recorder.ts';
import { sleep, until } from '../support/wait.ts';

const recorder = new Recorder();
/** the protocol worker's gathering, long enough for a path's next outside event to reach it there */
const PROTOCOL_GATHER_TEST_MS = 1000;
const paths = selectedPaths(jobModel);
const workerModels = [supervisorModel, protocolModel];
const workerPaths = workerModels.map((model) => ({ model, paths: selectedPaths(model) }));
/** A failure that names its path, how to run it alone, and where its inspection events are. */
function failedPath(err: unknown, path: ModelPath, file: string): Error {
  const message = err instanceof Error ? err.message : String(err);
  return new Error(`${message}\n  path ${path.id}: ${path.name}\n  replay alone: SOSYNC_MBT_PATH=${path.id}\n  inspection events: ${file}`, { cause: err });
}

const dedup = (values: string[]) => values.filter((v, i) => v !== values[i - 1]);

/**
 * One worker path, step by step on the running service: each step's `prepare` before the step
 * that leads into its source state, its `act` once the real worker is there; after each step the
 * worker's real states must match the path's.
 */
async function runWorkerPath(e: EndToEnd, model: MachineModel<WorkerScenario>, path: ModelPath): Promise<void> {
  const sc = scenarioOf(model, path, { steps: [] } as WorkerScenario);
  const machine = model.machine.id;
  const expected = statesAlong(path);
  const startAt = recorder.valuesOf(machine).length - 1;
  const real = () => dedup(recorder.valuesOf(machine).slice(Math.max(startAt, 0)));
  assert.equal(real()[0], expected[0], `the ${machine} is in the path's first state`);
  // where each step's prepare runs: before the act of the step before it, or of the last step with an act
  const prepareAt = sc.steps.map((s, k) => {
    if (!s.early) return k - 1;
    let j = k - 1;
    while (j >= 0 && !sc.steps[j].act) j--;
    return j;
  });
  const prepareBefore = async (i: number) => {
    for (const [k, at] of prepareAt.entries()) if (at === i) await sc.steps[k].prepare?.(e);
  };
  await prepareBefore(-1);
  for (let i = 0; i < sc.steps.length; i++) {
    await prepareBefore(i);
    await sc.steps[i].act?.(e);
    const want = dedup(expected.slice(0, i + 2));
    await until(() => {
      const r = real();
      return r.length >= want.length && want.every((v, k) => r[k] === v);
    }, `${machine} to go ${want.join(' → ')} (real: ${real().join(' → ')})`, 10_000);
  }
  const settled = dedup(expected);
  await sleep(100);
  assert.deepEqual(real(), settled, `the ${machine} went through other states than the path`);
}

const fsTableOf: Record<string, string> = { 'res.company': 'xBPKAccount', 'res.partner': 'Person' };

/**
 * The set-up of one path, run against the stand-ins: records first (pairs made by sosync itself),
 * then the faults the path's rows ask for, then the change that announces the job under test.
 */
async function arrange(e: EndToEnd, sc: JobScenario, sourceSystem: 'fs' | 'fso' | undefined): Promise<number> {
  const db = e.service.table.db;
  const store = e.service.table.store;
  const name = `Verein ${Math.random().toString(36).slice(2, 8)}`;
  const sourceModel = sc.flow === 'bpk' ? 'res.partner.bpk' : 'res.company';

  const pairCompany = async () => {
    const row = await e.fs.insert('xBPKAccount', { Name: name });
    await e.waitForJobs();
    const [fsRow] = await e.fs.rows('xBPKAccount', '[xBPKAccountID] = @id', { id: row.xBPKAccountID });
    return { fsId: fsRow.xBPKAccountID as number, fsoId: fsRow.sosync_fso_id as number, fsDate: fsRow.sosync_write_date as Date };
  };
  const bpkOf = (companyId: number, partnerId: number) => ({
    BPKRequestPartnerID: partnerId, BPKRequestCompanyID: companyId, BPKPrivate: 'P', BPKPublic: 'Q',
    BPKRequestFirstname: 'Maria', BPKRequestLastname: name, BPKRequestBirthdate: '1980-05-17', BPKRequestZIP: '1010',
  });

  // the FSO record of the source, once known (some are created by the announcing change itself)
  let fsoSourceId: number | null = null;
  const targetSystem = sourceSystem === 'fs' ? 'fso' : 'fs';
  const installFaults = async () => {
    const calls = new Map<string, number>();
    e.fso.faults.onCall(async (call) => {
      const reading = call.method === 'read' || call.method === 'search_read' || call.method === 'search';
      const n = reading ? (calls.get(call.model) ?? 0) + 1 : 0;
      if (reading) calls.set(call.model, n);
      // the source's re-read in step 5 is its second and last read (the direction step's read, with
      // the flow's fields, also gives the bPK's children and the write works from the re-read)
      const consistencyRead = 2;
      if (call.model === sourceModel && sourceSystem === 'fso') {
        if (sc.sourceChangesBeforeWrite && n === consistencyRead) e.fso.store.update(sourceModel, [fsoSourceId!], { sosync_write_date: new Date().toISOString() });
        if (sc.sourceUnreadable && n === consistencyRead) throw new Error('FSO: source unreadable (model-based test)');
      }
      if (call.model === 'res.company' && sourceSystem === 'fs' && n === 1) {
        // FS is the source: its record changes (or turns unreadable) after step 3 read it
        if (sc.sourceChangesBeforeWrite) await e.fs.query('UPDATE dbo.[xBPKAccount] SET [Name] = @n WHERE [Name] LIKE @like;', { n: `${name} geändert`, like: `${name}%` });
        if (sc.sourceUnreadable) e.fsStandIn.engine.failStatements([{ match: 'xBPKAccount', times: 1 }]);
      }
      if (sc.readFails && n === 1 && (call.model === sourceModel || call.model === 'res.company')) throw new Error('FSO: read refused (model-based test)');
      // listing the children reads nothing: it fails on a bPK that reaches sosync without its
      // company reference (FSO's constraint is bypassed on the stored row, just before step 3 reads it)
      if (sc.childListFails && call.model === 'res.partner.bpk' && n === 1) e.fso.store.row('res.partner.bpk', fsoSourceId!)!.BPKRequestCompanyID = null;
      if (sc.writeFails && targetSystem === 'fso' && (call.method === 'write' || call.method === 'create') && call.model === 'res.company') throw new Error('FSO: write refused (model-based test)');
      if (sc.deleteFails && sc.announcer === 'fs' && call.method === 'unlink') throw new Error('FSO: unlink refused (model-based test)');
      sc.children.forEach((outcome, i) => {
        if (outcome === 'requeued' && call.model === childModels[i] && n === 2) {
          const [id] = e.fso.store.search(childModels[i], [[childModels[i] === 'res.company' ? 'name' : 'lastname', 'ilike', name]]);
          e.fso.store.update(childModels[i], [id], { sosync_write_date: new Date().toISOString() });
        }
      });
    });
    const failures: Array<{ match: RegExp; times: number }> = [];
    if (sc.writeFails && targetSystem === 'fs') failures.push({ match: /^\s*(INSERT|UPDATE)[^;]*(xBPKAccount|PersonBPK)/i, times: 1 });
    if (sc.deleteFails && sc.announcer === 'fso') failures.push({ match: /^\s*DELETE[^;]*xBPKAccount/i, times: 1 });
    sc.children.forEach((outcome, i) => {
      if (outcome === 'fails') failures.push({ match: new RegExp(`^\\s*(INSERT|UPDATE)[^;]*dbo\\.\\[?${fsTableOf[childModels[i]]}\\]?[\\s(]`, 'i'), times: 1 });
    });
    if (failures.length) e.fsStandIn.engine.failStatements(failures);
    const aborted = sc.children.indexOf('aborted');
    const checks = [
      sc.tableRefuses,
      aborted >= 0 ? `parent_job_id IS NULL OR job_source_model <> '${childModels[aborted]}' OR job_state <> 'done'` : null,
      sc.childOpenFails ? `parent_job_id IS NULL OR job_source_model <> '${sc.childOpenFails}'` : null,
    ].filter(Boolean);
    for (const [i, check] of checks.entries()) await db.query(`ALTER TABLE sync_table ADD CONSTRAINT mbt_fault_${i} CHECK (${check}) NOT VALID`);
  };

  // 1. the records, and what announces the job under test
  let record: { system: 'fs' | 'fso'; model: string; id: number; date: Date | null } | null = null;
  let announce: () => Promise<void>;
  const viaApi = () => async () => {
    const r = record!;
    const answer = await e.announce({ job_date: jobDate(), job_source_system: r.system, job_source_model: r.model, job_source_record_id: r.id, job_source_sosync_write_date: r.date?.toISOString() ?? null });
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
  };
  if (sc.flow === 'bpk') {
    const stamp = new Date(Date.now() - 60_000).toISOString();
    const companyId = e.fso.store.create('res.company', { name, sosync_write_date: stamp });
    const partnerId = e.fso.store.create('res.partner', { firstname: 'Maria', lastname: name, birthdate_web: '1980-05-17', sosync_write_date: stamp });
    if (sc.records === 'fsoNewer') {
      const bpkId = e.fso.userCreate('res.partner.bpk', bpkOf(companyId, partnerId));
      await e.waitForJobs();
      // the children have news too, so that their jobs write
      const later = new Date(Date.now() - 30_000).toISOString();
      e.fso.store.update('res.company', [companyId], { name: `${name} neu`, sosync_write_date: later });
      e.fso.store.update('res.partner', [partnerId], { lastname: `${name} neu`, sosync_write_date: later });
      fsoSourceId = bpkId;
      record = { system: 'fso', model: 'res.partner.bpk', id: bpkId, date: new Date() };
      announce = async () => e.fso.userWrite('res.partner.bpk', bpkId, { BPKPrivate: 'P2' });
    } else {
      announce = async () => { fsoSourceId = e.fso.userCreate('res.partner.bpk', bpkOf(companyId, partnerId)); };
    }
  } else if (sc.delete) {
    const p = await pairCompany();
    record = sc.announcer === 'fs' ? { system: 'fs', model: 'dbo.xBPKAccount', id: p.fsId, date: p.fsDate } : { system: 'fso', model: 'res.company', id: p.fsoId, date: p.fsDate };
    announce = sc.announcer === 'fs'
      ? async () => { await e.fs.query('DELETE FROM dbo.[xBPKAccount] WHERE [xBPKAccountID] = @id;', { id: p.fsId }); }
      : async () => e.fso.userUnlink('res.company', p.fsoId);
  } else {
    switch (sc.records) {
      case 'missing':
        record = { system: sc.announcer, model: sc.announcer === 'fs' ? 'dbo.xBPKAccount' : 'res.company', id: 987_654, date: new Date() };
        announce = viaApi();
        break;
      case 'invalid':
        record = { system: 'fso', model: 'res.company', id: e.fso.store.create('res.company', { name, sosync_fs_id: 999 }), date: null };
        announce = viaApi();
        break;
      case 'targetMissing':
        announce = sc.announcer === 'fs'
          ? async () => { await e.fs.insert('xBPKAccount', { Name: name }); }
          : async () => { fsoSourceId = e.fso.userCreate('res.company', { name }); };
        break;
      default: {
        const p = await pairCompany();
        const fsRecord = { system: 'fs' as const, model: 'dbo.xBPKAccount', id: p.fsId, date: p.fsDate };
        const fsoRecord = { system: 'fso' as const, model: 'res.company', id: p.fsoId, date: p.fsDate };
        fsoSourceId = p.fsoId;
        if (sc.records === 'equal') {
          record = sc.announcer === 'fs' ? fsRecord : fsoRecord;
          announce = viaApi();
        } else if (sc.records === 'olderAnnounced') {
          e.fso.store.update('res.company', [p.fsoId], { name: `${name} FSO`, sosync_write_date: new Date().toISOString() });
          record = fsRecord;
          announce = viaApi();
        } else if (sc.records === 'fsNewer') {
          record = { ...fsRecord, date: new Date() };
          announce = async () => { await e.fs.query('UPDATE dbo.[xBPKAccount] SET [Name] = @n WHERE [xBPKAccountID] = @id;', { n: `${name} neu`, id: p.fsId }); };
        } else {
          record = { ...fsoRecord, date: new Date() };
          announce = async () => e.fso.userWrite('res.company', p.fsoId, { name: `${name} neu` });
        }
      }
    }
  }

  // 2. queue state an earlier (crashed or busy) process left: an older announcement of the same
  // record waits behind the job under test (SPEC §4.1 runs the newest announcement first)
  if (sc.superseded) {
    const r = record!;
    const older = new Date((r.date ?? new Date()).getTime() - 60_000);
    const { job_id } = await store.createJob({ job_date: new Date(Date.now() - 3_600_000), job_source_system: r.system, job_source_model: r.model, job_source_record_id: r.id, job_source_sosync_write_date: older, job_source_type: sc.delete ? 'delete' : '' });
    supersededJobs.set(sc, job_id);
  }
  const since = await e.lastJobId();
  let jobId: number | null = null;
  if (sc.priorRuns > 0) {
    const r = record!;
    const job = await store.createJob({ job_date: new Date(), job_source_system: r.system, job_source_model: r.model, job_source_record_id: r.id, job_source_sosync_write_date: r.date });
    await store.updateJob(job.job_id, { job_state: 'inprogress', job_run_count: sc.priorRuns });
    jobId = job.job_id;
    announce = async () => { await e.get('/service/processjobs'); };
  }

  // 3. the faults, then the announcement
  await installFaults();
  await announce();
  if (jobId !== null) return jobId;
  let found: JobRow | undefined;
  await until(async () => {
    found = (await e.jobsAfter(since)).find((j) => j.parent_job_id === null);
    return found !== undefined;
  }, 'the announced job', 10_000);
  return found!.job_id;
}

/** the older job a scenario queued behind the job under test (SPEC §4.2 step 8 closes it) */
const supersededJobs = new WeakMap<JobScenario, number>();

async function clearFaults(e: EndToEnd): Promise<void> {
  e.fso.faults.onCall(null);
  e.fsStandIn.engine.failStatements([]);
  for (const i of [0, 1, 2]) await e.service.table.db.query(`ALTER TABLE sync_table DROP CONSTRAINT IF EXISTS mbt_fault_${i}`);
}

/** The job row and both systems after the path, against what the model's end state says. */
async function checkOutcome(e: EndToEnd, path: ModelPath, sc: JobScenario, row: JobRow): Promise<void> {
  const end = path.state as unknown as { value: string; context: any };
  const c = end.context;
  const detail = `row: ${JSON.stringify({ state: row.job_state, code: row.job_error_code, text: row.job_error_text, log: row.job_log })}`;
  if (end.value === 'synced') {
    assert.equal(row.job_state, 'done', detail);
    assert.equal(row.job_error_code, null, detail);
  } else if (end.value === 'error') {
    assert.equal(row.job_state, 'error', detail);
    assert.equal(row.job_error_code, c.error.code, detail);
  } else if (end.value === 'aborted') {
    // the outcome, the closing of superseded jobs and the protocol flag are one write: when the
    // sync table refuses any of it, the row is as the start left it (or as it was, unstarted)
    const started = !path.rows.includes('error:startJob(syncTableRefusesStart)');
    assert.equal(row.job_state, started ? 'inprogress' : 'new', `an aborted job records nothing of its end; ${detail}`);
    assert.equal(row.job_end, null, `no job_end; ${detail}`);
    assert.equal(row.job_to_fso_can_sync, false, `an aborted job is not handed to the protocol worker; ${detail}`);
  } else if (end.value === 'requeued') {
    assert.notEqual(row.job_state, 'error', detail);
  }
  const supersededId = supersededJobs.get(sc);
  const superseded = supersededId === undefined ? null : await e.service.table.store.getJob(supersededId);
  if (path.rows.includes('done:finishJob(closedOlderJob)')) {
    assert.deepEqual([superseded?.job_state, superseded?.job_closed_by_job_id], ['skipped', row.job_id], `the older job is closed by this one (step 8); ${detail}`);
  }
  if (path.rows.includes('error:finishJob(syncTableRefusesSkip)')) {
    assert.ok(superseded, `the path queued an older job of the record; ${detail}`);
    assert.notEqual(superseded.job_state, 'skipped', `the refused write closed nothing; ${detail}`);
  }
  if (c.direction && end.value !== 'aborted') assert.equal(row.sync_source_system, c.direction.source.system, `direction; ${detail}`);
  const wrote = path.rows.includes('done:writeTarget(written)') || path.rows.includes('done:deleteCounterpart(deleted)');
  if (end.value === 'synced') assert.equal(row.sync_target_request !== null, wrote, `evidence of the write; ${detail}`);
  if (end.value === 'synced' && path.rows.includes('done:writeTarget(written)') && row.job_source_model === 'dbo.xBPKAccount' || row.job_source_model === 'res.company' && end.value === 'synced' && wrote && row.job_source_type !== 'delete') {
    const fsId = row.sync_source_system === 'fs' ? row.sync_source_record_id : row.sync_target_record_id;
    const fsoId = row.sync_source_system === 'fso' ? row.sync_source_record_id : row.sync_target_record_id;
    const [fsRow] = await e.fs.rows('xBPKAccount', '[xBPKAccountID] = @id', { id: fsId });
    const company = e.fso.store.get('res.company', fsoId!)!;
    assert.equal(company.name, fsRow.Name, 'both systems hold the same name after the write');
    assert.equal(new Date(company.sosync_write_date as string).getTime(), (fsRow.sosync_write_date as Date).getTime(), 'and the same sosync_write_date');
  }
  if (row.job_source_type === 'delete' && end.value === 'synced') {
    const gone = row.job_source_system === 'fs' ? e.fso.store.get('res.company', row.sync_target_record_id ?? row.job_source_target_record_id ?? -1) : (await e.fs.rows('xBPKAccount', '[xBPKAccountID] = @id', { id: row.sync_target_record_id ?? -1 }))[0];
    assert.equal(gone, undefined, 'the counterpart is deleted');
  }
}

describe('job machine: model-based paths, run for real', { concurrency: false }, () => {
  let e: EndToEnd;
  before(async () => {
    e = await startEndToEnd('pglite', { inspect: recorder.inspect, faultRetryMs: 1000, protocolRetryMs: 1000, protocolGatherMs: PROTOCOL_GATHER_TEST_MS, driftLockMs: 2500, ini: ['outage_probe_interval_ms = 1000'] });
  });
  after(async () => { await e?.close(); });

  for (const path of paths) {
    it(`${path.id}: ${path.name}`, async () => {
      recorder.startPath();
      try {
        const sc = scenarioOf(jobModel, path, emptyJobScenario());
        const jobId = await arrange(e, sc, (path.state as any).context.direction?.source.system);
        const expected = statesAlong(path).filter((v, i, all) => v !== all[i - 1]);
        await until(() => recorder.jobRuns(jobId).some((r) => ['synced', 'error', 'requeued', 'aborted'].includes(r[r.length - 1])), `job ${jobId} to end`, 15_000);
        const rowAtEnd = (await e.service.table.store.getJob(jobId))!;
        const real = recorder.jobRuns(jobId)[0];
        assert.deepEqual(real.slice(-expected.length + 1), expected.slice(1), `the real job went through other states than the path (real: ${real.join(' → ')})`);
        await checkOutcome(e, path, sc, rowAtEnd);
        await clearFaults(e);
        await e.waitForJobs();
        if (path.state.value === 'requeued') assert.equal((await e.service.table.store.getJob(jobId))!.job_state, 'done', 'a requeued job is done by a later run');
      } catch (err) {
        await clearFaults(e).catch(() => undefined);
        await e.service.table.db.query(`UPDATE sync_table SET job_state = 'error', job_error_text = 'left by a failed model-based path' WHERE job_state IN ('new', 'inprogress')`).catch(() => undefined);
        const file = recorder.saveMessages(path.id);
        throw failedPath(err, path, file);
      }
    });
  }

  for (const { model, paths: list } of workerPaths) {
    for (const path of list.filter((p) => !stopsTheWorker(p))) {
      it(`${model.machine.id} ${path.id}: ${path.name}`, async () => {
        recorder.startPath();
        try {
          await e.waitForJobs();
          await until(() => ['idle'].includes(recorder.valuesOf(model.machine.id).at(-1) ?? 'idle'), `${model.machine.id} idle`, 10_000);
          await runWorkerPath(e, model, path);
        } catch (err) {
          const file = recorder.saveMessages(path.id);
          throw failedPath(err, path, file);
        } finally {
          await clearWorkerFaults(e);
          await e.get('/service/processjobs');
          await e.service.table.db.query(`UPDATE sync_table SET job_state = 'error', job_error_text = 'left by a model-based worker path' WHERE job_state IN ('new', 'inprogress', 'error_retry')`);
          await until(async () => ['idle', 'locked'].includes(recorder.valuesOf('supervisor').at(-1) ?? 'idle'), 'the supervisor to rest', 10_000).catch(() => undefined);
          if (recorder.valuesOf('supervisor').at(-1) === 'locked') await e.get('/service/forcedriftcheck');
          await e.waitForJobs();
        }
      });
    }
  }

  // STOP ends a worker for good: each such path gets a service of its own, after every other path
  // (the recorder follows the newest worker of each machine)
  for (const { model, paths: list } of workerPaths) {
    for (const path of list.filter(stopsTheWorker)) {
      it(`${model.machine.id} ${path.id}: ${path.name}`, async () => {
        recorder.startPath();
        const own = await startEndToEnd('pglite', {
          inspect: recorder.inspect, faultRetryMs: 1000, protocolRetryMs: 1000, protocolGatherMs: PROTOCOL_GATHER_TEST_MS, driftLockMs: 2500,
          ini: ['outage_probe_interval_ms = 1000', `throttle_ms = ${STOP_THROTTLE_MS}`],
        });
        try {
          await until(() => recorder.valuesOf(model.machine.id).at(-1) === 'idle', `${model.machine.id} of the new service idle`, 10_000);
          await runWorkerPath(own, model, path);
        } catch (err) {
          throw failedPath(err, path, recorder.saveMessages(path.id));
        } finally {
          await clearWorkerFaults(own).catch(() => undefined);
          await own.close();
        }
      });
    }
  }

  for (const model of [jobModel, supervisorModel, protocolModel] as Array<MachineModel<unknown>>) {
    it(`coverage gate: every state and guarded transition of the ${model.machine.id} machine was taken by a real run`, { skip: process.env.SOSYNC_MBT_PATH ? 'one path only' : false }, () => {
      const gaps = coverageGaps(model, recorder.taken.get(model.machine.id) ?? new Set(), recorder.reached.get(model.machine.id) ?? new Set());
      assert.deepEqual(gaps, [], `the ${model.machine.id} machine has parts no real run took:\n${gaps.join('\n')}`);
    });
  }
});
