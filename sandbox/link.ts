/**
 * The sandbox's "already synced" share, written before anything listens: every company, every
 * n-th person and bPKs of some of them exist on both sides with each other's ids and equal
 * sosync_write_date, so sosync sees them as up to date. Then a few FSO-only partners and bPKs that
 * nobody has synced yet.
 *
 * Running the flows through the clients for each record would take minutes on the stand-ins, so
 * the stacks are read in bulk straight from the FS database (same current-row rule as the FS
 * client) and turned into FSO values by the flows' own mapping functions (`stackToPartner`,
 * `bpkToStudio`). The tests hold the result against the real client and flow.
 */
import type { PGlite } from '@electric-sql/pglite';
import type {
  PersonAdresseAMRow, PersonAdresseRow, PersonEmailGruppeRow, PersonEmailRow, PersonGruppeRow, PersonRow,
  PersonStack, PersonTelefonRow, XBPKAccountRow,
} from '../src/adapters/studio/index.ts';
import { completeStack, currentRows, groupIds, phoneTypeIds } from '../src/adapters/studio/index.ts';
import { normaliseOdooRecord, type FieldTypes } from '../src/adapters/online/index.ts';
import { stackToPartner } from '../src/flows/partnerMapping.ts';
import { bpkToStudio } from '../src/flows/partnerBpk.ts';
import { formatSosyncWriteDate } from '../src/flows/onlineModel.ts';
import type { OnlineStore, Row } from './online/store.ts';

export interface LinkOptions {
  /** the FS stand-in's database, seeded */
  db: PGlite;
  /** the FSO stand-in's store (writes here announce nothing) */
  store: OnlineStore;
  /** PersonIDs and xBPKAccountIDs the FS seed made */
  personIds: number[];
  companyIds: number[];
  /** share of persons synced; default 0.2 (every fifth person) */
  linkedShare?: number;
  /** the day the current-row rule looks at; default today (UTC) */
  today?: string;
}

export interface LinkResult {
  /** FS id ↔ FSO id of the synced records */
  companies: Array<{ fs: number; fso: number }>;
  partners: Array<{ fs: number; fso: number }>;
  bpks: Array<{ fs: number; fso: number }>;
  /** FSO records nobody has synced */
  onlineOnlyPartnerIds: number[];
  onlineOnlyBpkIds: number[];
}

// --- FS rows as the FS client hands them out -------------------------------------------------

const datetimeColumns = new Set(['sosync_write_date', 'write_date', 'Anlagedatum', 'PositivAmUm', 'FehlerAmUm']);
const bitColumns = new Set(['noSyncJobSwitch', 'Steuerung']);

/** to_jsonb gives dates as "YYYY-MM-DD" and timestamps without zone (they are UTC); bits as 0/1. */
function fsRow<T>(json: Record<string, unknown>): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json)) {
    if (datetimeColumns.has(k) && typeof v === 'string') out[k] = new Date(`${v}Z`);
    else if (bitColumns.has(k)) out[k] = v === 1 || v === true;
    else out[k] = v;
  }
  return out as T;
}

/** "YYYY-MM-DD HH:MM:SS.mmm" in UTC, what a timestamp(3) column takes */
const pgTimestamp = (d: Date) => d.toISOString().replace('T', ' ').replace('Z', '');

async function jsonRows<T>(db: PGlite, sql: string, params: unknown[]): Promise<T[]> {
  const r = await db.query<{ j: Record<string, unknown> }>(sql, params);
  return r.rows.map((row) => fsRow<T>(row.j));
}

// the current-row rule of SPEC §6.2, as the FS client applies it
const validToday = `("GültigVon" IS NULL OR "GültigVon" <= $2::date) AND ("GültigBis" IS NULL OR "GültigBis" >= $2::date)`;
const monthMaskFirst = `CASE WHEN "GültigMonatArray" IS NULL OR "GültigMonatArray" = '' OR "GültigMonatArray" = '111111111111' THEN 0 ELSE 1 END`;

/** The person stacks of `personIds` (as of `today`), read in a handful of queries. */
export async function readStacks(db: PGlite, personIds: number[], today: string): Promise<PersonStack[]> {
  const p = [personIds, today];
  const persons = await jsonRows<PersonRow>(db, 'SELECT to_jsonb(t) AS j FROM dbo."Person" t WHERE "PersonID" = ANY($1::int[]) AND $2::date IS NOT NULL', p);
  const addresses = await jsonRows<PersonAdresseRow>(db, `SELECT DISTINCT ON ("PersonID") to_jsonb(t) AS j FROM dbo."PersonAdresse" t
    WHERE "PersonID" = ANY($1::int[]) AND ${validToday} ORDER BY "PersonID", ${monthMaskFirst}, "PersonAdresseID" DESC`, p);
  const addressAms = await jsonRows<PersonAdresseAMRow>(db, `SELECT DISTINCT ON ("PersonAdresseID") to_jsonb(t) AS j FROM dbo."PersonAdresseAM" t
    WHERE "PersonAdresseID" = ANY($1::int[]) ORDER BY "PersonAdresseID", "PersonAdresseAMID" DESC`, [addresses.map((a) => a.PersonAdresseID)]);
  const emails = await jsonRows<PersonEmailRow>(db, `SELECT DISTINCT ON ("PersonID") to_jsonb(t) AS j FROM dbo."PersonEmail" t
    WHERE "PersonID" = ANY($1::int[]) AND ${validToday} ORDER BY "PersonID", ${monthMaskFirst}, "PersonEmailID" DESC`, p);
  const phones = await jsonRows<PersonTelefonRow>(db, `SELECT DISTINCT ON ("PersonID", "TelefontypID") to_jsonb(t) AS j FROM dbo."PersonTelefon" t
    WHERE "PersonID" = ANY($1::int[]) AND "TelefontypID" IN (${Object.values(phoneTypeIds).join(', ')}) AND ${validToday}
    ORDER BY "PersonID", "TelefontypID", ${monthMaskFirst}, "PersonTelefonID" DESC`, p);
  const groups = await jsonRows<PersonGruppeRow>(db, `SELECT DISTINCT ON ("PersonID", "zGruppeDetailID") to_jsonb(t) AS j FROM dbo."PersonGruppe" t
    WHERE "PersonID" = ANY($1::int[]) AND "zGruppeDetailID" IN (${groupIds.donationDeductionOptOut}, ${groupIds.donationReceipt}) AND ${validToday}
    ORDER BY "PersonID", "zGruppeDetailID", "PersonGruppeID" DESC`, p);
  const newsletters = await jsonRows<PersonEmailGruppeRow>(db, `SELECT DISTINCT ON ("PersonEmailID") to_jsonb(t) AS j FROM dbo."PersonEmailGruppe" t
    WHERE "PersonEmailID" = ANY($1::int[]) AND "zGruppeDetailID" = ${groupIds.newsletter} AND ${validToday}
    ORDER BY "PersonEmailID", "PersonEmailGruppeID" DESC`, [emails.map((e) => e.PersonEmailID), today]);

  // the stack's dates are maxima over all of the person's rows, current or not (as the FS client has them)
  const detailTables = ['PersonAdresse', 'PersonAdresseAM', 'PersonEmail', 'PersonTelefon', 'PersonGruppe'];
  const maxima = await jsonRows<{ PersonID: number; write_date: Date | null; sosync_write_date: Date | null }>(db, `
    SELECT to_jsonb(x) AS j FROM (
      SELECT "PersonID", max(write_date) AS write_date, max(sosync_write_date) AS sosync_write_date FROM (
        ${detailTables.map((t) => `SELECT "PersonID", write_date, sosync_write_date FROM dbo."${t}" WHERE "PersonID" = ANY($1::int[])`).join(' UNION ALL ')}
        UNION ALL SELECT e."PersonID", g.write_date, g.sosync_write_date FROM dbo."PersonEmailGruppe" g
          JOIN dbo."PersonEmail" e ON e."PersonEmailID" = g."PersonEmailID" WHERE e."PersonID" = ANY($1::int[])
      ) rows GROUP BY "PersonID") x`, [personIds]);
  const maximaOf = new Map(maxima.map((m) => [m.PersonID, m]));

  const byPerson = <T extends { PersonID: number }>(rows: T[]) => new Map(rows.map((r) => [r.PersonID, r]));
  const addressOf = byPerson(addresses);
  const amOf = new Map(addressAms.map((r) => [r.PersonAdresseID, r]));
  const emailOf = byPerson(emails);
  const phoneOf = (kind: keyof typeof phoneTypeIds) => byPerson(phones.filter((r) => r.TelefontypID === phoneTypeIds[kind]));
  const [phone, mobile, fax] = [phoneOf('phone'), phoneOf('mobile'), phoneOf('fax')];
  const groupOf = (id: number) => byPerson(groups.filter((r) => r.zGruppeDetailID === id));
  const [optOut, receipt] = [groupOf(groupIds.donationDeductionOptOut), groupOf(groupIds.donationReceipt)];
  const newsletterOf = new Map(newsletters.map((r) => [r.PersonEmailID, r]));

  return persons.map((person) => {
    const id = person.PersonID;
    const address = addressOf.get(id) ?? null;
    const email = emailOf.get(id) ?? null;
    const parts = {
      personId: id,
      person,
      address,
      addressAm: address ? amOf.get(address.PersonAdresseID) ?? null : null,
      email,
      phone: phone.get(id) ?? null,
      mobile: mobile.get(id) ?? null,
      fax: fax.get(id) ?? null,
      donationDeductionOptOut: optOut.get(id) ?? null,
      donationReceipt: receipt.get(id) ?? null,
      newsletter: email ? newsletterOf.get(email.PersonEmailID) ?? null : null,
    };
    const detail = maximaOf.get(id);
    return completeStack(parts, detail ? [detail] : []);
  });
}

/**
 * What sosync's write leaves on FS rows: the FSO id and the sync stamp, written with
 * noSyncJobSwitch = 1 so the FS triggers keep the stamp and announce nothing.
 */
async function stampFsRows(db: PGlite, table: string, key: string, rows: Array<{ id: number; fso: number; stamp: Date }>): Promise<void> {
  if (rows.length === 0) return;
  await db.query(
    `UPDATE dbo."${table}" t SET sosync_fso_id = v.fso, sosync_write_date = v.stamp::timestamp(3), "noSyncJobSwitch" = 1
       FROM unnest($1::int[], $2::int[], $3::text[]) AS v(id, fso, stamp) WHERE t."${key}" = v.id`,
    [rows.map((r) => r.id), rows.map((r) => r.fso), rows.map((r) => pgTimestamp(r.stamp))],
  );
}

// --- FSO-only demo records -------------------------------------------------------------------

const firstnames = ['Theresa', 'Valentin', 'Magdalena', 'Sebastian', 'Johanna', 'Maximilian', 'Rosa', 'Ferdinand'];
const lastnames = ['Aigner', 'Ebner', 'Haas', 'Koller', 'Lechner', 'Reiter', 'Schmid', 'Wimmer'];
const places: Array<[zip: string, city: string, country: string]> = [
  ['3100', 'St. Pölten', 'AT'], ['7000', 'Eisenstadt', 'AT'], ['6900', 'Bregenz', 'AT'], ['20095', 'Hamburg', 'DE'],
];

export async function linkSandbox(options: LinkOptions): Promise<LinkResult> {
  const { db, store } = options;
  const today = options.today ?? new Date().toISOString().slice(0, 10);
  const share = options.linkedShare ?? 0.2;
  const stampNow = () => new Date().toISOString();

  await db.exec('BEGIN');
  try {
    // companies: all of them
    const accounts = await jsonRows<XBPKAccountRow>(db, 'SELECT to_jsonb(t) AS j FROM dbo."xBPKAccount" t WHERE "xBPKAccountID" = ANY($1::int[]) ORDER BY "xBPKAccountID"', [options.companyIds]);
    const companies = accounts.map((row) => {
      const stamp = row.sosync_write_date ?? row.write_date;
      const fso = store.create('res.company', { name: row.Name ?? '', sosync_fs_id: row.xBPKAccountID, sosync_write_date: formatSosyncWriteDate(stamp) });
      return { fs: row.xBPKAccountID, fso, stamp };
    });
    await stampFsRows(db, 'xBPKAccount', 'xBPKAccountID', companies.map((c) => ({ id: c.fs, fso: c.fso, stamp: c.stamp })));

    // persons: every n-th one, mapped by the partner flow's own function
    const every = share > 0 ? Math.max(1, Math.round(1 / share)) : 0;
    const linkedIds = every > 0 ? options.personIds.filter((_, i) => i % every === 0) : [];
    const stacks = await readStacks(db, linkedIds, today);
    const isoOfLand = new Map((await db.query<{ id: number; code: string }>('SELECT "LandID" AS id, "IsoCode2" AS code FROM dbo."Land"')).rows.map((r) => [r.id, r.code]));
    const stamped = new Map<string, Array<{ id: number; fso: number; stamp: Date }>>();
    const partners = stacks.map((stack) => {
      const stamp = stack.sosyncWriteDate ?? stack.writeDate;
      const { values, landId } = stackToPartner(stack);
      const code = landId !== null ? isoOfLand.get(landId) : undefined;
      const fso = store.create('res.partner', {
        ...values,
        country_id: (code && store.countryId(code)) ?? false,
        sosync_fs_id: stack.personId,
        sosync_write_date: formatSosyncWriteDate(stamp),
      });
      for (const r of currentRows(stack)) {
        const key = `${r.table.name}\t${r.table.key}`;
        if (!stamped.has(key)) stamped.set(key, []);
        stamped.get(key)!.push({ id: r.id, fso, stamp });
      }
      return { fs: stack.personId, fso };
    });
    for (const [key, rows] of stamped) {
      const [table, column] = key.split('\t');
      await stampFsRows(db, table, column, rows);
    }

    // bPKs are born in FSO: every other synced partner has one, copied to FS as the bPK flow does
    const bpkModel = store.model('res.partner.bpk');
    const bpkTypes: FieldTypes = Object.fromEntries(Object.entries(bpkModel.fields).map(([name, f]) => [name, f.type]));
    const bpks: Array<{ fs: number; fso: number }> = [];
    for (const [i, partner] of partners.entries()) {
      if (i % 2 !== 0 || companies.length === 0) continue;
      const company = companies[(i / 2) % companies.length];
      const p = store.get('res.partner', partner.fso)!;
      const stamp = stampNow();
      const fso = store.create('res.partner.bpk', {
        BPKRequestPartnerID: partner.fso,
        BPKRequestCompanyID: company.fso,
        BPKRequestFirstname: p.firstname,
        BPKRequestLastname: p.lastname,
        BPKRequestBirthdate: p.birthdate_web,
        BPKRequestZIP: p.zip,
        BPKRequestDate: '2024-03-01 10:00:00',
        BPKPrivate: `PRV${String(partner.fs).padStart(7, '0')}sandbox=`,
        BPKPublic: `PUB${String(partner.fs).padStart(7, '0')}sandbox=`,
        BPKResponseData: `<response ok="true" partner="${partner.fso}"/>`,
        sosync_write_date: stamp,
      });
      const values: Record<string, unknown> = {
        ...bpkToStudio(normaliseOdooRecord(store.toOdoo('res.partner.bpk', fso), bpkTypes)),
        PersonID: partner.fs,
        xBPKAccountID: company.fs,
        sosync_fso_id: fso,
        sosync_write_date: new Date(stamp),
        noSyncJobSwitch: 1,
      };
      const columns = Object.keys(values);
      const r = await db.query<{ id: number }>(
        `INSERT INTO dbo."PersonBPK" (${columns.map((c) => `"${c}"`).join(', ')}) VALUES (${columns.map((_, k) => `$${k + 1}`).join(', ')}) RETURNING "PersonBPKID" AS id`,
        columns.map((c) => (values[c] instanceof Date ? pgTimestamp(values[c] as Date) : values[c] ?? null)),
      );
      const fs = r.rows[0].id;
      store.update('res.partner.bpk', [fso], { sosync_fs_id: fs });
      bpks.push({ fs, fso });
    }
    await db.exec('COMMIT');

    // FSO-only: partners and bPKs nobody has synced yet (no FS id, no announcement)
    const onlineOnlyPartnerIds: number[] = [];
    const onlineOnlyBpkIds: number[] = [];
    const onlyCount = Math.max(3, Math.round(options.personIds.length * 0.02));
    for (let i = 0; i < onlyCount; i++) {
      const firstname = firstnames[i % firstnames.length];
      const lastname = lastnames[(i * 3) % lastnames.length];
      const [zip, city, country] = places[i % places.length];
      const values: Row = {
        firstname,
        lastname,
        gender: i % 2 === 0 ? 'female' : 'male',
        birthdate_web: `19${String(60 + (i % 40)).padStart(2, '0')}-0${1 + (i % 9)}-1${i % 10}`,
        street: 'Neubaugasse',
        street_number_web: String(1 + i),
        zip,
        city,
        country_id: store.countryId(country) ?? false,
        email: `${firstname}.${lastname}.online${i}@example.net`.toLowerCase(),
        mobile: i % 2 === 0 ? `+43 660 ${String(2_000_000 + i * 733).padStart(7, '0')}` : false,
        donation_receipt_web: i % 3 === 0,
        newsletter_web: i % 2 === 1,
        sosync_write_date: stampNow(),
      };
      const id = store.create('res.partner', values);
      onlineOnlyPartnerIds.push(id);
      if (i % 2 === 0 && companies.length > 0) {
        onlineOnlyBpkIds.push(store.create('res.partner.bpk', {
          BPKRequestPartnerID: id,
          BPKRequestCompanyID: companies[(i / 2) % companies.length].fso,
          BPKRequestFirstname: firstname,
          BPKRequestLastname: lastname,
          BPKErrorRequestDate: '2024-03-02 11:00:00',
          BPKErrorCode: 'F230',
          BPKErrorText: 'Person not found in the central register',
          sosync_write_date: stampNow(),
        }));
      }
    }
    return { companies: companies.map(({ fs, fso }) => ({ fs, fso })), partners, bpks, onlineOnlyPartnerIds, onlineOnlyBpkIds };
  } catch (err) {
    await db.exec('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
