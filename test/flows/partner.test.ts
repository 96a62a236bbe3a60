/**
 * Partner flow end to end (SPEC §6.2, §6.4): the FS person stack ↔ res.partner, both directions,
 * every row of the mapping table, through the stand-ins and the running service.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertDone, jobDate, onlyNewJob, sameInstant, storeKinds, today, type EndToEnd, type FsEditor, startEndToEnd,
} from '../support/endToEnd.ts';

const FULL_YEAR = '111111111111';
const OPEN_END = '2099-12-31';

interface StackRows {
  person: Record<string, any> | undefined;
  addresses: Record<string, any>[];
  emails: Record<string, any>[];
  phones: Record<string, any>[];
  groups: Record<string, any>[];
  emailGroups: Record<string, any>[];
}

async function stackRows(fs: FsEditor, personId: number): Promise<StackRows> {
  const p = { id: personId };
  return {
    person: (await fs.rows('Person', '[PersonID] = @id', p))[0],
    addresses: await fs.rows('PersonAdresse', '[PersonID] = @id', p),
    emails: await fs.rows('PersonEmail', '[PersonID] = @id', p),
    phones: await fs.rows('PersonTelefon', '[PersonID] = @id', p),
    groups: await fs.rows('PersonGruppe', '[PersonID] = @id', p),
    emailGroups: await fs.rows('PersonEmailGruppe', '[PersonEmailID] IN (SELECT [PersonEmailID] FROM dbo.[PersonEmail] WHERE [PersonID] = @id)', p),
  };
}

const allRows = (s: StackRows) => [s.person!, ...s.addresses, ...s.emails, ...s.phones, ...s.groups, ...s.emailGroups];
const validToday = (row: Record<string, any>) => (row.GültigVon === null || row.GültigVon <= today()) && (row.GültigBis === null || row.GültigBis >= today());

for (const kind of storeKinds) {
  describe(`partner flow end to end (sync table in ${kind})`, () => {
    let e: EndToEnd;
    before(async () => { e = await startEndToEnd(kind); });
    after(async () => { await e?.close(); });

    describe('FSO → FS', () => {
      let partnerId: number;
      let personId: number;

      it('create: every field of res.partner lands in the person stack, in one transaction', async () => {
        // first attempt: the last insert of the stack fails, so nothing of it may remain
        e.fsStandIn.engine.failStatements([{ match: 'INSERT INTO dbo.[PersonEmailGruppe]', message: 'disk full (injected)' }]);
        const since = await e.lastJobId();
        partnerId = e.fso.userCreate('res.partner', {
          firstname: 'Maria', lastname: 'Musterfrau', name_zwei: 'Zusatzname', birthdate_web: '1980-05-17', title_web: 'Mag.',
          gender: 'female', BPKForcedFirstname: 'Marie', BPKForcedLastname: 'Muster', BPKForcedBirthdate: '1980-05-18', BPKForcedZip: '1020',
          street: 'Hauptstraße', street_number_web: '12a', zip: '1010', city: 'Wien', country_id: e.fso.store.countryId('DE'),
          anrede_individuell: 'Liebe Maria', email: 'maria.muster@example.org',
          phone: '+43 1 5550100', mobile: '+43 664 5550101', fax: '+43 1 5550102',
          donation_deduction_optout_web: true, donation_receipt_web: true, newsletter_web: true,
        });
        await e.waitForJobs();
        const failed = await onlyNewJob(e, since);
        assert.equal(failed.job_state, 'error');
        assert.equal(failed.job_error_code, 'transformation');
        assert.match(failed.job_error_text ?? '', /disk full \(injected\)/);
        // the rows it tried to write are the evidence; none of them is in FS
        assert.match(failed.sync_target_request ?? '', /dbo\.Person"/);
        assert.deepEqual(await e.fs.rows('Person'), []);
        assert.deepEqual(await e.fs.rows('PersonAdresse'), []);
        assert.deepEqual(await e.fs.rows('PersonTelefon'), []);
        assert.equal(e.fso.store.get('res.partner', partnerId)!.sosync_fs_id, null);

        // second attempt, nothing in the way
        e.fsStandIn.engine.failStatements([]);
        const again = await e.lastJobId();
        await e.announce({ job_date: jobDate(), source_system: 'fso', source_model: 'res.partner', source_record_id: partnerId });
        await e.waitForJobs();
        const job = await onlyNewJob(e, again);
        assertDone(job);
        assert.equal(job.sync_target_model, 'dbo.Person');
        personId = job.sync_target_record_id!;
        assert.equal(job.job_log, `created dbo.Person ${personId}`);
        assert.equal(job.sync_target_answer, 'success');

        const partner = e.fso.store.get('res.partner', partnerId)!;
        assert.equal(partner.sosync_fs_id, personId, 'sosync_fs_id written back after the create');
        const s = await stackRows(e.fs, personId);
        assert.equal((await e.fs.rows('Person')).length, 1);
        assert.deepEqual(
          pick(s.person!, ['Vorname', 'Name', 'Name2', 'Titel', 'Geburtsdatum', 'GeschlechttypID', 'BPKErzwungenVorname',
            'BPKErzwungenNachname', 'BPKErzwungenGeburtsdatum', 'BPKErzwungenPLZ', 'PersontypID', 'NationalitätID']),
          {
            Vorname: 'Maria', Name: 'Musterfrau', Name2: 'Zusatzname', Titel: 'Mag.', Geburtsdatum: '1980-05-17', GeschlechttypID: 291,
            BPKErzwungenVorname: 'Marie', BPKErzwungenNachname: 'Muster', BPKErzwungenGeburtsdatum: '1980-05-18', BPKErzwungenPLZ: '1020',
            // defaults of a new FS person: PersontypID 101, nationality from dbo.Typen 200525 (LandID 1)
            PersontypID: 101, NationalitätID: 1,
          },
        );
        assert.equal(s.addresses.length, 1);
        assert.deepEqual(
          pick(s.addresses[0], ['Strasse', 'Hausnummer', 'PLZ', 'Ort', 'LandID', 'AnredeformtypID', 'IndividuelleAnrede', 'AdresstypID', 'GültigMonatArray', 'GültigVon', 'GültigBis']),
          {
            Strasse: 'Hauptstraße', Hausnummer: '12a', PLZ: '1010', Ort: 'Wien', LandID: 2 /* DE */, AnredeformtypID: 324,
            IndividuelleAnrede: 'Liebe Maria', AdresstypID: 311, GültigMonatArray: FULL_YEAR, GültigVon: today(), GültigBis: OPEN_END,
          },
        );
        assert.deepEqual(s.emails.map((r) => pick(r, ['EmailVor', 'EmailNach', 'GültigMonatArray', 'GültigVon', 'GültigBis'])), [
          { EmailVor: 'maria.muster', EmailNach: 'example.org', GültigMonatArray: FULL_YEAR, GültigVon: today(), GültigBis: OPEN_END },
        ]);
        assert.deepEqual(s.phones.map((r) => pick(r, ['TelefontypID', 'Landkennzeichen', 'Vorwahl', 'Rufnummer', 'GültigBis'])).sort(byType), [
          { TelefontypID: 400, Landkennzeichen: null, Vorwahl: null, Rufnummer: '+43 1 5550100', GültigBis: OPEN_END },
          { TelefontypID: 401, Landkennzeichen: null, Vorwahl: null, Rufnummer: '+43 664 5550101', GültigBis: OPEN_END },
          { TelefontypID: 403, Landkennzeichen: null, Vorwahl: null, Rufnummer: '+43 1 5550102', GültigBis: OPEN_END },
        ]);
        assert.deepEqual(s.groups.map((r) => pick(r, ['zGruppeDetailID', 'GültigVon', 'GültigBis'])).sort((a, b) => a.zGruppeDetailID - b.zGruppeDetailID), [
          { zGruppeDetailID: 20168, GültigVon: today(), GültigBis: OPEN_END },
          { zGruppeDetailID: 110493, GültigVon: today(), GültigBis: OPEN_END },
        ]);
        assert.deepEqual(s.emailGroups.map((r) => pick(r, ['PersonEmailID', 'zGruppeDetailID', 'GültigVon', 'GültigBis'])), [
          { PersonEmailID: s.emails[0].PersonEmailID, zGruppeDetailID: 30104, GültigVon: today(), GültigBis: OPEN_END },
        ]);
        for (const row of allRows(s)) {
          assert.equal(row.sosync_fso_id, partnerId, `sosync_fso_id on ${JSON.stringify(row)}`);
          assert.ok(sameInstant(partner.sosync_write_date, row.sosync_write_date), `sosync_write_date on ${JSON.stringify(row)}`);
        }
        // one FS transaction wrote them all: its rows are the job's request
        const written = JSON.parse(job.sync_target_request!) as Array<{ table: string; action: string }>;
        assert.deepEqual([...new Set(written.map((w) => w.table))].sort(), [
          'dbo.Person', 'dbo.PersonAdresse', 'dbo.PersonEmail', 'dbo.PersonEmailGruppe', 'dbo.PersonGruppe', 'dbo.PersonTelefon',
        ]);
      });

      it('create without country or salutation: FS defaults (Typen 200525 country, 200120 salutation), empty birthdate', async () => {
        const since = await e.lastJobId();
        const id = e.fso.userCreate('res.partner', { firstname: 'Otto', lastname: 'Ohneland', gender: 'male', zip: '8010', city: 'Graz', birthdate_web: false });
        await e.waitForJobs();
        const job = await onlyNewJob(e, since);
        assertDone(job);
        const s = await stackRows(e.fs, job.sync_target_record_id!);
        assert.equal(s.person!.GeschlechttypID, 290);
        assert.equal(s.person!.Geburtsdatum, null);
        assert.equal(s.person!.sosync_fso_id, id);
        assert.deepEqual(pick(s.addresses[0], ['PLZ', 'Ort', 'Strasse', 'LandID', 'AnredeformtypID', 'IndividuelleAnrede', 'AdresstypID']), {
          PLZ: '8010', Ort: 'Graz', Strasse: null, LandID: 1, AnredeformtypID: 321, IndividuelleAnrede: null, AdresstypID: 311,
        });
        assert.deepEqual([s.emails, s.phones, s.groups, s.emailGroups], [[], [], [], []]);
      });

      it('update: cleared fields end their rows (which lose sosync_fso_id), values change in place', async () => {
        const before = await stackRows(e.fs, personId);
        const since = await e.lastJobId();
        e.fso.userWrite('res.partner', partnerId, {
          lastname: 'Neumann', title_web: false, gender: 'other', birthdate_web: false, anrede_individuell: false,
          country_id: e.fso.store.countryId('CH'), email: 'm@x@example.org', phone: false, mobile: '+43 676 1111111',
          donation_receipt_web: false, newsletter_web: false,
        });
        await e.waitForJobs();
        const job = await onlyNewJob(e, since);
        assertDone(job);
        assert.equal(job.job_log, `updated dbo.Person ${personId}`);
        assert.equal(job.sync_target_record_id, personId);
        assert.ok(job.sync_target_data_before, 'the stack before the update is kept');

        const s = await stackRows(e.fs, personId);
        assert.equal(s.person!.Name, 'Neumann');
        assert.equal(s.person!.Titel, null);
        assert.equal(s.person!.GeschlechttypID, 0, 'other → 0 when FS had 291');
        assert.equal(s.person!.Geburtsdatum, null);
        // salutation cleared: back to the default of dbo.Typen 200120
        assert.equal(s.addresses.length, 1);
        assert.equal(s.addresses[0].AnredeformtypID, 321);
        assert.equal(s.addresses[0].IndividuelleAnrede, null);
        assert.equal(s.addresses[0].LandID, 3 /* CH */);
        // e-mail split at the first @, same row
        assert.deepEqual(s.emails.map((r) => [r.PersonEmailID, r.EmailVor, r.EmailNach]), [[before.emails[0].PersonEmailID, 'm', 'x@example.org']]);
        const phone = s.phones.find((r) => r.TelefontypID === 400)!;
        assert.ok(!validToday(phone), `phone row ended: ${phone.GültigBis}`);
        assert.equal(phone.sosync_fso_id, null, 'a row that stopped being current loses sosync_fso_id');
        assert.equal(s.phones.find((r) => r.TelefontypID === 401)!.Rufnummer, '+43 676 1111111');
        const receipt = s.groups.find((r) => r.zGruppeDetailID === 20168)!;
        assert.ok(!validToday(receipt) && receipt.sosync_fso_id === null);
        assert.ok(validToday(s.groups.find((r) => r.zGruppeDetailID === 110493)!));
        assert.ok(!validToday(s.emailGroups[0]) && s.emailGroups[0].sosync_fso_id === null);
        // nothing new was created for the unchanged parts
        assert.equal(s.addresses[0].PersonAdresseID, before.addresses[0].PersonAdresseID);
        assert.equal(s.groups.length, 2);
        const partner = e.fso.store.get('res.partner', partnerId)!;
        for (const row of allRows(s).filter(validToday)) {
          assert.equal(row.sosync_fso_id, partnerId);
          assert.ok(sameInstant(partner.sosync_write_date, row.sosync_write_date));
        }
      });

      it('GeschlechttypID 291 is female in FSO; 292–295 survive "other" from FSO; an individual salutation sets 324 again', async () => {
        let since = await e.lastJobId();
        await e.fs.query('UPDATE dbo.[Person] SET [GeschlechttypID] = 291 WHERE [PersonID] = @id;', { id: personId });
        await e.waitForJobs();
        assertDone(await onlyNewJob(e, since));
        assert.equal(e.fso.store.get('res.partner', partnerId)!.gender, 'female');

        since = await e.lastJobId();
        await e.fs.query('UPDATE dbo.[Person] SET [GeschlechttypID] = 293 WHERE [PersonID] = @id;', { id: personId });
        await e.waitForJobs();
        assertDone(await onlyNewJob(e, since));
        assert.equal(e.fso.store.get('res.partner', partnerId)!.gender, 'other');

        since = await e.lastJobId();
        e.fso.userWrite('res.partner', partnerId, { firstname: 'Mara', anrede_individuell: 'Hallo Mara' });
        await e.waitForJobs();
        assertDone(await onlyNewJob(e, since));
        const s = await stackRows(e.fs, personId);
        assert.equal(s.person!.Vorname, 'Mara');
        assert.equal(s.person!.GeschlechttypID, 293);
        assert.equal(s.addresses[0].AnredeformtypID, 324);
        assert.equal(s.addresses[0].IndividuelleAnrede, 'Hallo Mara');
      });

      it('already up to date: a repeated announcement writes nothing', async () => {
        const before = await stackRows(e.fs, personId);
        const since = await e.lastJobId();
        await e.announce({ job_date: jobDate(), source_system: 'fso', source_model: 'res.partner', source_record_id: partnerId });
        await e.waitForJobs();
        const job = await onlyNewJob(e, since);
        assertDone(job);
        assert.match(job.job_log ?? '', /model up to date/);
        assert.deepEqual(await stackRows(e.fs, personId), before);
      });

      it('delete: unlinking res.partner deletes the whole person stack in FS', async () => {
        const since = await e.lastJobId();
        e.fso.userUnlink('res.partner', partnerId);
        await e.waitForJobs();
        const job = await onlyNewJob(e, since);
        assertDone(job);
        assert.equal(job.job_source_type, 'delete');
        assert.equal(job.job_log, `deleted dbo.Person ${personId}`);
        const s = await stackRows(e.fs, personId);
        assert.equal(s.person, undefined);
        assert.deepEqual([s.addresses, s.emails, s.phones, s.groups, s.emailGroups], [[], [], [], [], []]);
      });
    });

    describe('FS → FSO', () => {
      let personId: number;
      let partnerId: number;
      const ids: Record<string, number> = {};

      it('create: the current rows of the stack become one res.partner; only they get sosync_fso_id', async () => {
        const since = await e.lastJobId();
        await e.fs.transaction(async (q) => {
          const person = await e.fs.insert('Person', {
            PersontypID: 101, Vorname: 'Franz', Name: 'Fischer', Name2: 'jun.', Titel: 'DI', Geburtsdatum: '1975-03-02', GeschlechttypID: 290,
            BPKErzwungenVorname: 'Franziskus', BPKErzwungenNachname: 'Fischer-Forced', BPKErzwungenGeburtsdatum: '1975-03-03', BPKErzwungenPLZ: '4020',
          }, q);
          personId = person.PersonID;
          const address = (values: Record<string, unknown>) => e.fs.insert('PersonAdresse', { PersonID: personId, AdresstypID: 311, ...values }, q);
          ids.current = (await address({
            Strasse: 'Landstraße', Hausnummer: '7', PLZ: '4020', Ort: 'Linz', LandID: 2, AnredeformtypID: 324,
            IndividuelleAnrede: 'Sehr geehrter Herr DI Fischer', GültigMonatArray: FULL_YEAR, GültigVon: '2020-01-01', GültigBis: OPEN_END,
          })).PersonAdresseID;
          // a summer address (not the whole year) and an expired one, both with higher ids
          ids.summer = (await address({ Strasse: 'Sommerweg', PLZ: '9999', GültigMonatArray: '000001110000', GültigVon: '2020-01-01', GültigBis: OPEN_END })).PersonAdresseID;
          ids.expired = (await address({ Strasse: 'Altgasse', PLZ: '1111', GültigMonatArray: FULL_YEAR, GültigVon: '2010-01-01', GültigBis: '2019-12-31' })).PersonAdresseID;
          ids.oldEmail = (await e.fs.insert('PersonEmail', { PersonID: personId, EmailVor: 'alt', EmailNach: 'example.org', GültigVon: '2015-01-01', GültigBis: OPEN_END }, q)).PersonEmailID;
          ids.email = (await e.fs.insert('PersonEmail', { PersonID: personId, EmailVor: 'franz.fischer', EmailNach: 'example.com', GültigMonatArray: FULL_YEAR, GültigVon: '2020-01-01', GültigBis: OPEN_END }, q)).PersonEmailID;
          await e.fs.insert('PersonTelefon', { PersonID: personId, TelefontypID: 400, Landkennzeichen: '+43', Vorwahl: '732', Rufnummer: '123456', GültigVon: '2020-01-01', GültigBis: OPEN_END }, q);
          await e.fs.insert('PersonTelefon', { PersonID: personId, TelefontypID: 401, Landkennzeichen: '+43', Vorwahl: '664', Rufnummer: '9876543', GültigVon: '2020-01-01', GültigBis: OPEN_END }, q);
          await e.fs.insert('PersonTelefon', { PersonID: personId, TelefontypID: 403, Rufnummer: '0732 123457', GültigVon: '2020-01-01', GültigBis: OPEN_END }, q);
          ids.optOut = (await e.fs.insert('PersonGruppe', { PersonID: personId, zGruppeDetailID: 110493, GültigVon: '2020-01-01', GültigBis: OPEN_END }, q)).PersonGruppeID;
          ids.oldReceipt = (await e.fs.insert('PersonGruppe', { PersonID: personId, zGruppeDetailID: 20168, GültigVon: '2018-01-01', GültigBis: '2021-12-31' }, q)).PersonGruppeID;
          await e.fs.insert('PersonEmailGruppe', { PersonEmailID: ids.email, zGruppeDetailID: 30104, GültigVon: '2020-01-01', GültigBis: OPEN_END }, q);
        });
        await e.waitForJobs();

        const job = await onlyNewJob(e, since);
        assertDone(job);
        assert.equal(job.job_source_model, 'dbo.Person');
        assert.equal(job.job_source_record_id, personId);
        partnerId = job.sync_target_record_id!;
        assert.equal(job.job_log, `created res.partner ${partnerId}`);
        const partner = e.fso.store.get('res.partner', partnerId)!;
        assert.deepEqual(pick(partner, [
          'firstname', 'lastname', 'name_zwei', 'birthdate_web', 'title_web', 'gender', 'BPKForcedFirstname', 'BPKForcedLastname',
          'BPKForcedBirthdate', 'BPKForcedZip', 'street', 'street_number_web', 'zip', 'city', 'country_id', 'anrede_individuell', 'email',
          'phone', 'mobile', 'fax', 'donation_deduction_optout_web', 'donation_receipt_web', 'newsletter_web', 'sosync_fs_id', 'active',
        ]), {
          firstname: 'Franz', lastname: 'Fischer', name_zwei: 'jun.', birthdate_web: '1975-03-02', title_web: 'DI', gender: 'male',
          BPKForcedFirstname: 'Franziskus', BPKForcedLastname: 'Fischer-Forced', BPKForcedBirthdate: '1975-03-03', BPKForcedZip: '4020',
          street: 'Landstraße', street_number_web: '7', zip: '4020', city: 'Linz', country_id: e.fso.store.countryId('DE'),
          anrede_individuell: 'Sehr geehrter Herr DI Fischer', email: 'franz.fischer@example.com',
          phone: '+43 732 123456', mobile: '+43 664 9876543', fax: '0732 123457',
          donation_deduction_optout_web: true, donation_receipt_web: false, newsletter_web: true, sosync_fs_id: personId, active: true,
        });
        const s = await stackRows(e.fs, personId);
        const fsoIdOf = (rows: Record<string, any>[], key: string, id: number) => rows.find((r) => r[key] === id)!.sosync_fso_id;
        assert.equal(s.person!.sosync_fso_id, partnerId);
        assert.equal(fsoIdOf(s.addresses, 'PersonAdresseID', ids.current), partnerId);
        assert.equal(fsoIdOf(s.addresses, 'PersonAdresseID', ids.summer), null);
        assert.equal(fsoIdOf(s.addresses, 'PersonAdresseID', ids.expired), null);
        assert.equal(fsoIdOf(s.emails, 'PersonEmailID', ids.email), partnerId);
        assert.equal(fsoIdOf(s.emails, 'PersonEmailID', ids.oldEmail), null);
        assert.ok(s.phones.every((r) => r.sosync_fso_id === partnerId));
        assert.equal(fsoIdOf(s.groups, 'PersonGruppeID', ids.optOut), partnerId);
        assert.equal(fsoIdOf(s.groups, 'PersonGruppeID', ids.oldReceipt), null);
        assert.equal(s.emailGroups[0].sosync_fso_id, partnerId);
        // FSO carries the stack's newest sosync_write_date
        const newest = Math.max(...allRows(s).map((r) => (r.sosync_write_date as Date).getTime()));
        assert.equal(new Date(partner.sosync_write_date as string).getTime(), newest);
      });

      it('update from FSO keeps the FS phone parts when the joined number is unchanged', async () => {
        const since = await e.lastJobId();
        e.fso.userWrite('res.partner', partnerId, { name_zwei: 'senior' });
        await e.waitForJobs();
        assertDone(await onlyNewJob(e, since));
        const s = await stackRows(e.fs, personId);
        assert.equal(s.person!.Name2, 'senior');
        assert.deepEqual(pick(s.phones.find((r) => r.TelefontypID === 400)!, ['Landkennzeichen', 'Vorwahl', 'Rufnummer']), { Landkennzeichen: '+43', Vorwahl: '732', Rufnummer: '123456' });
      });

      it('update: a new current address, an ended group and person changes reach res.partner; the old address loses sosync_fso_id', async () => {
        const since = await e.lastJobId();
        await e.fs.transaction(async (q) => {
          await q('UPDATE dbo.[Person] SET [Name] = @name, [GeschlechttypID] = 292, [Geburtsdatum] = NULL WHERE [PersonID] = @id;', { name: 'Fischer-Neu', id: personId });
          ids.moved = (await e.fs.insert('PersonAdresse', {
            PersonID: personId, AdresstypID: 311, AnredeformtypID: 321, Strasse: 'Seestraße', Hausnummer: '1', PLZ: '8001', Ort: 'Zürich', LandID: 3,
            GültigMonatArray: FULL_YEAR, GültigVon: '2021-01-01', GültigBis: OPEN_END,
          }, q)).PersonAdresseID;
          await q('UPDATE dbo.[PersonGruppe] SET [GültigBis] = @end WHERE [PersonGruppeID] = @id;', { end: { type: 'date', value: '2021-06-30' }, id: ids.optOut });
        });
        await e.waitForJobs();
        const job = await onlyNewJob(e, since);
        assertDone(job);
        assert.equal(job.job_log, `updated res.partner ${partnerId}`);
        assert.match(job.sync_target_data_before ?? '', /Landstraße/);
        const partner = e.fso.store.get('res.partner', partnerId)!;
        assert.deepEqual(pick(partner, ['lastname', 'gender', 'birthdate_web', 'street', 'zip', 'city', 'country_id', 'anrede_individuell', 'donation_deduction_optout_web']), {
          lastname: 'Fischer-Neu', gender: 'other', birthdate_web: null, street: 'Seestraße', zip: '8001', city: 'Zürich',
          country_id: e.fso.store.countryId('CH'), anrede_individuell: null, donation_deduction_optout_web: false,
        });
        const s = await stackRows(e.fs, personId);
        assert.equal(s.addresses.find((r) => r.PersonAdresseID === ids.moved)!.sosync_fso_id, partnerId, 'the new current address carries the FSO id');
        assert.equal(s.addresses.find((r) => r.PersonAdresseID === ids.current)!.sosync_fso_id, null, 'the former current address lost it');
        assert.equal(s.groups.find((r) => r.PersonGruppeID === ids.optOut)!.sosync_fso_id, null, 'the ended group lost it');
        assert.equal(e.fso.store.all('res.partner').filter((p) => p.sosync_fs_id === personId).length, 1);
      });

      it('update: a row ended in FS without a successor empties the FSO field and loses sosync_fso_id', async () => {
        const since = await e.lastJobId();
        await e.fs.transaction(async (q) => {
          await q('UPDATE dbo.[PersonTelefon] SET [GültigBis] = @end WHERE [PersonID] = @id AND [TelefontypID] = 401;', { end: { type: 'date', value: '2021-01-01' }, id: personId });
          await q('UPDATE dbo.[Person] SET [Titel] = @t WHERE [PersonID] = @id;', { t: 'DI Dr.', id: personId });
        });
        await e.waitForJobs();
        assertDone(await onlyNewJob(e, since));
        const partner = e.fso.store.get('res.partner', partnerId)!;
        assert.deepEqual([partner.title_web, partner.mobile], ['DI Dr.', null]);
        const mobile = (await stackRows(e.fs, personId)).phones.find((r) => r.TelefontypID === 401)!;
        assert.equal(mobile.sosync_fso_id, null);
      });

      // The stack's sosync_write_date is the newest of its *current* rows (src/adapters/studio/personStackRead.ts,
      // readPersonStack), so a row that only left the stack leaves the date as it was: the job finds the
      // model "up to date" and FSO keeps the ended value.
      it('update: a row ended in FS as the only change still reaches FSO', async () => {
        const since = await e.lastJobId();
        await e.fs.query('UPDATE dbo.[PersonTelefon] SET [GültigBis] = @end WHERE [PersonID] = @id AND [TelefontypID] = 403;', { end: { type: 'date', value: '2021-01-01' }, id: personId });
        await e.waitForJobs();
        const job = await onlyNewJob(e, since);
        assertDone(job);
        assert.equal(e.fso.store.get('res.partner', partnerId)!.fax, null, job.job_log ?? '');
      });

      it('already up to date: a repeated announcement writes nothing', async () => {
        const before = e.fso.store.get('res.partner', partnerId);
        const since = await e.lastJobId();
        await e.announce({ job_date: jobDate(), job_source_system: 'fs', job_source_model: 'dbo.Person', job_source_record_id: personId });
        await e.waitForJobs();
        const job = await onlyNewJob(e, since);
        assertDone(job);
        assert.match(job.job_log ?? '', /model up to date/);
        assert.deepEqual(e.fso.store.get('res.partner', partnerId), before);
      });

      it('delete: deleting the person in FS deactivates res.partner (it is not unlinked)', async () => {
        const since = await e.lastJobId();
        await e.fs.transaction(async (q) => {
          const p = { id: personId };
          await q('DELETE FROM dbo.[PersonEmailGruppe] WHERE [PersonEmailID] IN (SELECT [PersonEmailID] FROM dbo.[PersonEmail] WHERE [PersonID] = @id);', p);
          for (const table of ['PersonGruppe', 'PersonTelefon', 'PersonEmail', 'PersonAdresse', 'Person']) {
            await q(`DELETE FROM dbo.[${table}] WHERE [PersonID] = @id;`, p);
          }
        });
        await e.waitForJobs();
        const job = await onlyNewJob(e, since);
        assertDone(job);
        assert.equal(job.job_source_type, 'delete');
        assert.equal(job.job_log, `deactivated res.partner ${partnerId}`);
        const partner = e.fso.store.get('res.partner', partnerId)!;
        assert.equal(partner.active, false);
        assert.equal(partner.lastname, 'Fischer-Neu');
      });
    });
  });
}

function pick(row: Record<string, any>, keys: string[]): Record<string, any> {
  return Object.fromEntries(keys.map((k) => [k, row[k] === undefined ? null : row[k]]));
}

function byType(a: Record<string, any>, b: Record<string, any>): number {
  return a.TelefontypID - b.TelefontypID;
}
