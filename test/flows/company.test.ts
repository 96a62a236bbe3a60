/**
 * Company flow end to end (SPEC §6.1, §6.4): dbo.xBPKAccount ↔ res.company, both directions,
 * through the FS stand-in (TDS), the FSO stand-in (XML-RPC) and the running service.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertDone, jobDate, onlyNewJob, sameInstant, storeKinds, type EndToEnd, startEndToEnd,
} from '../support/endToEnd.ts';

for (const kind of storeKinds) {
  describe(`company flow end to end (sync table in ${kind})`, () => {
    let e: EndToEnd;
    before(async () => { e = await startEndToEnd(kind); });
    after(async () => { await e?.close(); });

    describe('FS → FSO', () => {
      let accountId: number;
      let companyId: number;

      it('create: a new xBPKAccount becomes a res.company, and each side learns the other id', async () => {
        const since = await e.lastJobId();
        const inserted = await e.fs.insert('xBPKAccount', { Name: 'Spendenverein Nord' });
        accountId = inserted.xBPKAccountID;
        await e.waitForJobs();

        const job = await onlyNewJob(e, since);
        assertDone(job);
        assert.equal(job.job_source_system, 'fs');
        assert.equal(job.job_source_model, 'dbo.xBPKAccount');
        assert.equal(job.job_source_record_id, accountId);
        assert.equal(job.sync_source_system, 'fs');
        assert.equal(job.sync_target_system, 'fso');
        assert.equal(job.sync_target_model, 'res.company');
        assert.match(job.job_log ?? '', /created res\.company \d+/);

        companyId = job.sync_target_record_id!;
        const company = e.fso.store.get('res.company', companyId)!;
        assert.equal(company.name, 'Spendenverein Nord');
        assert.equal(company.sosync_fs_id, accountId);
        const [row] = await e.fs.rows('xBPKAccount', '[xBPKAccountID] = @id', { id: accountId });
        assert.equal(row.sosync_fso_id, companyId);
        assert.ok(sameInstant(company.sosync_write_date, row.sosync_write_date), `${company.sosync_write_date} vs ${row.sosync_write_date}`);
        assert.equal(e.fso.store.all('res.company').length, 1);
      });

      it('update: a changed Name reaches res.company with the new sosync_write_date', async () => {
        const since = await e.lastJobId();
        await e.fs.query('UPDATE dbo.[xBPKAccount] SET [Name] = @name WHERE [xBPKAccountID] = @id;', { name: 'Spendenverein Nord-Ost', id: accountId });
        await e.waitForJobs();

        const job = await onlyNewJob(e, since);
        assertDone(job);
        assert.equal(job.sync_target_record_id, companyId);
        assert.equal(job.job_log, `updated res.company ${companyId}`);
        assert.match(job.sync_target_data_before ?? '', /Spendenverein Nord"/);
        const company = e.fso.store.get('res.company', companyId)!;
        assert.equal(company.name, 'Spendenverein Nord-Ost');
        const [row] = await e.fs.rows('xBPKAccount', '[xBPKAccountID] = @id', { id: accountId });
        assert.ok(sameInstant(company.sosync_write_date, row.sosync_write_date));
        assert.equal(e.fso.store.all('res.company').length, 1);
      });

      it('already up to date: a repeated announcement writes nothing', async () => {
        const [row] = await e.fs.rows('xBPKAccount', '[xBPKAccountID] = @id', { id: accountId });
        const before = e.fso.store.get('res.company', companyId)!;
        const since = await e.lastJobId();
        const answer = await e.announce({
          job_date: jobDate(), job_source_system: 'fs', job_source_model: 'dbo.xBPKAccount', job_source_record_id: accountId,
          job_source_sosync_write_date: row.sosync_write_date.toISOString(),
        });
        assert.equal(answer.status, 200);
        await e.waitForJobs();
        const job = await onlyNewJob(e, since);
        assertDone(job);
        assert.match(job.job_log ?? '', /model up to date/);
        assert.equal(job.sync_target_request, null);
        assert.deepEqual(e.fso.store.get('res.company', companyId), before);
      });

      it('delete: deleting the xBPKAccount unlinks res.company', async () => {
        const since = await e.lastJobId();
        await e.fs.query('DELETE FROM dbo.[xBPKAccount] WHERE [xBPKAccountID] = @id;', { id: accountId });
        await e.waitForJobs();

        const job = await onlyNewJob(e, since);
        assertDone(job);
        assert.equal(job.job_source_type, 'delete');
        assert.equal(job.job_log, `deleted res.company ${companyId}`);
        assert.match(job.sync_target_request ?? '', /<string>unlink<\/string>/);
        assert.equal(e.fso.store.exists('res.company', companyId), false);
      });
    });

    describe('FSO → FS', () => {
      let companyId: number;
      let accountId: number;

      it('create: a new res.company becomes an xBPKAccount, and sosync_fs_id is written back', async () => {
        const since = await e.lastJobId();
        companyId = e.fso.userCreate('res.company', { name: 'Stiftung Süd' });
        await e.waitForJobs();

        const job = await onlyNewJob(e, since);
        assertDone(job);
        assert.equal(job.job_source_system, 'fso');
        assert.equal(job.sync_target_system, 'fs');
        assert.equal(job.sync_target_model, 'dbo.xBPKAccount');
        accountId = job.sync_target_record_id!;
        assert.equal(job.job_log, `created dbo.xBPKAccount ${accountId}`);

        const [row] = await e.fs.rows('xBPKAccount', '[xBPKAccountID] = @id', { id: accountId });
        assert.equal(row.Name, 'Stiftung Süd');
        assert.equal(row.sosync_fso_id, companyId);
        const company = e.fso.store.get('res.company', companyId)!;
        assert.equal(company.sosync_fs_id, accountId);
        assert.ok(sameInstant(company.sosync_write_date, row.sosync_write_date));
        assert.equal((await e.fs.rows('xBPKAccount', '[sosync_fso_id] = @id', { id: companyId })).length, 1);
      });

      it('update: a renamed res.company renames the xBPKAccount', async () => {
        const since = await e.lastJobId();
        e.fso.userWrite('res.company', companyId, { name: 'Stiftung Süd-West' });
        await e.waitForJobs();

        const job = await onlyNewJob(e, since);
        assertDone(job);
        assert.equal(job.job_log, `updated dbo.xBPKAccount ${accountId}`);
        const [row] = await e.fs.rows('xBPKAccount', '[xBPKAccountID] = @id', { id: accountId });
        assert.equal(row.Name, 'Stiftung Süd-West');
        assert.ok(sameInstant(e.fso.store.get('res.company', companyId)!.sosync_write_date, row.sosync_write_date));
        assert.equal((await e.fs.rows('xBPKAccount')).length, 1);
      });

      it('already up to date: a repeated announcement writes nothing', async () => {
        const [before] = await e.fs.rows('xBPKAccount', '[xBPKAccountID] = @id', { id: accountId });
        const since = await e.lastJobId();
        await e.announce({ job_date: jobDate(), source_system: 'fso', source_model: 'res.company', source_record_id: companyId });
        await e.waitForJobs();
        const job = await onlyNewJob(e, since);
        assertDone(job);
        assert.match(job.job_log ?? '', /model up to date/);
        const [row] = await e.fs.rows('xBPKAccount', '[xBPKAccountID] = @id', { id: accountId });
        assert.deepEqual(row, before);
      });

      it('delete: unlinking res.company deletes the xBPKAccount', async () => {
        const since = await e.lastJobId();
        e.fso.userUnlink('res.company', companyId);
        await e.waitForJobs();

        const job = await onlyNewJob(e, since);
        assertDone(job);
        assert.equal(job.job_source_type, 'delete');
        assert.equal(job.job_log, `deleted dbo.xBPKAccount ${accountId}`);
        assert.equal(job.sync_target_answer, 'success');
        assert.deepEqual(await e.fs.rows('xBPKAccount', '[xBPKAccountID] = @id', { id: accountId }), []);
      });

      it('delete of a record that was never synced: nothing to do', async () => {
        const since = await e.lastJobId();
        await e.announce({ job_date: jobDate(), source_system: 'fso', source_model: 'res.company', source_record_id: 9999, job_source_type: 'delete' });
        await e.waitForJobs();
        const job = await onlyNewJob(e, since);
        assertDone(job);
        assert.match(job.job_log ?? '', /nothing to delete/);
      });
    });

    it('a failed FS link-back after the FSO write keeps its evidence like any other failed write', async () => {
      e.fsStandIn.engine.failStatements([{ match: 'UPDATE dbo.[xBPKAccount]', message: 'link refused (injected)' }]);
      try {
        const since = await e.lastJobId();
        await e.fs.insert('xBPKAccount', { Name: 'Ohne Rückverweis' });
        await e.waitForJobs();
        const job = await onlyNewJob(e, since);
        assert.equal(job.job_state, 'error');
        assert.match(job.job_error_text ?? '', /link refused \(injected\)/);
        assert.match(job.sync_target_answer ?? '', /link refused \(injected\)/);
        assert.equal(job.sync_target_request, '[]', 'the failed statement wrote no row');
      } finally {
        e.fsStandIn.engine.failStatements([]);
      }
    });
  });
}
