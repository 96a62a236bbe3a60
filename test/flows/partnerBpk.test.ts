/**
 * Partner bPK flow end to end (SPEC §6.3, §6.4): res.partner.bpk → dbo.PersonBPK with its two child
 * jobs (company and partner first); FS → FSO ends as a clear job error.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertDone, describeJobs, jobDate, sameInstant, storeKinds, type EndToEnd, startEndToEnd,
} from '../support/endToEnd.ts';

const bpkValues = {
  BPKPrivate: 'PRIV-123', BPKPublic: 'PUB-456',
  BPKRequestFirstname: 'Maria', BPKRequestLastname: 'Muster', BPKRequestBirthdate: '1980-05-17', BPKRequestZIP: '1010',
  BPKRequestDate: '2024-03-01 10:20:30', BPKRequestData: '<request/>', BPKResponseData: '<response/>',
  BPKErrorRequestDate: '2024-02-01 09:00:00', BPKErrorRequestData: '<error-request/>', BPKErrorResponseData: '<error-response/>',
  BPKErrorRequestFirstname: 'Mria', BPKErrorRequestLastname: 'Mustr', BPKErrorRequestBirthdate: '1980-05-16', BPKErrorRequestZIP: '1011',
  BPKErrorCode: 'F230', BPKErrorText: 'Person nicht gefunden',
};

for (const kind of storeKinds) {
  describe(`partner bPK flow end to end (sync table in ${kind})`, () => {
    let e: EndToEnd;
    let companyId: number;
    let partnerId: number;
    let bpkId: number;
    let personBpkId: number;
    before(async () => {
      e = await startEndToEnd(kind);
      // company and partner exist in FSO only, never announced: the bPK's child jobs must create them in FS
      const stamp = new Date(Date.now() - 60_000).toISOString();
      companyId = e.fso.store.create('res.company', { name: 'bPK Verein', sosync_write_date: stamp });
      partnerId = e.fso.store.create('res.partner', { firstname: 'Maria', lastname: 'Muster', birthdate_web: '1980-05-17', sosync_write_date: stamp });
    });
    after(async () => { await e?.close(); });

    it('FSO → FS create: the company and the partner are synced first by child jobs, then the bPK references them', async () => {
      const since = await e.lastJobId();
      bpkId = e.fso.userCreate('res.partner.bpk', { BPKRequestPartnerID: partnerId, BPKRequestCompanyID: companyId, ...bpkValues });
      await e.waitForJobs();

      const rows = await e.jobsAfter(since);
      assert.equal(rows.length, 3, describeJobs(rows));
      const [root, ...children] = rows;
      assertDone(root);
      assert.equal(root.parent_job_id, null);
      assert.equal(root.job_source_model, 'res.partner.bpk');
      assert.ok(root.child_job_start && root.child_job_end, 'child job times recorded');
      assert.deepEqual(children.map((c) => [c.parent_job_id, c.job_source_system, c.job_source_model, c.job_source_record_id, c.job_state]), [
        [root.job_id, 'fso', 'res.company', companyId, 'done'],
        [root.job_id, 'fso', 'res.partner', partnerId, 'done'],
      ]);
      const accountId = children[0].sync_target_record_id!;
      const personId = children[1].sync_target_record_id!;
      assert.equal(children[0].job_log, `created dbo.xBPKAccount ${accountId}`);
      assert.equal(children[1].job_log, `created dbo.Person ${personId}`);

      personBpkId = root.sync_target_record_id!;
      assert.equal(root.job_log, `created dbo.PersonBPK ${personBpkId}`);
      const [row] = await e.fs.rows('PersonBPK', '[PersonBPKID] = @id', { id: personBpkId });
      const bpk = e.fso.store.get('res.partner.bpk', bpkId)!;
      assert.deepEqual(strip(row), {
        PersonBPKID: personBpkId, PersonID: personId, xBPKAccountID: accountId,
        Anlagedatum: odooUtc(bpk.create_date as string),
        BPKPrivat: 'PRIV-123', BPKOeffentlich: 'PUB-456', Vorname: 'Maria', Nachname: 'Muster', Geburtsdatum: '1980-05-17',
        PositivAmUm: new Date('2024-03-01T10:20:30Z'), PositivDaten: '<response/>',
        FehlerAmUm: new Date('2024-02-01T09:00:00Z'), FehlerDaten: '<error-request/>', FehlerAntwortDaten: '<error-response/>',
        FehlerVorname: 'Mria', FehlerNachname: 'Mustr', FehlerGeburtsdatum: '1980-05-16', FehlerCode: 'F230', FehlerText: 'Person nicht gefunden',
        sosync_fso_id: bpkId,
      });
      assert.ok(sameInstant(bpk.sosync_write_date, row.sosync_write_date));
      assert.equal(bpk.sosync_fs_id, personBpkId);
      assert.equal(e.fso.store.get('res.company', companyId)!.sosync_fs_id, accountId);
      assert.equal(e.fso.store.get('res.partner', partnerId)!.sosync_fs_id, personId);
      const [person] = await e.fs.rows('Person', '[PersonID] = @id', { id: personId });
      assert.deepEqual([person.Vorname, person.Name, person.sosync_fso_id], ['Maria', 'Muster', partnerId]);
    });

    it('FSO → FS update: the changed bPK fields reach the same PersonBPK row', async () => {
      const since = await e.lastJobId();
      e.fso.userWrite('res.partner.bpk', bpkId, { BPKPrivate: 'PRIV-789', BPKErrorCode: false, BPKErrorText: false });
      await e.waitForJobs();
      const rows = await e.jobsAfter(since);
      const roots = rows.filter((r) => r.parent_job_id === null);
      assert.equal(roots.length, 1, describeJobs(rows));
      assert.ok(rows.every((r) => r.job_state === 'done'), describeJobs(rows));
      // the children find company and partner already in step
      assert.ok(rows.filter((r) => r.parent_job_id !== null).every((r) => /model up to date/.test(r.job_log ?? '')), describeJobs(rows));
      assert.equal(roots[0].job_log, `updated dbo.PersonBPK ${personBpkId}`);
      const [row] = await e.fs.rows('PersonBPK', '[PersonBPKID] = @id', { id: personBpkId });
      assert.deepEqual([row.BPKPrivat, row.FehlerCode, row.FehlerText, row.BPKOeffentlich], ['PRIV-789', null, null, 'PUB-456']);
      assert.equal((await e.fs.rows('PersonBPK')).length, 1);
      assert.equal((await e.fs.rows('xBPKAccount')).length, 1);
      assert.equal((await e.fs.rows('Person')).length, 1);
    });

    it('already up to date: a repeated announcement writes nothing', async () => {
      const [before] = await e.fs.rows('PersonBPK', '[PersonBPKID] = @id', { id: personBpkId });
      const since = await e.lastJobId();
      await e.announce({ job_date: jobDate(), source_system: 'fso', source_model: 'res.partner.bpk', source_record_id: bpkId });
      await e.waitForJobs();
      const rows = await e.jobsAfter(since);
      assert.equal(rows.length, 1, describeJobs(rows));
      assertDone(rows[0]);
      assert.match(rows[0].job_log ?? '', /model up to date/);
      assert.deepEqual((await e.fs.rows('PersonBPK', '[PersonBPKID] = @id', { id: personBpkId }))[0], before);
    });

    it('already up to date, announced by FS: done without writing', async () => {
      const before = e.fso.store.get('res.partner.bpk', bpkId);
      const since = await e.lastJobId();
      await e.announce({ job_date: jobDate(), job_source_system: 'fs', job_source_model: 'dbo.PersonBPK', job_source_record_id: personBpkId });
      await e.waitForJobs();
      const rows = await e.jobsAfter(since);
      assert.equal(rows.length, 1, describeJobs(rows));
      assertDone(rows[0]);
      assert.match(rows[0].job_log ?? '', /model up to date/);
      assert.deepEqual(e.fso.store.get('res.partner.bpk', bpkId), before);
    });

    it('FS → FSO create is refused too: a PersonBPK made in FS does not reach FSO', async () => {
      const [person] = await e.fs.rows('Person');
      const [account] = await e.fs.rows('xBPKAccount');
      const bpks = e.fso.store.all('res.partner.bpk').length;
      const since = await e.lastJobId();
      const row = await e.fs.insert('PersonBPK', { PersonID: person.PersonID, xBPKAccountID: account.xBPKAccountID, BPKPrivat: 'NUR-FS' });
      await e.waitForJobs();
      const rows = await e.jobsAfter(since);
      assert.equal(rows.length, 1, describeJobs(rows));
      assert.equal(rows[0].job_state, 'error');
      assert.match(rows[0].job_error_text ?? '', new RegExp(`dbo\\.PersonBPK ${row.PersonBPKID} .*FSO to FS only`));
      assert.equal(e.fso.store.all('res.partner.bpk').length, bpks);
      await e.fs.query('DELETE FROM dbo.[PersonBPK] WHERE [PersonBPKID] = @id;', { id: row.PersonBPKID });
      await e.waitForJobs();
    });

    it('FS → FSO is refused: the job ends with a clear error and FSO stays as it was', async () => {
      const before = e.fso.store.get('res.partner.bpk', bpkId);
      const since = await e.lastJobId();
      await e.fs.query('UPDATE dbo.[PersonBPK] SET [BPKPrivat] = @v WHERE [PersonBPKID] = @id;', { v: 'CHANGED-IN-FS', id: personBpkId });
      await e.waitForJobs();
      const rows = await e.jobsAfter(since);
      assert.equal(rows.length, 1, describeJobs(rows));
      const [job] = rows;
      assert.equal(job.job_source_system, 'fs');
      assert.equal(job.job_state, 'error');
      assert.equal(job.job_error_code, 'transformation');
      assert.match(job.job_error_text ?? '', /FSO to FS only/);
      assert.deepEqual(e.fso.store.get('res.partner.bpk', bpkId), before);
    });

    it('FSO → FS delete: unlinking the bPK deletes the PersonBPK row, not its person or account', async () => {
      const since = await e.lastJobId();
      e.fso.userUnlink('res.partner.bpk', bpkId);
      await e.waitForJobs();
      const rows = await e.jobsAfter(since);
      assert.equal(rows.length, 1, describeJobs(rows));
      assertDone(rows[0]);
      assert.equal(rows[0].job_source_type, 'delete');
      assert.equal(rows[0].job_log, `deleted dbo.PersonBPK ${personBpkId}`);
      assert.deepEqual(await e.fs.rows('PersonBPK'), []);
      assert.equal((await e.fs.rows('Person')).length, 1);
      assert.equal((await e.fs.rows('xBPKAccount')).length, 1);
    });
  });
}

/** FSO's "YYYY-MM-DD HH:MM:SS" (UTC) as a Date. */
function odooUtc(text: string): Date {
  return new Date(`${text.replace(' ', 'T')}Z`);
}

/** The row without the bookkeeping columns that are checked elsewhere. */
function strip(row: Record<string, any>): Record<string, any> {
  const { sosync_write_date: _s, write_date: _w, noSyncJobSwitch: _n, ...rest } = row;
  return rest;
}
