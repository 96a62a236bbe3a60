/**
 * GET /service/quick-check through the whole running service against the FS (TDS) and FSO
 * (XML-RPC) stand-ins: both sides' model info, the mapped fields side by side, what a job would
 * do now — and that it changes nothing. Also the flow map of the real flows and the cleanup in
 * /service/status. The quick check reads FS and FSO only, so one store serves.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { XMLParser } from 'fast-xml-parser';
import { assertDone, onlyNewJob, startEndToEnd, type EndToEnd } from '../support/endToEnd.ts';

const xml = new XMLParser();

describe('quick check, flow map and cleanup status of the running service', () => {
  let e: EndToEnd;
  let accountId: number;
  let companyId: number;
  let partnerId: number;
  let personId: number;
  before(async () => { e = await startEndToEnd('pglite'); });
  after(async () => { await e?.close(); });

  const check = async (model: string, id: number) => {
    const r = await e.get(`/service/quick-check?model=${encodeURIComponent(model)}&id=${id}`);
    assert.equal(r.status, 200, r.text);
    return r.json;
  };
  // the job rows without the protocol worker's bookkeeping (it keeps copying finished rows to FSO)
  const jobRows = async () => (await e.jobs()).map(({ job_fso_id: _id, job_to_fso_sync_date: _date, ...row }) => row);
  const differing = (answer: any) => answer.fields.filter((f: any) => f.differs).map((f: any) => f.fso_field);

  it('a synced company is up to date, with both sides and the mapped field', async () => {
    const since = await e.lastJobId();
    accountId = (await e.fs.insert('xBPKAccount', { Name: 'Prüfverein' })).xBPKAccountID;
    await e.waitForJobs();
    const job = await onlyNewJob(e, since);
    assertDone(job);
    companyId = job.sync_target_record_id!;

    for (const [model, id] of [['dbo.xBPKAccount', accountId], ['res.company', companyId]] as const) {
      const answer = await check(model, id);
      assert.equal(answer.action, 'up to date', JSON.stringify(answer));
      assert.equal(answer.flow, 'company');
      assert.deepEqual([answer.fs.id, answer.fs.foreign_id, answer.fso.id, answer.fso.foreign_id], [accountId, companyId, companyId, accountId]);
      assert.equal(answer.fs.sosync_write_date, answer.fso.sosync_write_date);
      assert.deepEqual(answer.fields, [{ fs_field: 'Name', fso_field: 'name', fs_value: 'Prüfverein', fso_value: 'Prüfverein', differs: false }]);
      assert.equal(answer.differences, 0);
      assert.equal(answer.direction, null);
    }
  });

  it('a partner FSO holds without a gender compares equal to FS, which holds it as other (SPEC §6.2)', async () => {
    const since = await e.lastJobId();
    const id = e.fso.userCreate('res.partner', { firstname: 'Kim', lastname: 'Ohnegeschlecht', gender: false });
    await e.waitForJobs();
    assertDone(await onlyNewJob(e, since));
    const answer = await check('res.partner', id);
    const gender = answer.fields.find((f: any) => f.fso_field === 'gender');
    assert.deepEqual(gender, { fs_field: 'Person.GeschlechttypID', fso_field: 'gender', fs_value: 'other', fso_value: 'other', differs: false });
    assert.deepEqual(differing(answer), []);
  });

  it('a synced partner compares equal field by field, empty fields (name_zwei, fax) included', async () => {
    const since = await e.lastJobId();
    partnerId = e.fso.userCreate('res.partner', {
      firstname: 'Maria', lastname: 'Musterfrau', birthdate_web: '1980-05-17', title_web: 'Mag.',
      gender: 'female', BPKForcedFirstname: 'Marie', BPKForcedLastname: 'Muster', BPKForcedBirthdate: '1980-05-18', BPKForcedZip: '1020',
      street: 'Hauptstraße', street_number_web: '12a', zip: '1010', city: 'Wien', country_id: e.fso.store.countryId('DE'),
      anrede_individuell: 'Liebe Maria', email: 'maria@example.org', phone: '+43 1 5550100', mobile: '+43 664 5550101',
      donation_deduction_optout_web: true, donation_receipt_web: true, newsletter_web: true,
    });
    await e.waitForJobs();
    const job = await onlyNewJob(e, since);
    assertDone(job);
    personId = job.sync_target_record_id!;
    const answer = await check('res.partner', partnerId);
    assert.equal(answer.action, 'up to date', JSON.stringify(answer));
    assert.equal(answer.fields.length, 23);
    assert.deepEqual(differing(answer), []);
    const field = (name: string) => answer.fields.find((f: any) => f.fso_field === name);
    assert.deepEqual(field('country_id'), { fs_field: 'PersonAdresse.LandID', fso_field: 'country_id', fs_value: 'DE', fso_value: 'DE', differs: false });
    assert.equal(field('email').fs_value, 'maria@example.org');
    assert.equal(field('newsletter_web').fs_value, true);
    assert.deepEqual(field('fax'), { fs_field: 'PersonTelefon (403)', fso_field: 'fax', fs_value: null, fso_value: null, differs: false });
  });

  let bpkId: number;
  let personBpkId: number;
  it('a synced partner bPK compares equal, its dates and datetimes included', async () => {
    const since = await e.lastJobId();
    bpkId = e.fso.userCreate('res.partner.bpk', {
      BPKRequestPartnerID: partnerId, BPKRequestCompanyID: companyId, BPKPrivate: 'PRIV-1', BPKPublic: 'PUB-1',
      BPKRequestFirstname: 'Maria', BPKRequestLastname: 'Musterfrau', BPKRequestBirthdate: '1980-05-17', BPKRequestDate: '2024-03-01 10:20:30',
      BPKErrorRequestDate: '2024-02-01 09:00:00', BPKErrorRequestBirthdate: '1980-05-16', BPKErrorCode: 'F230', BPKErrorText: 'nicht gefunden',
    });
    await e.waitForJobs();
    const root = (await e.jobsAfter(since)).find((j) => j.job_source_model === 'res.partner.bpk')!;
    assertDone(root);
    personBpkId = root.sync_target_record_id!;
    const answer = await check('res.partner.bpk', bpkId);
    assert.equal(answer.action, 'up to date', JSON.stringify(answer));
    assert.deepEqual(differing(answer), [], JSON.stringify(answer.fields));
    const field = (name: string) => answer.fields.find((f: any) => f.fso_field === name);
    assert.equal(field('BPKRequestBirthdate').fs_value, '1980-05-17');
    assert.equal(field('BPKRequestDate').fs_value, '2024-03-01T10:20:30.000Z');
    assert.equal(field('BPKErrorResponseData').fs_value, null);
  });

  describe('with the worker stopped, so the changes stay unsynced', () => {
    before(async () => {
      e.service.workers()!.supervisor.send({ type: 'STOP' });
    });

    it('FS newer: direction FS → FSO onto the known target, the changed fields marked, nothing written', async () => {
      await e.fs.query('UPDATE dbo.[Person] SET [Vorname] = @v WHERE [PersonID] = @id;', { v: 'Mia', id: personId });
      await e.fs.query('UPDATE dbo.[xBPKAccount] SET [Name] = @v WHERE [xBPKAccountID] = @id;', { v: 'Prüfverein Süd', id: accountId });
      await e.fsStandIn.engine.flushAnnouncements();
      const jobsBefore = await jobRows();
      const partnerBefore = e.fso.store.get('res.partner', partnerId);

      const answer = await check('dbo.Person', personId);
      assert.equal(answer.action, 'sync', JSON.stringify(answer));
      assert.deepEqual(answer.direction, {
        source_system: 'fs', source_model: 'dbo.Person', source_record_id: personId,
        target_system: 'fso', target_model: 'res.partner', target_record_id: partnerId,
      });
      assert.deepEqual(differing(answer), ['firstname']);
      assert.ok(new Date(answer.fs.sosync_write_date) > new Date(answer.fso.sosync_write_date), JSON.stringify([answer.fs, answer.fso]));
      // asked from the other side, the same decision
      assert.deepEqual((await check('res.partner', partnerId)).direction, answer.direction);

      const company = await check('res.company', companyId);
      assert.equal(company.action, 'sync');
      assert.deepEqual(company.fields, [{ fs_field: 'Name', fso_field: 'name', fs_value: 'Prüfverein Süd', fso_value: 'Prüfverein', differs: true }]);

      assert.ok(JSON.stringify(await jobRows()) === JSON.stringify(jobsBefore), 'no job was created or changed');
      assert.deepEqual(e.fso.store.get('res.partner', partnerId), partnerBefore, 'FSO was not written');
    });

    it('a record only FS has: it would be created on FSO', async () => {
      const id = (await e.fs.insert('xBPKAccount', { Name: 'Neuverein' })).xBPKAccountID;
      const answer = await check('dbo.xBPKAccount', id);
      assert.equal(answer.action, 'sync');
      assert.equal(answer.fso, null);
      assert.equal(answer.direction.target_record_id, null);
      assert.deepEqual(answer.fields, [{ fs_field: 'Name', fso_field: 'name', fs_value: 'Neuverein', fso_value: null, differs: true }]);
    });

    it('a partner bPK newer in FS: the flow syncs from FSO only, so a job would fail', async () => {
      await e.fs.query('UPDATE dbo.[PersonBPK] SET [BPKPrivat] = @v WHERE [PersonBPKID] = @id;', { v: 'PRIV-2', id: personBpkId });
      const answer = await check('dbo.PersonBPK', personBpkId);
      assert.equal(answer.action, 'error', JSON.stringify(answer));
      assert.match(answer.reason, /fs is newer, but the partner bPK flow syncs from fso only/);
      assert.equal(answer.direction.source_system, 'fs');
      assert.deepEqual(differing(answer), ['BPKPrivate']);
    });

    it('a record that does not exist: action error with the reason', async () => {
      const answer = await check('res.company', 999_999);
      assert.equal(answer.action, 'error');
      assert.match(answer.reason, /fso res\.company 999999 does not exist/);
    });

    it('XML on request', async () => {
      const res = await fetch(`${e.base}/service/quick-check?model=res.company&id=${companyId}`, { headers: { accept: 'application/xml' } });
      assert.match(res.headers.get('content-type') ?? '', /application\/xml/);
      const doc = xml.parse(await res.text()).quick_check;
      assert.equal(doc.action, 'sync');
      assert.equal(doc.fields.fso_field, 'name');
      assert.equal(doc.direction.source_system, 'fs');
    });

    it('bad parameters: 400 naming them', async () => {
      for (const [query, field, problem] of [
        ['id=1', 'model', /required/], ['model=res.users&id=1', 'model', /no sync flow/],
        ['model=res.company', 'id', /required/], ['model=res.company&id=-4', 'id', /positive 32-bit/],
      ] as const) {
        const r = await e.get(`/service/quick-check?${query}`);
        assert.equal(r.status, 400, query);
        assert.match(r.json.error_detail[field], problem, query);
      }
    });
  });

  it('GET /flow/map describes the three flows', async () => {
    const r = await e.get('/flow/map');
    const byName = Object.fromEntries(r.json.flows.map((f: any) => [f.name, f]));
    assert.deepEqual(Object.keys(byName).sort(), ['company', 'partner', 'partner bPK']);
    assert.deepEqual(byName['partner bPK'].directions, [{ source_system: 'fso', source_model: 'res.partner.bpk', target_system: 'fs', target_model: 'dbo.PersonBPK' }]);
    assert.deepEqual(byName['partner bPK'].child_jobs, [{ system: 'fso', model: 'res.company' }, { system: 'fso', model: 'res.partner' }]);
    assert.equal(byName.partner.directions.length, 2);
    assert.deepEqual(byName.partner.deletes, { fs: 'delete', fso: 'deactivate' });
    assert.deepEqual(byName.company.deletes, { fs: 'delete', fso: 'unlink' });
  });

  it('/service/status shows the cleanup of old finished jobs', async () => {
    const r = await e.get('/service/status');
    assert.equal(r.json.finished_job_cleanup.keep_finished_days, 90);
    assert.equal(r.json.finished_job_cleanup.enabled, true);
    assert.equal(r.json.finished_job_cleanup.rows_removed_total, 0);
  });
});
