/**
 * Deterministic demo data for the FSO stand-in: companies, partners (with addresses, e-mail,
 * phone, flags) and bPK rows linking them. Same options, same rows — ids and every field except
 * Odoo's own create_date / write_date.
 */
import type { OnlineStore } from './store.ts';

export interface SeedOptions {
  partners?: number;
  companies?: number;
  bpks?: number;
  /** sosync_write_date of the first seeded record; the rest follow one minute apart */
  baseDate?: Date;
}

export interface SeededOnline {
  companyIds: number[];
  partnerIds: number[];
  bpkIds: number[];
}

const firstnames = ['Anna', 'Bernhard', 'Clara', 'David', 'Elisabeth', 'Florian', 'Gertrude', 'Hannes', 'Ingrid', 'Johann', 'Katharina', 'Lukas'];
const lastnames = ['Gruber', 'Huber', 'Bauer', 'Wagner', 'Müller', 'Pichler', 'Steiner', 'Moser', 'Mayer', 'Hofer', 'Leitner', 'Berger'];
const places: [zip: string, city: string, country: string][] = [
  ['1010', 'Wien', 'AT'], ['8010', 'Graz', 'AT'], ['4020', 'Linz', 'AT'], ['5020', 'Salzburg', 'AT'],
  ['6020', 'Innsbruck', 'AT'], ['80331', 'München', 'DE'], ['10115', 'Berlin', 'DE'], ['8001', 'Zürich', 'CH'],
];
const streets = ['Hauptstraße', 'Bahnhofstraße', 'Kirchengasse', 'Schulweg', 'Lindenallee', 'Mühlgasse'];
const genders = ['female', 'male', 'female', 'male', 'other'] as const;

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

export function seedOnline(store: OnlineStore, options: SeedOptions = {}): SeededOnline {
  const partners = options.partners ?? 12;
  const companies = options.companies ?? 2;
  const bpks = Math.min(options.bpks ?? 6, partners * Math.max(companies, 1));
  const base = (options.baseDate ?? new Date('2024-01-15T08:00:00.000Z')).getTime();
  let tick = 0;
  const stamp = () => new Date(base + 60_000 * tick++).toISOString();

  const companyIds: number[] = [];
  for (let i = 0; i < companies; i++) {
    companyIds.push(store.create('res.company', { name: i === 0 ? 'Spendenverein Demo' : `Demo Stiftung ${i}`, sosync_write_date: stamp() }));
  }

  const partnerIds: number[] = [];
  for (let i = 0; i < partners; i++) {
    const firstname = firstnames[i % firstnames.length];
    const lastname = lastnames[(i * 5) % lastnames.length];
    const [zip, city, country] = places[i % places.length];
    const gender = genders[i % genders.length];
    partnerIds.push(store.create('res.partner', {
      firstname,
      lastname,
      gender,
      birthdate_web: `19${pad(50 + (i * 7) % 50, 2)}-${pad(1 + (i % 12), 2)}-${pad(1 + (i * 3) % 28, 2)}`,
      title_web: i % 4 === 0 ? 'Dr.' : false,
      street: streets[i % streets.length],
      street_number_web: String(1 + (i * 11) % 80),
      zip,
      city,
      country_id: store.countryId(country) ?? false,
      email: `${firstname}.${lastname}${i}@example.org`.toLowerCase().replace('ü', 'ue'),
      phone: i % 3 === 0 ? `+43 1 ${pad(4000000 + i * 1731, 7)}` : false,
      mobile: i % 2 === 0 ? `+43 664 ${pad(1000000 + i * 977, 7)}` : false,
      donation_deduction_optout_web: i % 5 === 4,
      donation_receipt_web: i % 3 !== 2,
      newsletter_web: i % 2 === 0,
      sosync_write_date: stamp(),
    }));
  }

  const bpkIds: number[] = [];
  for (let i = 0; i < bpks; i++) {
    const partnerId = partnerIds[i % partnerIds.length];
    const companyId = companyIds[Math.floor(i / partnerIds.length) % companyIds.length];
    const partner = store.get('res.partner', partnerId)!;
    const ok = i % 4 !== 3;
    bpkIds.push(store.create('res.partner.bpk', {
      BPKRequestPartnerID: partnerId,
      BPKRequestCompanyID: companyId,
      BPKRequestFirstname: partner.firstname,
      BPKRequestLastname: partner.lastname,
      BPKRequestBirthdate: partner.birthdate_web,
      BPKRequestZIP: partner.zip,
      ...(ok
        ? {
            BPKPrivate: `PRV${pad(i + 1, 6)}demoBPKprivate=`,
            BPKPublic: `PUB${pad(i + 1, 6)}demoBPKpublic=`,
            BPKRequestDate: '2024-01-10 09:30:00',
            BPKRequestData: `<request partner="${partnerId}"/>`,
            BPKResponseData: `<response ok="true" partner="${partnerId}"/>`,
          }
        : {
            BPKErrorRequestDate: '2024-01-10 09:31:00',
            BPKErrorRequestFirstname: partner.firstname,
            BPKErrorRequestLastname: partner.lastname,
            BPKErrorRequestBirthdate: partner.birthdate_web,
            BPKErrorRequestZIP: partner.zip,
            BPKErrorRequestData: `<request partner="${partnerId}"/>`,
            BPKErrorResponseData: '<fault code="F230"/>',
            BPKErrorCode: 'F230',
            BPKErrorText: 'Person not found in the central register',
          }),
      sosync_write_date: stamp(),
    }));
  }
  return { companyIds, partnerIds, bpkIds };
}
