/**
 * The pieces under the sandbox's start: the bulk stack reader against the FS client (same
 * current-row rule), the synced share it writes, the FSO store's snapshot/restore, and the
 * data-directory checks of startSandbox.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { seedStudio } from '../../sandbox/studio/seed.ts';
import { startStudioStandIn, type StudioStandIn } from '../../sandbox/studio/index.ts';
import { OnlineStore } from '../../sandbox/online/store.ts';
import { linkSandbox, readStacks } from '../../sandbox/link.ts';
import { startSandbox, ONLINE_SNAPSHOT_FILE, SANDBOX_PGLITE_DIR } from '../../sandbox/start.ts';
import { createStudioClient, type StudioClient } from '../../src/adapters/studio/index.ts';
import { readConfig } from '../../src/config/index.ts';
import { silentLogger } from '../../src/log.ts';
import { freePort } from '../support/ports.ts';

const today = new Date().toISOString().slice(0, 10);

describe('readStacks: the bulk reader picks the same current rows as the FS client', () => {
  let db: PGlite;
  let standIn: StudioStandIn;
  let client: StudioClient;
  let personIds: number[];

  before(async () => {
    db = await PGlite.create();
    ({ personIds } = await seedStudio(db, { persons: 12 }));
    const [p1, p2, p3, p4] = personIds;
    // rows that are not, or no longer, current — and newer ones that are
    await db.exec(`
      INSERT INTO dbo."PersonAdresse" ("PersonID", "Strasse", "PLZ", "Ort", "LandID", "GültigMonatArray", "GültigVon", "GültigBis", "noSyncJobSwitch")
        VALUES (${p1}, 'Neue Gasse', '1020', 'Wien', 1, '111111111111', '2021-01-01', '2099-12-31', 1),
               (${p2}, 'Sommerweg', '9020', 'Klagenfurt', 1, '000001110000', '2021-01-01', '2099-12-31', 1);
      UPDATE dbo."PersonEmail" SET "GültigBis" = '2021-12-31', "noSyncJobSwitch" = 1 WHERE "PersonID" = ${p3};
      INSERT INTO dbo."PersonTelefon" ("PersonID", "TelefontypID", "Rufnummer", "GültigVon", "GültigBis", "noSyncJobSwitch")
        VALUES (${p4}, 403, '+43 1 999', '2021-01-01', '2099-12-31', 1), (${p4}, 400, '+43 1 111', '2021-01-01', '2021-06-30', 1);
      INSERT INTO dbo."PersonGruppe" ("PersonID", "zGruppeDetailID", "Steuerung", "GültigVon", "GültigBis", "noSyncJobSwitch")
        VALUES (${p4}, 110493, 1, '2021-01-01', '2099-12-31', 1);
    `);
    standIn = await startStudioStandIn({ port: 0, db, databaseName: 'mdb_t', users: [{ user: 'u', password: 'p' }], logger: silentLogger() });
    client = createStudioClient({
      host: '127.0.0.1', port: standIn.port, database: 'mdb_t', user: 'u', password: 'p',
      encrypt: false, trustServerCertificate: true, connectTimeoutMs: 10_000, requestTimeoutMs: 30_000,
    }, silentLogger());
  });

  after(async () => {
    await client?.close();
    await standIn?.close();
    await db?.close();
  });

  test('every stack equals readPersonStack, including the edited ones', async () => {
    const bulk = await readStacks(db, personIds, today);
    assert.equal(bulk.length, personIds.length);
    for (const stack of bulk) {
      assert.deepEqual(stack, await client.readPersonStack(stack.personId, today), `dbo.Person ${stack.personId}`);
    }
    const [s1, s2, s3, s4] = personIds.map((id) => bulk.find((s) => s.personId === id)!);
    assert.equal(s1.address!.Strasse, 'Neue Gasse', 'the newer full-year address wins');
    assert.notEqual(s2.address!.Strasse, 'Sommerweg', 'a full-year address beats a newer partial one');
    assert.equal(s3.email, null, 'an ended e-mail is not current');
    assert.equal(s4.fax!.Rufnummer, '+43 1 999');
    assert.ok(s4.donationDeductionOptOut);
  });

  test('linkSandbox stamps the synced rows: the FS client sees each linked stack with its FSO id and the same stamp', async () => {
    const store = new OnlineStore();
    const result = await linkSandbox({ db, store, personIds, companyIds: [], linkedShare: 0.5 });
    assert.equal(result.partners.length, 6);
    assert.equal(result.bpks.length, 0, 'no companies, no bPKs');
    for (const { fs: personId, fso } of result.partners) {
      const stack = (await client.readPersonStack(personId, today))!;
      assert.equal(stack.sosyncFsoId, fso);
      const partner = store.get('res.partner', fso)!;
      assert.equal(partner.sosync_fs_id, personId);
      assert.equal(partner.sosync_write_date, stack.sosyncWriteDate!.toISOString());
      const current = [stack.person, stack.address, stack.email, stack.phone, stack.mobile, stack.fax, stack.donationReceipt, stack.donationDeductionOptOut, stack.newsletter];
      for (const row of current) if (row) assert.equal(row.sosync_fso_id, fso);
    }
    const unlinked = personIds.filter((id) => !result.partners.some((p) => p.fs === id));
    for (const id of unlinked) assert.equal((await client.readPersonStack(id, today))!.sosyncFsoId, null);
  });
});

describe('OnlineStore snapshot and restore', () => {
  test('ids, rows and the next id survive; users stay out of the snapshot', () => {
    const a = new OnlineStore();
    a.addUser('sosync', 'secret');
    const company = a.create('res.company', { name: 'Verein', sosync_write_date: '2024-01-01T00:00:00.000Z' });
    const p1 = a.create('res.partner', { firstname: 'Eva', lastname: 'Huber', country_id: a.countryId('AT') });
    const p2 = a.create('res.partner', { firstname: 'Olaf', lastname: 'Berger' });
    a.remove('res.partner', [p1]);
    const snapshot = JSON.parse(JSON.stringify(a.snapshot()));
    assert.equal(snapshot.models['res.users'], undefined);
    assert.doesNotMatch(JSON.stringify(snapshot), /secret/);

    const b = new OnlineStore();
    b.restore(snapshot);
    assert.deepEqual(b.all('res.partner'), a.all('res.partner'));
    assert.deepEqual(b.get('res.company', company), a.get('res.company', company));
    assert.equal(b.create('res.partner', { lastname: 'Neu' }), p2 + 1, 'a deleted id is not handed out again');
    assert.equal(b.countryId('AT'), a.countryId('AT'));
    assert.equal(b.checkLogin('sosync', 'secret'), false, 'logins come from whoever starts the stand-in');
  });

  test('a bad snapshot is refused with a clear error and changes nothing', () => {
    const store = new OnlineStore();
    const id = store.create('res.partner', { lastname: 'Bleibt' });
    const before = store.all('res.partner');
    const good = store.snapshot();
    const bad: Array<[unknown, RegExp]> = [
      [null, /not an FSO stand-in snapshot/],
      [{ ...good, version: 2 }, /version 1/],
      [{ ...good, models: { ...good.models, 'res.nothing': { nextId: 1, rows: [] } } }, /unknown model res\.nothing/],
      [{ ...good, models: { ...good.models, 'res.partner': { nextId: 1, rows: [{ id: 5 }] } } }, /nextId 1 is not above its highest id 5/],
      [{ ...good, models: { 'res.company': { nextId: 9, rows: [] }, 'res.partner': { nextId: 3, rows: [{ id: 'x' }] } } }, /without a positive integer id/],
    ];
    for (const [snapshot, message] of bad) {
      assert.throws(() => store.restore(snapshot), message);
      assert.deepEqual(store.all('res.partner'), before);
    }
    assert.equal(store.create('res.partner', { lastname: 'Danach' }), id + 1);
  });
});

describe('startSandbox refuses a data directory it cannot trust', () => {
  let dir: string;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sosync-sandbox-dir-')); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function configFor(dataDir: string) {
    return readConfig([
      '--sandbox_data_dir', dataDir, '--sandbox_persons', '5',
      '--sandbox_fso_port', String(await freePort()), '--sandbox_fs_port', String(await freePort()), '--sandbox_ntp_port', String(await freePort()),
    ]).config;
  }

  test('FS data without the FSO snapshot (an interrupted first start)', async () => {
    const d = path.join(dir, 'half');
    fs.mkdirSync(path.join(d, SANDBOX_PGLITE_DIR), { recursive: true });
    fs.writeFileSync(path.join(d, SANDBOX_PGLITE_DIR, 'PG_VERSION'), '17\n');
    await assert.rejects(startSandbox(await configFor(d), silentLogger()), new RegExp(`${d.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is incomplete .*delete it`));
    assert.deepEqual(fs.readdirSync(d), [SANDBOX_PGLITE_DIR], 'nothing written');
  });

  test('a data directory from before the shared PGlite (FS and the sync table in databases of their own)', async () => {
    for (const old of ['studio', 'sync_table']) {
      const d = path.join(dir, `old-${old}`);
      fs.mkdirSync(path.join(d, old), { recursive: true });
      fs.writeFileSync(path.join(d, old, 'PG_VERSION'), '17\n');
      await assert.rejects(startSandbox(await configFor(d), silentLogger()), new RegExp(`${d.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is from an older sosync \\(separate "${old}" database\\) — delete it to start afresh$`));
      assert.deepEqual(fs.readdirSync(d), [old], 'nothing written');
    }
  });

  test('an unreadable FSO snapshot', async () => {
    const d = path.join(dir, 'broken');
    fs.mkdirSync(path.join(d, SANDBOX_PGLITE_DIR), { recursive: true });
    fs.writeFileSync(path.join(d, SANDBOX_PGLITE_DIR, 'PG_VERSION'), '17\n');
    fs.writeFileSync(path.join(d, ONLINE_SNAPSHOT_FILE), '{"format":"something else"}');
    await assert.rejects(startSandbox(await configFor(d), silentLogger()), /cannot restore the FSO stand-in from .*not an FSO stand-in snapshot/);
    assert.equal(fs.readFileSync(path.join(d, ONLINE_SNAPSHOT_FILE), 'utf8'), '{"format":"something else"}', 'left as it was');
  });
});
