/**
 * What holds across the flows, end to end: the loop guard (one change → one job, no echo), the
 * newer side wins when both changed between two passes, an earlier interrupted run never leads to
 * a second create, and the evidence a job row keeps (raw XML-RPC without the password; FS rows and
 * "success").
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertDone, describeJobs, E2E_PASSWORD, jobDate, onlyNewJob, sameInstant, storeKinds, type EndToEnd, startEndToEnd,
} from '../support/endToEnd.ts';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Holds the job worker between two passes: a clock that disagrees locks synchronisation (SPEC §4.4). */
async function lockSync(e: EndToEnd): Promise<void> {
  e.ntp.setOffsetMs(120_000);
  await e.get('/service/forcedriftcheck');
}

async function waitForLock(e: EndToEnd): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const status = await e.get('/service/status');
    if (status.json?.job_worker?.drift_locked === true) return;
    await sleep(20);
  }
  throw new Error('synchronisation did not lock');
}

async function unlockSync(e: EndToEnd): Promise<void> {
  e.ntp.setOffsetMs(0);
  await e.get('/service/forcedriftcheck');
}

for (const kind of storeKinds) {
  describe(`sync behaviour end to end (sync table in ${kind})`, () => {
    let e: EndToEnd;
    before(async () => { e = await startEndToEnd(kind); });
    after(async () => { await e?.close(); });

    describe('loop guard', () => {
      it('an FS change makes exactly one job; sosync\'s writes to FSO and the id write-back to FS announce nothing', async () => {
        const announcedByFso = e.fso.announcements().length;
        const since = await e.lastJobId();
        // one FS transaction over two tables: one change of one person
        const personId = await e.fs.transaction(async (q) => {
          const person = await e.fs.insert('Person', { PersontypID: 101, Vorname: 'Lena', Name: 'Loop' }, q);
          await e.fs.insert('PersonEmail', { PersonID: person.PersonID, EmailVor: 'lena', EmailNach: 'example.org', GültigVon: '2020-01-01', GültigBis: '2099-12-31' }, q);
          return person.PersonID as number;
        });
        await e.waitForJobs();
        const job = await onlyNewJob(e, since);
        assertDone(job);
        assert.equal(job.job_source_record_id, personId);
        assert.equal(e.fso.announcements().length, announcedByFso, 'FSO announced nothing');
        assert.equal(await e.fsStandIn.engine.pendingAnnouncements(), 0);
        const partners = e.fso.store.all('res.partner').filter((p) => p.sosync_fs_id === personId);
        assert.deepEqual(partners.map((p) => p.email), ['lena@example.org']);
        // the id write-back touched every FS row of the stack, without a word to sosync
        const rows = [...await e.fs.rows('Person', '[PersonID] = @id', { id: personId }), ...await e.fs.rows('PersonEmail', '[PersonID] = @id', { id: personId })];
        assert.ok(rows.every((r) => r.sosync_fso_id === partners[0].id));
      });

      it('an FSO change makes exactly one job; sosync\'s FS rows and the sosync_fs_id write-back announce nothing', async () => {
        const announcedByFso = e.fso.announcements().length;
        const since = await e.lastJobId();
        const partnerId = e.fso.userCreate('res.partner', { firstname: 'Leo', lastname: 'Loop', email: 'leo@example.org', phone: '0664 1', newsletter_web: true });
        await e.waitForJobs();
        const job = await onlyNewJob(e, since);
        assertDone(job);
        assert.equal(e.fso.announcements().length, announcedByFso + 1, 'only the user\'s change was announced');
        assert.ok(e.fso.announcements().every((a) => a.delivered));
        assert.equal(e.fso.store.get('res.partner', partnerId)!.sosync_fs_id, job.sync_target_record_id);
        // and again after a later look at the FS outbox: nothing arrives
        await e.fsStandIn.engine.flushAnnouncements();
        assert.equal((await e.jobsAfter(since)).length, 1);
      });
    });

    describe('both systems changed between two passes', () => {
      let accountId: number;
      let companyId: number;

      before(async () => {
        const since = await e.lastJobId();
        accountId = (await e.fs.insert('xBPKAccount', { Name: 'Zwei Seiten' })).xBPKAccountID;
        await e.waitForJobs();
        companyId = (await onlyNewJob(e, since)).sync_target_record_id!;
      });
      after(() => unlockSync(e));

      it('FS first, FSO later: the FSO change wins on both sides', async () => {
        await lockSync(e);
        const since = await e.lastJobId();
        await e.fs.query('UPDATE dbo.[xBPKAccount] SET [Name] = @n WHERE [xBPKAccountID] = @id;', { n: 'geändert in FS', id: accountId });
        await e.fsStandIn.engine.flushAnnouncements();
        await waitForLock(e);
        await sleep(5); // FSO's stamp must be later than FS's
        e.fso.userWrite('res.company', companyId, { name: 'geändert in FSO' });
        await e.fso.flushAnnouncements();
        const held = await e.jobsAfter(since);
        assert.deepEqual(held.map((j) => j.job_state), ['new', 'new'], describeJobs(held));

        await unlockSync(e);
        await e.waitForJobs();
        const [fsJob, fsoJob] = await e.jobsAfter(since);
        assertDone(fsJob);
        assertDone(fsoJob);
        assert.equal(fsJob.job_source_system, 'fs');
        // the newer announcement runs first (SPEC §4.1): FSO's job syncs, FS's then finds both equal
        assert.ok(fsoJob.job_start! < fsJob.job_start!, 'the newer announcement ran first');
        assert.equal(fsoJob.sync_source_system, 'fso', 'FSO holds the newer change: FSO is the source');
        assert.equal(fsoJob.sync_target_record_id, accountId);
        assert.match(fsJob.job_log ?? '', /model up to date/);
        const [row] = await e.fs.rows('xBPKAccount', '[xBPKAccountID] = @id', { id: accountId });
        const company = e.fso.store.get('res.company', companyId)!;
        assert.equal(row.Name, 'geändert in FSO');
        assert.equal(company.name, 'geändert in FSO');
        assert.ok(sameInstant(company.sosync_write_date, row.sosync_write_date));
      });

      it('FSO first, FS later: the FS change wins on both sides', async () => {
        await lockSync(e);
        const since = await e.lastJobId();
        e.fso.userWrite('res.company', companyId, { name: 'zuerst FSO' });
        await e.fso.flushAnnouncements();
        await waitForLock(e);
        await sleep(5);
        await e.fs.query('UPDATE dbo.[xBPKAccount] SET [Name] = @n WHERE [xBPKAccountID] = @id;', { n: 'danach FS', id: accountId });
        await e.fsStandIn.engine.flushAnnouncements();
        const held = await e.jobsAfter(since);
        assert.deepEqual(held.map((j) => j.job_state), ['new', 'new'], describeJobs(held));

        await unlockSync(e);
        await e.waitForJobs();
        const [fsoJob, fsJob] = await e.jobsAfter(since);
        assertDone(fsoJob);
        assertDone(fsJob);
        assert.equal(fsoJob.job_source_system, 'fso');
        // the newer announcement runs first (SPEC §4.1): FS's job syncs, FSO's then finds both equal
        assert.ok(fsJob.job_start! < fsoJob.job_start!, 'the newer announcement ran first');
        assert.equal(fsJob.sync_source_system, 'fs', 'FS holds the newer change: FS is the source');
        assert.match(fsoJob.job_log ?? '', /model up to date/);
        const [row] = await e.fs.rows('xBPKAccount', '[xBPKAccountID] = @id', { id: accountId });
        assert.equal(row.Name, 'danach FS');
        assert.equal(e.fso.store.get('res.company', companyId)!.name, 'danach FS');
      });
    });

    describe('no duplicate creates after an interrupted run', () => {
      it('FS → FSO: a res.company an earlier run created (sosync_fs_id set, id never written back) is updated', async () => {
        const url = `${e.base}/job/create`;
        e.fsStandIn.engine.setAnnounceUrl(undefined);
        let accountId: number;
        try {
          accountId = (await e.fs.insert('xBPKAccount', { Name: 'Halb fertig' })).xBPKAccountID;
        } finally {
          e.fsStandIn.engine.setAnnounceUrl(url);
        }
        // the earlier run got as far as FSO (with an older state of the record)
        const planted = e.fso.store.create('res.company', { name: 'Halb', sosync_fs_id: accountId, sosync_write_date: new Date(Date.now() - 3_600_000).toISOString() });
        const since = await e.lastJobId();
        await e.waitForJobs();
        const job = await onlyNewJob(e, since);
        assertDone(job);
        assert.equal(job.job_log, `updated res.company ${planted}`);
        assert.deepEqual(e.fso.store.all('res.company').filter((c) => c.sosync_fs_id === accountId).map((c) => [c.id, c.name]), [[planted, 'Halb fertig']]);
        const [row] = await e.fs.rows('xBPKAccount', '[xBPKAccountID] = @id', { id: accountId });
        assert.equal(row.sosync_fso_id, planted);
      });

      it('FSO → FS: a person an earlier run created (sosync_fso_id set) is updated, not created again', async () => {
        const partnerId = e.fso.store.create('res.partner', { firstname: 'Ida', lastname: 'Interrupted', sosync_write_date: new Date().toISOString() });
        // sosync's own earlier write (noSyncJobSwitch = 1: FS announces nothing), from an older state
        const planted = await e.fs.insert('Person', {
          PersontypID: 101, Vorname: 'Ida', Name: 'Unterbrochen', sosync_fso_id: partnerId,
          sosync_write_date: new Date(Date.now() - 3_600_000), noSyncJobSwitch: true,
        });
        const persons = (await e.fs.rows('Person')).length;
        const since = await e.lastJobId();
        await e.announce({ job_date: jobDate(), source_system: 'fso', source_model: 'res.partner', source_record_id: partnerId });
        await e.waitForJobs();
        const job = await onlyNewJob(e, since);
        assertDone(job);
        assert.equal(job.job_log, `updated dbo.Person ${planted.PersonID}`);
        assert.equal((await e.fs.rows('Person')).length, persons);
        const [person] = await e.fs.rows('Person', '[PersonID] = @id', { id: planted.PersonID });
        assert.equal(person.Name, 'Interrupted');
        assert.equal(e.fso.store.get('res.partner', partnerId)!.sosync_fs_id, planted.PersonID);
      });

      it('FS → FSO: a target an earlier run wrote with the very stamp of the source is not created again', async () => {
        const url = `${e.base}/job/create`;
        e.fsStandIn.engine.setAnnounceUrl(undefined);
        let row: Record<string, any>;
        try {
          row = await e.fs.insert('xBPKAccount', { Name: 'Gleichstand' });
        } finally {
          e.fsStandIn.engine.setAnnounceUrl(url);
        }
        // the earlier run created the FSO record completely and stopped before writing its id back to FS
        const planted = e.fso.store.create('res.company', { name: 'Gleichstand', sosync_fs_id: row.xBPKAccountID, sosync_write_date: row.sosync_write_date.toISOString() });
        const since = await e.lastJobId();
        await e.waitForJobs();
        const job = await onlyNewJob(e, since);
        assertDone(job);
        assert.deepEqual(e.fso.store.all('res.company').filter((c) => c.sosync_fs_id === row.xBPKAccountID).map((c) => c.id), [planted]);
        // equal stamps but a half-made link: the job updates the planted record to finish the link
        assert.match(job.job_log ?? '', new RegExp(`updated res.company ${planted}`));
      });

      it('FS → FSO: after that equal-stamp job, the FS row knows its FSO id', async () => {
        const [row] = await e.fs.rows('xBPKAccount', '[Name] = @n', { n: 'Gleichstand' });
        const [company] = e.fso.store.all('res.company').filter((c) => c.sosync_fs_id === row.xBPKAccountID);
        assert.equal(row.sosync_fso_id, company.id);
      });
    });

    describe('evidence on the job row', () => {
      it('FSO target: the raw XML-RPC request and answer, with *** for the password', async () => {
        const since = await e.lastJobId();
        const accountId = (await e.fs.insert('xBPKAccount', { Name: 'Beweis' })).xBPKAccountID;
        await e.waitForJobs();
        const created = await onlyNewJob(e, since);
        await e.fs.query('UPDATE dbo.[xBPKAccount] SET [Name] = @n WHERE [xBPKAccountID] = @id;', { n: 'Beweis 2', id: accountId });
        await e.waitForJobs();
        const updated = await onlyNewJob(e, created.job_id);
        for (const [job, method] of [[created, 'create'], [updated, 'write']] as const) {
          assertDone(job);
          const request = job.sync_target_request ?? '';
          assert.match(request, /^<\?xml version="1\.0"\?><methodCall><methodName>execute_kw<\/methodName>/);
          assert.ok(request.includes(`<string>${method}</string>`), request);
          assert.ok(request.includes('<string>***</string>'), 'the password slot shows ***');
          assert.match(request, /<name>create_sync_job<\/name><value><boolean>0<\/boolean>/);
          assert.match(job.sync_target_answer ?? '', /^<\?xml version="1\.0"\?><methodResponse><params>/);
          assert.ok(job.sync_start && job.sync_end && job.sync_start <= job.sync_end);
          assert.equal(JSON.parse(job.sync_source_data!).xBPKAccountID, accountId);
        }
        assert.equal(updated.sync_target_data_before && JSON.parse(updated.sync_target_data_before).name, 'Beweis');
      });

      it('FS target: the written rows and "success"', async () => {
        const since = await e.lastJobId();
        const companyId = e.fso.userCreate('res.company', { name: 'Zeile' });
        await e.waitForJobs();
        const job = await onlyNewJob(e, since);
        assertDone(job);
        assert.equal(job.sync_target_answer, 'success');
        const written = JSON.parse(job.sync_target_request!);
        assert.equal(written.length, 1);
        assert.equal(written[0].table, 'dbo.xBPKAccount');
        assert.equal(written[0].action, 'insert');
        assert.equal(written[0].id, job.sync_target_record_id);
        assert.equal(written[0].values.Name, 'Zeile');
        assert.equal(written[0].values.sosync_fso_id, companyId);
        assert.equal(written[0].values.noSyncJobSwitch, true);
        assert.equal(JSON.parse(job.sync_source_data!).name, 'Zeile');
      });

      it('the password appears in no job row and in no protocol copy in FSO', async () => {
        await e.waitForJobs();
        const secret = E2E_PASSWORD.slice(-8);
        const rows = await e.jobs();
        assert.ok(rows.length > 10);
        for (const row of rows) assert.ok(!JSON.stringify(row).includes(secret), `job ${row.job_id} holds the password`);
        assert.ok(!JSON.stringify(e.fso.store.all('sosync.job')).includes(secret));
      });
    });
  });
}
