/**
 * sosync's FS client (mssql) against the FS stand-in (TDS server + SQL engine), on both backends:
 * real PostgreSQL and embedded PGlite.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import sql from 'mssql';
import { startStudioStandIn, type StudioStandIn } from '../../sandbox/studio/index.ts';
import {
  createStudioClient, parseStudioHost, StudioInputError, StudioQueryError, StudioUnavailableError,
  type StudioClient, type StudioClientOptions,
} from '../../src/adapters/studio/index.ts';
import { silentLogger } from '../../src/log.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { freePort } from '../support/ports.ts';

const logger = silentLogger();
const password = 'Geheim-ßäöü-1';
const databaseName = 'mdb_test';
const today = new Date().toISOString().slice(0, 10);

interface AnnouncementSink {
  url: string;
  received: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

async function startAnnouncementSink(): Promise<AnnouncementSink> {
  const received: Array<Record<string, unknown>> = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      received.push(JSON.parse(body));
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ job_id: received.length, error_code: 0, error_text: 'None', error_detail: {} }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/job/create`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function clientOptions(port: number, overrides: Partial<StudioClientOptions> = {}): StudioClientOptions {
  return {
    host: '127.0.0.1', port, database: databaseName, user: 'sosync', password,
    encrypt: false, trustServerCertificate: true, connectTimeoutMs: 5000, requestTimeoutMs: 10_000, ...overrides,
  };
}

describe('parseStudioHost', () => {
  it('accepts host, host,port and host:port', () => {
    assert.deepEqual(parseStudioHost('fs.example.org'), { host: 'fs.example.org', port: 1433 });
    assert.deepEqual(parseStudioHost('fs.example.org,14330'), { host: 'fs.example.org', port: 14330 });
    assert.deepEqual(parseStudioHost(' 10.0.0.5:1444 '), { host: '10.0.0.5', port: 1444 });
    assert.deepEqual(parseStudioHost('[::1]:1500'), { host: '::1', port: 1500 });
  });
  it('refuses a bad port or an empty host', () => {
    assert.throws(() => parseStudioHost('fs:0'), /port 0 is outside 1–65535/);
    assert.throws(() => parseStudioHost('fs:99999'), /port 99999 is outside 1–65535/);
    assert.throws(() => parseStudioHost(''), /is not host/);
    assert.throws(() => parseStudioHost('fs:abc'), /is not host/);
  });
});

for (const backend of ['postgresql', 'pglite'] as const) {
  describe(`FS client through the stand-in (${backend})`, () => {
    let testDb: TestDatabase | undefined;
    let pool: pg.Pool | undefined;
    let standIn: StudioStandIn;
    let sink: AnnouncementSink;
    let client: StudioClient;
    let raw: sql.ConnectionPool;

    before(async () => {
      sink = await startAnnouncementSink();
      let db: pg.Pool | PGlite;
      if (backend === 'postgresql') {
        testDb = await createTestDatabase('sosync_studio');
        pool = new pg.Pool(testDb.config);
        db = pool;
      } else {
        db = new PGlite();
      }
      standIn = await startStudioStandIn({
        db, databaseName, users: [{ user: 'sosync', password }], announceUrl: sink.url, logger, announceRetryMs: 50,
      });
      client = createStudioClient(clientOptions(standIn.port), logger);
      raw = await new sql.ConnectionPool({
        server: '127.0.0.1', port: standIn.port, database: databaseName, user: 'sosync', password,
        options: { encrypt: false, trustServerCertificate: true, useUTC: true },
      }).connect();
    });

    after(async () => {
      await raw?.close();
      await client?.close();
      await standIn?.close();
      await sink?.close();
      await pool?.end();
      await testDb?.drop();
    });

    /** What the stand-in announced since the last call. */
    async function announcements() {
      await standIn.engine.flushAnnouncements();
      return sink.received.splice(0);
    }

    it('connects and reads the server clock', async () => {
      const now = await client.serverTimeUtc();
      assert.ok(now instanceof Date);
      assert.ok(Math.abs(now.getTime() - Date.now()) < 24 * 3600_000, 'a plausible UTC time');
      const offset = await client.clockOffsetMs();
      assert.ok(Number.isFinite(offset) && Math.abs(offset) < 60_000, 'the stand-in shares our clock');
    });

    it('reads Typen defaults and maps countries both ways', async () => {
      assert.equal(await client.typenDefault(200525), '1');
      assert.equal(await client.typenDefault(200120), '321');
      assert.equal(await client.typenDefault(999999), null);
      assert.equal(await client.landIdToIso(2), 'DE');
      assert.equal(await client.isoToLandId('at'), 1);
      assert.equal(await client.isoToLandId('ZZ'), null);
      assert.equal(await client.landIdToIso(9999), null);
    });

    it('refuses a bad login with StudioUnavailableError naming the host, without the password', async () => {
      const bad = createStudioClient(clientOptions(standIn.port, { password: 'wrong-secret' }), logger);
      try {
        await assert.rejects(bad.typenDefault(200525), (err: unknown) => {
          assert.ok(err instanceof StudioUnavailableError);
          assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${standIn.port}`));
          assert.match(err.message, /Login failed for user 'sosync'/);
          assert.doesNotMatch(err.message, /wrong-secret/);
          return true;
        });
      } finally {
        await bad.close();
      }
      const wrongDb = createStudioClient(clientOptions(standIn.port, { database: 'mdb_other' }), logger);
      try {
        await assert.rejects(wrongDb.typenDefault(200525), (err: unknown) => {
          assert.ok(err instanceof StudioUnavailableError);
          assert.match(err.message, /Cannot open database "mdb_other"|Login failed/);
          return true;
        });
      } finally {
        await wrongDb.close();
      }
    });

    it('gives StudioUnavailableError for a refused connection', async () => {
      const port = await freePort();
      const nobody = createStudioClient(clientOptions(port, { connectTimeoutMs: 2000 }), logger);
      try {
        await assert.rejects(nobody.serverTimeUtc(), (err: unknown) => {
          assert.ok(err instanceof StudioUnavailableError);
          assert.equal(err.host, `127.0.0.1:${port}`);
          return true;
        });
      } finally {
        await nobody.close();
      }
    });

    it('creates a person stack in one go, with defaults, and announces nothing', async () => {
      sink.received.length = 0;
      const swd = new Date('2024-05-01T10:00:00.123Z');
      const result = await client.writePersonStack({
        personId: null, today, sosyncWriteDate: swd, sosyncFsoId: 501,
        person: { Vorname: 'Jörg', Name: 'Müßig-Öztürk', Geburtsdatum: '1980-02-29', GeschlechttypID: 290, Titel: null },
        address: { Strasse: 'Schloßstraße', Hausnummer: '7a', PLZ: '1010', Ort: 'Wien', IndividuelleAnrede: 'Lieber Jörg' },
        email: { EmailVor: 'jörg.müßig', EmailNach: 'example.at' },
        phone: '+43 1 234567', mobile: '+43 664 1234567',
        donationReceipt: true, donationDeductionOptOut: false, newsletter: true,
      });
      assert.equal(result.answer, 'success');
      assert.equal(result.created, true);
      assert.ok(result.request.some((r) => r.table === 'dbo.Person' && r.action === 'insert'));
      assert.ok(JSON.stringify(result.request).includes('Schloßstraße'));

      const stack = await client.readPersonStack(result.personId, today);
      assert.ok(stack);
      assert.equal(stack.person.Vorname, 'Jörg');
      assert.equal(stack.person.Name, 'Müßig-Öztürk');
      assert.equal(stack.person.Geburtsdatum, '1980-02-29');
      assert.equal(stack.person.PersontypID, 101);
      assert.equal(stack.person.NationalitätID, 1);
      assert.equal(stack.person.Titel, null);
      assert.equal(stack.person.noSyncJobSwitch, false, 'the trigger re-arms the switch');
      assert.equal(stack.address?.Strasse, 'Schloßstraße');
      assert.equal(stack.address?.AdresstypID, 311);
      assert.equal(stack.address?.LandID, 1);
      assert.equal(stack.address?.AnredeformtypID, 324);
      assert.equal(stack.address?.IndividuelleAnrede, 'Lieber Jörg');
      assert.equal(stack.address?.GültigMonatArray, '111111111111');
      assert.equal(stack.address?.GültigVon, today);
      assert.equal(stack.address?.GültigBis, '2099-12-31');
      assert.equal(stack.email?.EmailVor, 'jörg.müßig');
      assert.equal(stack.email?.AnredeformtypID, 321);
      assert.equal(stack.phone?.Rufnummer, '+43 1 234567');
      assert.equal(stack.mobile?.TelefontypID, 401);
      assert.equal(stack.fax, null);
      assert.equal(stack.donationReceipt?.zGruppeDetailID, 20168);
      assert.equal(stack.donationReceipt?.Steuerung, true);
      assert.equal(stack.donationDeductionOptOut, null);
      assert.equal(stack.newsletter?.zGruppeDetailID, 30104);
      assert.equal(stack.sosyncWriteDate?.toISOString(), swd.toISOString());
      assert.equal(stack.sosyncFsoId, 501);
      for (const row of [stack.person, stack.address, stack.email, stack.phone, stack.mobile, stack.donationReceipt, stack.newsletter]) {
        assert.equal(row?.sosync_fso_id, 501);
        assert.equal(row?.sosync_write_date?.toISOString(), swd.toISOString());
      }
      assert.ok(stack.writeDate instanceof Date);
      assert.equal(await client.findPersonIdByFsoId(501), result.personId);
      assert.equal(await client.findPersonIdByFsoId(999_999), null);
      assert.deepEqual(await announcements(), [], 'sosync writes carry noSyncJobSwitch = 1');
    });

    it('updates a stack: ends rows, keeps an equal phone, moves the FSO id off rows that are no longer current', async () => {
      const created = await client.writePersonStack({
        personId: null, today, sosyncWriteDate: new Date('2024-01-01T00:00:00Z'), sosyncFsoId: 502,
        person: { Vorname: 'Anna', Name: 'Weiß' }, email: { EmailVor: 'anna', EmailNach: 'example.org' },
        phone: '+43 1 555', newsletter: true, donationDeductionOptOut: true,
      });
      // FS's own split of the number into parts must survive an unchanged write.
      await raw.request().input('id', sql.Int, created.personId).query(
        "UPDATE dbo.PersonTelefon SET Landkennzeichen = '+43', Vorwahl = '1', Rufnummer = '555', noSyncJobSwitch = 1 WHERE PersonID = @id");
      const swd = new Date('2024-02-02T12:00:00Z');
      const requestsBefore = standIn.server.requestCount;
      const result = await client.writePersonStack({
        personId: created.personId, today, sosyncWriteDate: swd,
        person: { Name: 'Weiß-Groß' }, phone: '+43 1 555', email: null, newsletter: false, donationDeductionOptOut: false,
        fax: '01 999',
      });
      assert.equal(result.created, false);
      // the transaction's begin and commit; FS's defaults with the stack's first read; the parts'
      // writes in one batch that ends reading the current e-mail's newsletter rows; the newsletter's
      // write with the stack as written; the current rows' FSO ids and the former rows' (all seven
      // tables) in one batch: 6 round trips for this write. 11 when each part was written on its own
      // and the newsletter's rows and the stack were read apart; 14 when the former rows were looked
      // up first and each row was updated on its own, 21 when each table's lookup and FS's defaults
      // were a round trip of their own too
      assert.equal(standIn.server.requestCount - requestsBefore, 6, 'round trips of the write');
      const stack = await client.readPersonStack(created.personId, today);
      assert.ok(stack);
      assert.equal(stack.person.Name, 'Weiß-Groß');
      assert.equal(stack.email, null);
      assert.equal(stack.newsletter, null);
      assert.equal(stack.donationDeductionOptOut, null);
      assert.equal(stack.phone?.Landkennzeichen, '+43');
      assert.equal(stack.phone?.Rufnummer, '555');
      assert.equal(stack.fax?.Rufnummer, '01 999');
      assert.equal(stack.sosyncWriteDate?.toISOString(), swd.toISOString());
      assert.equal(stack.sosyncFsoId, 502, 'kept from the person');
      const ended = await raw.request().input('id', sql.Int, created.personId)
        .query('SELECT PersonEmailID, GültigBis, sosync_fso_id FROM dbo.PersonEmail WHERE PersonID = @id');
      assert.equal(ended.recordset.length, 1);
      assert.equal(ended.recordset[0].sosync_fso_id, null);
      assert.ok((ended.recordset[0]['GültigBis'] as Date).toISOString().slice(0, 10) < today);
      assert.deepEqual(await announcements(), []);
    });

    it('a write that only stamps the FSO id reads the stack once and stamps every current row in one batch', async () => {
      const created = await client.writePersonStack({
        personId: null, today, sosyncWriteDate: new Date('2024-01-01T00:00:00Z'), sosyncFsoId: 601,
        person: { Vorname: 'Lena', Name: 'Stempel' }, email: { EmailVor: 'lena', EmailNach: 'example.org' }, phone: '+43 1 777', donationReceipt: true,
      });
      const stamp = new Date('2024-03-03T08:00:00Z');
      const requestsBefore = standIn.server.requestCount;
      const result = await client.writePersonStack({ personId: created.personId, today, sosyncWriteDate: stamp, sosyncFsoId: 602 });
      // FS's defaults with the stack, then the batch of updates as a transaction of its own (begun
      // and committed in that batch); 4 when the transaction's begin and commit were requests of their own
      assert.equal(standIn.server.requestCount - requestsBefore, 2, 'round trips of the write');
      const stack = (await client.readPersonStack(created.personId, today))!;
      const current = [stack.person, stack.email, stack.phone, stack.donationReceipt];
      assert.deepEqual(current.map((row) => row?.sosync_fso_id), [602, 602, 602, 602], 'every current row carries the new FSO id');
      assert.deepEqual(current.map((row) => row?.sosync_write_date?.toISOString()), current.map(() => stamp.toISOString()));
      assert.deepEqual(result.request.map((w) => `${w.action} ${w.table}`).sort(),
        ['update dbo.Person', 'update dbo.PersonEmail', 'update dbo.PersonGruppe', 'update dbo.PersonTelefon'], 'the job\'s evidence names each row written');
      assert.deepEqual(await announcements(), [], 'sosync writes carry noSyncJobSwitch = 1');
    });

    it('rolls a failing stack write back completely', async () => {
      const count = async () => (await raw.request().query('SELECT COUNT(*) AS n FROM dbo.Person')).recordset[0].n as number;
      const before = await count();
      await assert.rejects(
        client.writePersonStack({
          personId: null, today, sosyncWriteDate: new Date(), person: { Vorname: 'Nie' }, newsletter: true,
        }),
        (err: unknown) => {
          assert.ok(err instanceof StudioInputError);
          assert.match(err.message, /newsletter flag needs a current e-mail/);
          assert.ok(err.request?.some((r) => r.table === 'dbo.Person' && r.action === 'insert'), 'evidence of what was being written');
          assert.equal(err.answer, err.message);
          return true;
        },
      );
      standIn.engine.failStatements([{ match: 'INSERT INTO dbo.[PersonEmail]', message: 'disk full', number: 1105 }]);
      try {
        await assert.rejects(
          client.writePersonStack({
            personId: null, today, sosyncWriteDate: new Date(), person: { Vorname: 'Auch nie' },
            address: { Ort: 'Graz' }, email: { EmailVor: 'x', EmailNach: 'y.at' },
          }),
          (err: unknown) => {
            assert.ok(err instanceof StudioQueryError);
            assert.equal(err.number, 1105);
            assert.equal(err.serverMessage, 'disk full');
            // the person went first (the parts need its id); address and e-mail went in one batch, which failed as a whole
            assert.deepEqual(err.request?.map((r) => `${r.action} ${r.table}`), ['insert dbo.Person'], 'the person was written before the failing batch');
            return true;
          },
        );
      } finally {
        standIn.engine.failStatements([]);
      }
      assert.equal(await count(), before, 'nothing of either attempt is left');
      const addresses = await raw.request().query("SELECT COUNT(*) AS n FROM dbo.PersonAdresse WHERE Ort = 'Graz'");
      assert.equal(addresses.recordset[0].n, 0);
    });

    it('refuses bad input before writing anything', async () => {
      await assert.rejects(client.readPersonStack(-1), StudioInputError);
      await assert.rejects(
        client.xBPKAccount.insert({ Name: 'x', Unbekannt: 1 } as never, { sosyncWriteDate: new Date() }),
        /has no writable column Unbekannt/,
      );
      await assert.rejects(
        client.writePersonStack({ personId: null, sosyncWriteDate: new Date(), person: { Geburtsdatum: '1980-13-45' } }),
        /not a date/,
      );
      assert.equal(await client.readPersonStack(987_654), null);
    });

    it('creates, reads, updates, finds and deletes xBPKAccount and PersonBPK rows', async () => {
      const swd = new Date('2024-03-03T03:03:03.333Z');
      /** FS requests `call` makes */
      const roundTrips = async <T>(call: () => Promise<T>): Promise<[T, number]> => {
        const before = standIn.server.requestCount;
        const result = await call();
        return [result, standIn.server.requestCount - before];
      };
      // each write of one row is one batch, a transaction of its own: one round trip (three when the
      // transaction's begin and commit were requests of their own; five for a delete, whose loop guard was set and reset apart)
      const [company, insertTrips] = await roundTrips(() => client.xBPKAccount.insert({ Name: 'Verein Größenwahn' }, { sosyncWriteDate: swd, sosyncFsoId: 71 }));
      assert.equal(insertTrips, 1, 'round trips of an insert');
      assert.equal(company.answer, 'success');
      assert.deepEqual(company.request[0].values.Name, 'Verein Größenwahn');
      const row = await client.xBPKAccount.read(company.id);
      assert.equal(row?.Name, 'Verein Größenwahn');
      assert.equal(row?.sosync_fso_id, 71);
      assert.equal(row?.sosync_write_date?.toISOString(), swd.toISOString());
      assert.equal(await client.xBPKAccount.findIdByFsoId(71), company.id);
      // a bPK's person and company by their FSO ids, in one batch; each missing one is null
      const personId = await client.findPersonIdByFsoId(501);
      assert.ok(personId !== null, 'the person stack written above carries FSO id 501');
      assert.deepEqual(await client.findBpkOwnersByFsoIds(501, 71), { personId, accountId: company.id });
      assert.deepEqual(await client.findBpkOwnersByFsoIds(999_999, 71), { personId: null, accountId: company.id });
      assert.deepEqual(await client.findBpkOwnersByFsoIds(501, 999_999), { personId, accountId: null });
      const [, updateTrips] = await roundTrips(() => client.xBPKAccount.update(company.id, { Name: 'Verein Ü' }, { sosyncWriteDate: new Date('2024-03-04T00:00:00Z') }));
      assert.equal(updateTrips, 1, 'round trips of an update');
      assert.equal((await client.xBPKAccount.read(company.id))?.Name, 'Verein Ü');
      assert.equal((await client.xBPKAccount.read(company.id))?.sosync_fso_id, 71, 'fso id untouched when not given');
      await assert.rejects(client.xBPKAccount.update(999_999, { Name: 'x' }, { sosyncWriteDate: swd }), /does not exist/);

      const person = await client.writePersonStack({ personId: null, sosyncWriteDate: swd, person: { Vorname: 'B' } });
      const bpk = await client.personBPK.insert({
        PersonID: person.personId, xBPKAccountID: company.id, Anlagedatum: new Date('2024-01-02T03:04:05.678Z'),
        BPKPrivat: 'priv+/=ß', BPKOeffentlich: null, Vorname: 'Zoë', Nachname: 'Groß', Geburtsdatum: '1999-12-31',
        PositivAmUm: new Date('2024-01-02T00:00:00Z'), PositivDaten: '<xml>ä</xml>', FehlerCode: null, FehlerText: null,
      }, { sosyncWriteDate: swd, sosyncFsoId: 81 });
      const b = await client.personBPK.read(bpk.id);
      assert.ok(b);
      assert.equal(b.PersonID, person.personId);
      assert.equal(b.xBPKAccountID, company.id);
      assert.equal(b.Anlagedatum?.toISOString(), '2024-01-02T03:04:05.678Z');
      assert.equal(b.BPKPrivat, 'priv+/=ß');
      assert.equal(b.BPKOeffentlich, null);
      assert.equal(b.Vorname, 'Zoë');
      assert.equal(b.Geburtsdatum, '1999-12-31');
      assert.equal(b.PositivDaten, '<xml>ä</xml>');
      assert.equal(await client.personBPK.findIdByFsoId(81), bpk.id);
      await client.personBPK.update(bpk.id, { FehlerCode: 'E42', FehlerText: 'Fehler ö', FehlerGeburtsdatum: '2000-01-01' }, { sosyncWriteDate: swd });
      const b2 = await client.personBPK.read(bpk.id);
      assert.equal(b2?.FehlerCode, 'E42');
      assert.equal(b2?.FehlerGeburtsdatum, '2000-01-01');

      const [deletedBpk, deleteTrips] = await roundTrips(() => client.personBPK.delete(bpk.id));
      assert.equal(deleteTrips, 1, 'round trips of a delete');
      assert.equal(deletedBpk.deleted, true);
      assert.deepEqual(deletedBpk.request, [{ table: 'dbo.PersonBPK', action: 'delete', id: bpk.id, values: {} }]);
      assert.equal(await client.personBPK.read(bpk.id), null);
      assert.equal((await client.personBPK.delete(bpk.id)).deleted, false);
      assert.equal((await client.xBPKAccount.delete(company.id)).deleted, true);
      assert.equal(await client.xBPKAccount.read(company.id), null);
      const [deletedStack, stackDeleteTrips] = await roundTrips(() => client.deletePersonStack(person.personId));
      assert.equal(deletedStack.deleted, true);
      assert.equal(stackDeleteTrips, 1, 'round trips of a person stack\'s delete (eight tables)');
      assert.deepEqual(deletedStack.request.map((w) => `${w.action} ${w.table}`), ['delete dbo.Person'], 'the job\'s evidence names each row deleted');
      assert.equal(await client.readPersonStack(person.personId), null);
      assert.deepEqual(await announcements(), [], "sosync's deletes are not announced back");
    });

    it('announces a plain FS write exactly once per record and transaction, with the long parameter names', async () => {
      sink.received.length = 0;
      const created = await raw.request().query("INSERT INTO dbo.Person (Vorname, Name) VALUES (N'Plain', N'Schreiber'); SELECT PersonID, sosync_write_date FROM dbo.Person WHERE PersonID = SCOPE_IDENTITY()");
      const personId = created.recordset[0].PersonID as number;
      let got = await announcements();
      assert.equal(got.length, 1);
      assert.deepEqual(Object.keys(got[0]).sort(), ['job_date', 'job_source_model', 'job_source_record_id', 'job_source_sosync_write_date', 'job_source_system']);
      assert.equal(got[0].job_source_system, 'fs');
      assert.equal(got[0].job_source_model, 'dbo.Person');
      assert.equal(got[0].job_source_record_id, personId);
      assert.equal(got[0].job_source_sosync_write_date, (created.recordset[0].sosync_write_date as Date).toISOString());
      assert.match(String(got[0].job_date), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

      // Several rows of one stack in one transaction: one announcement of dbo.Person.
      const tx = new sql.Transaction(raw);
      await tx.begin();
      await new sql.Request(tx).input('id', sql.Int, personId).query(
        "UPDATE dbo.Person SET Name = N'Neu' WHERE PersonID = @id; INSERT INTO dbo.PersonEmail (PersonID, EmailVor, EmailNach) VALUES (@id, 'p', 'x.at')");
      await new sql.Request(tx).input('id', sql.Int, personId).query(
        "INSERT INTO dbo.PersonTelefon (PersonID, TelefontypID, Rufnummer) VALUES (@id, 400, '1')");
      await tx.commit();
      got = await announcements();
      assert.equal(got.length, 1);
      assert.equal(got[0].job_source_model, 'dbo.Person');
      assert.equal(got[0].job_source_record_id, personId);

      // Rolled back: nothing to announce.
      const tx2 = new sql.Transaction(raw);
      await tx2.begin();
      await new sql.Request(tx2).input('id', sql.Int, personId).query("UPDATE dbo.Person SET Name = N'Weg' WHERE PersonID = @id");
      await tx2.rollback();
      assert.deepEqual(await announcements(), []);

      const company = await raw.request().query("INSERT INTO dbo.xBPKAccount (Name) VALUES (N'Firma'); SELECT CAST(SCOPE_IDENTITY() AS int) AS xBPKAccountID");
      const companyId = company.recordset[0].xBPKAccountID as number;
      await raw.request().input('id', sql.Int, companyId).query('DELETE FROM dbo.xBPKAccount WHERE xBPKAccountID = @id');
      got = await announcements();
      assert.equal(got.length, 2);
      assert.equal(got[0].job_source_model, 'dbo.xBPKAccount');
      assert.equal(got[0].job_source_type, undefined);
      assert.equal(got[1].job_source_record_id, companyId);
      assert.equal(got[1].job_source_type, 'delete');
    });

    it('carries every data type both ways, NULL included', async () => {
      const d = new Date('2023-07-08T09:10:11.123Z');
      const r = await raw.request()
        .input('i', sql.Int, -42).input('b', sql.Bit, true).input('s', sql.NVarChar, 'äöüß ÄÖÜ €')
        .input('d', sql.Date, new Date('1999-12-31T00:00:00Z')).input('t', sql.DateTime2(3), d)
        .input('n', sql.NVarChar, null).input('ni', sql.Int, null)
        .query('SELECT @i AS i, @b AS b, @s AS s, @d AS d, @t AS t, @n AS n, @ni AS ni, CAST(@d AS DATE) AS d2, ISNULL(@n, N\'leer\') AS dflt');
      const row = r.recordset[0];
      assert.equal(row.i, -42);
      assert.equal(row.b, true);
      assert.equal(row.s, 'äöüß ÄÖÜ €');
      assert.equal((row.d as Date).toISOString(), '1999-12-31T00:00:00.000Z');
      assert.equal((row.t as Date).toISOString(), d.toISOString());
      assert.equal(row.n, null);
      assert.equal(row.ni, null);
      assert.equal((row.d2 as Date).toISOString(), '1999-12-31T00:00:00.000Z');
      assert.equal(row.dflt, 'leer');
    });

    it('answers an unsupported statement with SQL Server error 102, and an unknown table with 208', async () => {
      await assert.rejects(raw.request().query('MERGE dbo.Person AS t USING dbo.Person AS s ON 1 = 1'), (err: unknown) => {
        const e = err as { number: number; message: string };
        assert.equal(e.number, 102);
        assert.equal(e.message, "Incorrect syntax near 'MERGE'.");
        return true;
      });
      await assert.rejects(raw.request().query('SELECT * FROM dbo.Nirgends'), (err: unknown) => {
        assert.equal((err as { number: number }).number, 208);
        assert.match((err as Error).message, /Invalid object name 'dbo.Nirgends'/);
        return true;
      });
      const ok = await raw.request().query('SELECT 1 AS one');
      assert.equal(ok.recordset[0].one, 1, 'the connection still works after errors');
    });

    it('runs concurrent sessions and transactions side by side', async () => {
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => client.writePersonStack({
        personId: null, today, sosyncWriteDate: new Date(), person: { Vorname: `Parallel ${i}` },
        email: { EmailVor: `p${i}`, EmailNach: 'example.at' }, donationReceipt: i % 2 === 0,
      })));
      const ids = new Set(results.map((r) => r.personId));
      assert.equal(ids.size, 8);
      const stacks = await Promise.all([...ids].map((id) => client.readPersonStack(id, today)));
      for (const s of stacks) assert.match(s?.email?.EmailVor ?? '', /^p\d$/);
    });

    it('reports injected statement failures and refused connections from the TDS server', async () => {
      standIn.server.failStatements('Injected by test');
      try {
        await assert.rejects(client.typenDefault(200525), (err: unknown) => {
          assert.ok(err instanceof StudioQueryError);
          assert.equal(err.number, 50000);
          assert.match(err.message, /Injected by test/);
          assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${standIn.port}`));
          return true;
        });
      } finally {
        standIn.server.failStatements(null);
      }
      const fresh = createStudioClient(clientOptions(standIn.port, { connectTimeoutMs: 2000 }), logger);
      standIn.server.refuseConnections(true);
      try {
        await assert.rejects(fresh.serverTimeUtc(), StudioUnavailableError);
      } finally {
        standIn.server.refuseConnections(false);
      }
      assert.ok((await fresh.serverTimeUtc()) instanceof Date, 'works again once the server accepts');
      await fresh.close();
    });
  });
}
