/**
 * Claim sessions of parallel workers (claims.ts) on a real PostgreSQL server: a claim passes over
 * rows another session is claiming (SKIP LOCKED) and jobs whose record another slot holds, a slot
 * waits for a record another slot holds, a deadlock fails one side transiently, a session that
 * dies lets its records go, and the jobs this process runs are passed over without locking their rows.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { ClaimSession, DEADLOCK_CHECK_MS, openSyncTable, RecordLockError, type OpenedSyncTable, type RecordKey } from '../../src/adapters/syncTable/index.ts';
import { failureTraits } from '../../src/adapters/failure.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('claim sessions of parallel workers (PostgreSQL)', () => {
  let database: TestDatabase;
  let table: OpenedSyncTable;
  const sessions: ClaimSession[] = [];
  const session = (name: string) => {
    const s = new ClaimSession(database.config, name);
    sessions.push(s);
    return s;
  };
  const at = new Date('2026-01-01T12:00:00Z');
  const announce = (recordId: number, minutesAgo: number, system: 'fs' | 'fso' = 'fs') =>
    table.store.createJob({
      job_date: new Date(at.getTime() - minutesAgo * 60_000), job_source_system: system,
      job_source_model: system === 'fs' ? 'dbo.Person' : 'res.partner', job_source_record_id: recordId,
    });

  before(async () => {
    database = await createTestDatabase('sosync_claims');
    table = await openSyncTable({ kind: 'postgres', ...database.config });
  });
  after(async () => {
    for (const s of sessions) await s.close();
    await table.db.close();
    await database.drop();
  });

  const clear = () => table.db.query('DELETE FROM sync_table');

  /** `waiter` locking `key` waits while `holder` holds it (`why`), gets it once `holder` lets go, and lets it go again */
  async function assertHeld(key: RecordKey, holder: ClaimSession, waiter: ClaimSession, why: string): Promise<void> {
    let got = false;
    const locked = waiter.lock(key).then((r) => { got = true; return r; });
    await sleep(300);
    assert.equal(got, false, why);
    await holder.releaseAll();
    assert.deepEqual(await locked, { waited: true });
    await waiter.releaseAll();
  }

  it('a job whose record another slot holds waits in the queue; the next record is claimed instead', async () => {
    await clear();
    const first = await announce(1, 1);
    const sameRecordLater = await announce(1, 2);
    const other = await announce(2, 3);
    const a = session('slot-a');
    const b = session('slot-b');
    assert.equal((await a.claim(at))?.job_id, first.job_id, 'slot a claims the first job in pick order');
    assert.equal((await b.claim(at))?.job_id, other.job_id, 'slot b passes over both jobs of record 1, which slot a holds');
    assert.equal(await session('slot-c').claim(at), null, 'a third slot finds nothing it may run');
    await a.releaseAll();
    await b.releaseAll();
    const next = await b.claim(at);
    assert.ok(next?.job_id === first.job_id || next?.job_id === sameRecordLater.job_id, 'once let go, record 1 is claimable again');
    await b.releaseAll();
  });

  it('a claim holds its record as a lock of the running job would: another slot locking that record waits', async () => {
    await clear();
    const job = await announce(60, 1, 'fso');
    const a = session('slot-claims-record');
    const b = session('slot-locks-record');
    assert.equal((await a.claim(at))?.job_id, job.job_id);
    await assertHeld({ system: 'fso', model: 'res.partner', id: 60 }, a, b, 'the record the claim took is held');
  });

  it('slots claiming at the same moment each get a job of their own', async () => {
    await clear();
    for (let record = 30; record < 34; record += 1) await announce(record, record);
    const slots = [1, 2, 3, 4].map((i) => session(`slot-same-${i}`));
    const claimed = await Promise.all(slots.map((s) => s.claim(at)));
    assert.deepEqual(claimed.map((j) => j?.job_source_record_id).sort(), [30, 31, 32, 33], 'four jobs, four records, no slot left empty-handed');
    for (const s of slots) await s.releaseAll();
  });

  it('with nothing held, a claim takes the job the single worker would pick (SPEC §4.1 order)', async () => {
    const s = session('slot-order');
    const cases: Array<Array<{ minutesAgo: number; priority?: number; state?: 'inprogress' | 'error_retry'; retryDue?: boolean }>> = [
      [{ minutesAgo: 5 }, { minutesAgo: 1 }, { minutesAgo: 3 }],
      [{ minutesAgo: 1 }, { minutesAgo: 9, priority: 2000 }],
      [{ minutesAgo: 1, priority: 9000 }, { minutesAgo: 30, state: 'inprogress' }],
      [{ minutesAgo: 10 }, { minutesAgo: 2, state: 'error_retry', retryDue: true }],
      [{ minutesAgo: 1 }, { minutesAgo: 2, state: 'error_retry', retryDue: false }],
    ];
    for (const jobs of cases) {
      await clear();
      for (const [i, j] of jobs.entries()) {
        const row = await table.store.createJob({
          job_date: new Date(at.getTime() - j.minutesAgo * 60_000), job_priority: j.priority,
          job_source_system: 'fs', job_source_model: 'dbo.Person', job_source_record_id: 100 + i,
        });
        if (j.state) {
          await table.store.updateJob(row.job_id, { job_state: j.state, job_retry_at: j.state === 'error_retry' ? new Date(at.getTime() + (j.retryDue ? -1000 : 60_000)) : null });
        }
      }
      const single = await table.store.pickNextJob(at);
      const claimed = await s.claim(at);
      assert.equal(claimed?.job_id, single?.job_id, `same pick for ${JSON.stringify(jobs)}`);
      await s.releaseAll();
    }
  });

  it('a row another session is claiming is passed over, not waited for (SKIP LOCKED)', async () => {
    await clear();
    const locked = await announce(10, 1);
    const free = await announce(11, 2);
    const other = new pg.Client(database.config);
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query('SELECT job_id FROM sync_table WHERE job_id = $1 FOR UPDATE', [locked.job_id]);
      const claim = session('slot-skip').claim(at);
      const waited = Symbol('waited');
      const got = await Promise.race([claim, sleep(5000).then(() => waited)]);
      assert.notEqual(got, waited, 'the claim waited for a row another session held');
      assert.equal((got as Awaited<typeof claim>)?.job_id, free.job_id);
    } finally {
      await other.query('ROLLBACK').catch(() => undefined);
      await other.end();
    }
  });

  it('jobs the other slots of this process run are passed over unread: the claim never locks their rows', async () => {
    await clear();
    const running = await announce(40, 1);
    const next = await announce(41, 2);
    const a = session('slot-running');
    assert.equal((await a.claim(at, []))?.job_id, running.job_id);
    // the job starts (its row is written anew, as startJob does): nothing has locked this version yet
    await table.store.updateJob(running.job_id, { job_state: 'inprogress' });
    const lockedBy = async () => (await table.db.query<{ xmax: string }>('SELECT xmax::text AS xmax FROM sync_table WHERE job_id = $1', [running.job_id])).rows[0].xmax;
    assert.equal(await lockedBy(), '0');
    const b = session('slot-next');
    assert.equal((await b.claim(at, [running.job_id]))?.job_id, next.job_id, 'slot b claims the next job');
    // a FOR UPDATE leaves its transaction in the row's xmax: while it holds the row, the running
    // job's own writes to it wait
    assert.equal(await lockedBy(), '0', 'the claim did not lock the running job\'s row');
    await a.releaseAll();
    await b.releaseAll();
  });

  /** the statements sessions named `name` send while `work` runs (heartbeats left out) */
  async function statementsOf(name: string, work: () => Promise<void>): Promise<string[]> {
    const texts: string[] = [];
    const original = pg.Client.prototype.query;
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      const config = args[0] as string | { text?: string };
      const text = typeof config === 'string' ? config : config?.text ?? '';
      if ((this as unknown as { connectionParameters: { application_name?: string } }).connectionParameters.application_name === `sosync ${name}` && text !== 'SELECT 1') texts.push(text);
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof original;
    try {
      await work();
    } finally {
      pg.Client.prototype.query = original;
    }
    return texts;
  }

  it('a claim right after releaseSoon lets the ended job\'s records go in its own round trip', async () => {
    await clear();
    const ended = await announce(50, 1);
    const next = await announce(51, 2);
    const a = session('slot-fold');
    assert.equal((await a.claim(at))?.job_id, ended.job_id);
    await table.store.updateJob(ended.job_id, { job_state: 'done' });
    let claimed: Awaited<ReturnType<ClaimSession['claim']>> = null;
    const sent = await statementsOf('slot-fold', async () => {
      const released = a.releaseSoon();
      claimed = await a.claim(at);
      await released;
    });
    assert.equal(claimed!.job_id, next.job_id);
    assert.equal(sent.length, 1, `one statement, not ${JSON.stringify(sent)}`);
    assert.match(sent[0], /sosync_claim_job/);
    const b = session('slot-after-fold');
    assert.deepEqual(await b.lock({ system: 'fs', model: 'dbo.Person', id: 50 }), { waited: false }, 'the ended job\'s record is free');
    await b.releaseAll();
    await a.releaseAll();
  });

  it('releaseSoon with no claim in the same turn lets the records go on its own', async () => {
    await clear();
    await announce(52, 1);
    const a = session('slot-idle-release');
    assert.ok(await a.claim(at));
    const sent = await statementsOf('slot-idle-release', () => a.releaseSoon());
    assert.deepEqual(sent, ['SELECT pg_advisory_unlock_all()']);
    const b = session('slot-after-idle');
    assert.deepEqual(await b.lock({ system: 'fs', model: 'dbo.Person', id: 52 }), { waited: false });
    await b.releaseAll();
  });

  it('a claim that takes the next job of the same record holds that record: the claim lets go before it locks', async () => {
    await clear();
    const first = await announce(53, 1);
    const second = await announce(53, 2);
    const a = session('slot-same-record');
    assert.equal((await a.claim(at))?.job_id, first.job_id);
    await table.store.updateJob(first.job_id, { job_state: 'done' });
    void a.releaseSoon();
    assert.equal((await a.claim(at))?.job_id, second.job_id, 'the same slot takes the record\'s next job');
    const b = session('slot-wants-record');
    await assertHeld({ system: 'fs', model: 'dbo.Person', id: 53 }, a, b, 'the record of the claimed job is held');
  });

  it('the prepared claim still claims after the table gained or lost a column', async () => {
    await clear();
    const job = await announce(54, 1);
    const a = session('slot-columns');
    assert.equal((await a.claim(at))?.job_id, job.job_id, 'prepared before the change');
    await a.releaseAll();
    await table.db.query('ALTER TABLE sync_table ADD COLUMN claim_test_extra integer');
    try {
      assert.equal((await a.claim(at))?.job_id, job.job_id, 'after a column was added');
      await a.releaseAll();
    } finally {
      await table.db.query('ALTER TABLE sync_table DROP COLUMN claim_test_extra');
    }
    assert.equal((await a.claim(at))?.job_id, job.job_id, 'after a column was dropped');
    await a.releaseAll();
  });

  it('a slot waits for a record another slot holds, and says it waited', async () => {
    await clear();
    const a = session('slot-wait-a');
    const b = session('slot-wait-b');
    const key = { system: 'fso' as const, model: 'res.partner', id: 77 };
    assert.deepEqual(await a.lock(key), { waited: false });
    await assertHeld(key, a, b, 'slot b has the record while slot a still holds it');
  });

  it('two slots waiting for each other\'s record: PostgreSQL ends the deadlock, one side fails transiently', async () => {
    await clear();
    const a = session('slot-dl-a');
    const b = session('slot-dl-b');
    const fs = { system: 'fs' as const, model: 'dbo.Person', id: 5 };
    const fso = { system: 'fso' as const, model: 'res.partner', id: 12 };
    await a.lock(fs);
    await b.lock(fso);
    // as a job that failed does, the side that lost lets its records go; the other then gets them
    const lose = (slot: ClaimSession) => async (err: unknown) => { await slot.releaseAll(); throw err; };
    const results = await Promise.allSettled([a.lock(fso).catch(lose(a)), b.lock(fs).catch(lose(b))]);
    const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    assert.equal(failed.length, 1, `exactly one side is chosen to fail: ${results.map((r) => (r.status === 'rejected' ? String(r.reason) : JSON.stringify(r.value))).join(' | ')}`);
    const error = failed[0].reason as Error;
    assert.ok(error instanceof RecordLockError, String(error));
    assert.match(error.message, /deadlock/);
    assert.equal(failureTraits(error)?.transient, true, 'the job that lost runs again later (error_retry)');
    await a.releaseAll();
    await b.releaseAll();
  });

  it('a slot looks for a deadlock after DEADLOCK_CHECK_MS when its role may set deadlock_timeout; a role that may not still locks', async () => {
    const a = session('slot-deadlock-check');
    await a.lock({ system: 'fs', model: 'dbo.Person', id: 31 });
    assert.equal(a.deadlockCheckMs, DEADLOCK_CHECK_MS, 'the test role is a superuser');
    const admin = new pg.Client(database.config);
    await admin.connect();
    const role = `sosync_plain_${process.pid}`;
    try {
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.query(`CREATE ROLE ${role} LOGIN`);
      const plain = new ClaimSession({ ...database.config, user: role }, 'slot-plain-role');
      try {
        assert.deepEqual(await plain.lock({ system: 'fs', model: 'dbo.Person', id: 32 }), { waited: false });
        const { rows: [server] } = await admin.query<{ setting: string }>(`SELECT setting FROM pg_settings WHERE name = 'deadlock_timeout'`);
        assert.equal(plain.deadlockCheckMs, Number(server.setting), 'the server\'s deadlock_timeout holds');
        assert.notEqual(plain.deadlockCheckMs, DEADLOCK_CHECK_MS);
      } finally {
        await plain.close();
      }
    } finally {
      await admin.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
      await admin.end();
      await a.releaseAll();
    }
  });

  it('a session that dies lets its records go', async () => {
    await clear();
    const job = await announce(20, 1);
    const a = session('slot-dies');
    assert.equal((await a.claim(at))?.job_id, job.job_id);
    const b = session('slot-survives');
    assert.equal(await b.claim(at), null, 'held by slot-dies');
    const admin = new pg.Client(database.config);
    await admin.connect();
    try {
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'sosync slot-dies'`);
    } finally {
      await admin.end();
    }
    let claimed = null;
    for (let i = 0; i < 50 && !claimed; i += 1) {
      claimed = await b.claim(at);
      if (!claimed) await sleep(100);
    }
    assert.equal(claimed?.job_id, job.job_id, 'the job is claimed again once its session is gone');
    await b.releaseAll();
  });
});
