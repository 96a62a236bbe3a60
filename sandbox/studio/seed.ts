/**
 * Deterministic demo data for the FS stand-in: persons with address, e-mail, phones and groups,
 * companies (xBPKAccount) and PersonBPK rows. Written in bulk, straight into PostgreSQL, with
 * noSyncJobSwitch = 1 so the triggers announce nothing.
 */
import { createBackend, type BackendConnection, type StudioDatabase } from './sql/backend.ts';
import { setUpSchema } from './sql/engine.ts';
import { formatUtcDate, formatUtcTimestamp } from './sql/values.ts';
import {
  genderTypeIds, groupIds, newAddressTypeId, newPersonTypeId, phoneTypeIds, salutationTypeIds,
} from '../../src/adapters/studio/fsIds.ts';

export interface StudioSeedOptions {
  persons: number;
  /** default: one per 200 persons, at least 1 */
  companies?: number;
  /** every n-th person gets a PersonBPK row; default 4 (0: none) */
  bpkEvery?: number;
  /** same seed, same data; default 1 */
  seed?: number;
  /** sosync_write_date of the seeded rows; default now */
  sosyncWriteDate?: Date;
  /** first day of validity of detail rows; default 2020-01-01 */
  validFrom?: string;
}

export interface StudioSeedResult {
  personIds: number[];
  companyIds: number[];
  personBpkIds: number[];
}

const firstNames = ['Anna', 'Jörg', 'Maria', 'Lukas', 'Sophie', 'Günther', 'Elena', 'Tobias', 'Jürgen', 'Lena', 'Martin', 'Zoë', 'Stefan', 'Katharina', 'Björn', 'Ines'];
const lastNames = ['Müller', 'Gruber', 'Huber', 'Wagner', 'Bauer', 'Pichler', 'Moser', 'Hofer', 'Steiner', 'Weiß', 'Fuchs', 'Schröder', 'Größing', 'Lang', 'Brunner', 'Egger'];
const streets = ['Hauptstraße', 'Mariahilfer Straße', 'Bahnhofstraße', 'Kirchengasse', 'Schloßallee', 'Lindenweg', 'Am Anger', 'Mühlgasse'];
const towns: Array<[string, string, number]> = [
  ['1010', 'Wien', 1], ['8010', 'Graz', 1], ['4020', 'Linz', 1], ['5020', 'Salzburg', 1], ['6020', 'Innsbruck', 1],
  ['9020', 'Klagenfurt', 1], ['80331', 'München', 2], ['10115', 'Berlin', 2], ['8001', 'Zürich', 3],
];
const companyNames = ['Tierschutz Austria', 'Hilfswerk Süd', 'Naturfreunde Ost', 'Kinderhilfe Österreich', 'Bergrettung West'];

/** mulberry32: small, fast, deterministic */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const lit = (v: unknown): string => {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'number') return String(v);
  return `'${String(v).replace(/'/g, "''")}'`;
};

async function bulkInsert(conn: BackendConnection, table: string, columns: string[], rows: unknown[][], returning?: string): Promise<number[]> {
  const ids: number[] = [];
  const cols = columns.map((c) => `"${c}"`).join(', ');
  for (let i = 0; i < rows.length; i += 500) {
    const chunk = rows.slice(i, i + 500).map((r) => `(${r.map(lit).join(', ')})`).join(',\n');
    const r = await conn.query(`INSERT INTO dbo."${table}" (${cols}) VALUES ${chunk}${returning ? ` RETURNING "${returning}"` : ''}`);
    if (returning) for (const row of r.rows) ids.push(Number(row[0]));
  }
  return ids;
}

export async function seedStudio(db: StudioDatabase, options: StudioSeedOptions): Promise<StudioSeedResult> {
  if (!Number.isInteger(options.persons) || options.persons < 0) throw new Error('seedStudio: persons must be a whole number ≥ 0');
  const backend = createBackend(db);
  await setUpSchema(backend);
  const rnd = random(options.seed ?? 1);
  const pick = <T>(list: T[]): T => list[Math.floor(rnd() * list.length)];
  const swd = formatUtcTimestamp(options.sosyncWriteDate ?? new Date());
  const from = options.validFrom ?? '2020-01-01';
  const to = '2099-12-31';
  const sync = [swd, 1];
  const syncCols = ['sosync_write_date', 'noSyncJobSwitch'];

  const conn = await backend.acquire();
  try {
    await conn.exec('BEGIN');
    const companyCount = options.companies ?? Math.max(1, Math.ceil(options.persons / 200));
    const companyIds = await bulkInsert(conn, 'xBPKAccount', ['Name', ...syncCols],
      Array.from({ length: companyCount }, (_, i) => [`${companyNames[i % companyNames.length]}${i >= companyNames.length ? ` ${Math.floor(i / companyNames.length) + 1}` : ''}`, ...sync]),
      'xBPKAccountID');

    const people = Array.from({ length: options.persons }, () => {
      const birth = new Date(Date.UTC(1940 + Math.floor(rnd() * 65), Math.floor(rnd() * 12), 1 + Math.floor(rnd() * 28)));
      return {
        first: pick(firstNames), last: pick(lastNames), gender: rnd() < 0.5 ? genderTypeIds.male : genderTypeIds.female, birth: formatUtcDate(birth),
        title: rnd() < 0.1 ? 'Dr.' : null,
      };
    });
    const personIds = await bulkInsert(conn, 'Person',
      ['PersontypID', 'Vorname', 'Name', 'Titel', 'Geburtsdatum', 'GeschlechttypID', 'NationalitätID', 'Anlagedatum', ...syncCols],
      people.map((p) => [newPersonTypeId, p.first, p.last, p.title, p.birth, p.gender, 1, swd, ...sync]), 'PersonID');

    const addresses: unknown[][] = [];
    const emails: unknown[][] = [];
    const phones: unknown[][] = [];
    const groups: unknown[][] = [];
    personIds.forEach((id, i) => {
      const [plz, ort, land] = pick(towns);
      addresses.push([id, newAddressTypeId, salutationTypeIds.standard, pick(streets), String(1 + Math.floor(rnd() * 120)), plz, ort, land, '111111111111', from, to, ...sync]);
      const p = people[i];
      const local = `${p.first}.${p.last}${i}`.toLowerCase().normalize('NFD').replace(/[^a-z0-9.]/g, '');
      emails.push([id, salutationTypeIds.standard, local, pick(['example.at', 'example.org', 'beispiel.de']), '111111111111', from, to, ...sync]);
      if (rnd() < 0.66) phones.push([id, phoneTypeIds.phone, '+43', '1', String(1_000_000 + Math.floor(rnd() * 8_999_999)), '111111111111', from, to, ...sync]);
      if (rnd() < 0.5) phones.push([id, phoneTypeIds.mobile, '+43', '664', String(1_000_000 + Math.floor(rnd() * 8_999_999)), '111111111111', from, to, ...sync]);
      if (rnd() < 0.5) groups.push([id, groupIds.donationReceipt, 1, from, to, ...sync]);
      if (rnd() < 0.1) groups.push([id, groupIds.donationDeductionOptOut, 1, from, to, ...sync]);
    });
    await bulkInsert(conn, 'PersonAdresse',
      ['PersonID', 'AdresstypID', 'AnredeformtypID', 'Strasse', 'Hausnummer', 'PLZ', 'Ort', 'LandID', 'GültigMonatArray', 'GültigVon', 'GültigBis', ...syncCols],
      addresses);
    const emailIds = await bulkInsert(conn, 'PersonEmail',
      ['PersonID', 'AnredeformtypID', 'EmailVor', 'EmailNach', 'GültigMonatArray', 'GültigVon', 'GültigBis', ...syncCols], emails, 'PersonEmailID');
    await bulkInsert(conn, 'PersonTelefon',
      ['PersonID', 'TelefontypID', 'Landkennzeichen', 'Vorwahl', 'Rufnummer', 'GültigMonatArray', 'GültigVon', 'GültigBis', ...syncCols], phones);
    await bulkInsert(conn, 'PersonGruppe', ['PersonID', 'zGruppeDetailID', 'Steuerung', 'GültigVon', 'GültigBis', ...syncCols], groups);
    await bulkInsert(conn, 'PersonEmailGruppe', ['PersonEmailID', 'zGruppeDetailID', 'Steuerung', 'GültigVon', 'GültigBis', ...syncCols],
      emailIds.filter(() => rnd() < 0.33).map((id) => [id, groupIds.newsletter, 1, from, to, ...sync]));

    const every = options.bpkEvery ?? 4;
    const bpkRows = every > 0 && companyIds.length
      ? personIds.map((id, i) => ({ id, p: people[i], i })).filter(({ i }) => i % every === 0).map(({ id, p }, k) => {
        return [id, companyIds[k % companyIds.length], swd, `PRIV${String(id).padStart(8, '0')}`, `OEFF${String(id).padStart(8, '0')}`, p.first, p.last, p.birth, swd, ...sync];
      })
      : [];
    const personBpkIds = await bulkInsert(conn, 'PersonBPK',
      ['PersonID', 'xBPKAccountID', 'Anlagedatum', 'BPKPrivat', 'BPKOeffentlich', 'Vorname', 'Nachname', 'Geburtsdatum', 'PositivAmUm', ...syncCols],
      bpkRows, 'PersonBPKID');
    await conn.exec('COMMIT');
    return { personIds, companyIds, personBpkIds };
  } catch (err) {
    await conn.exec('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    conn.release();
  }
}
