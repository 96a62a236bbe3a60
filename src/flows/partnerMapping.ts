/**
 * The field mapping of SPEC §6.2 between an FS person stack and an FSO `res.partner`, as pure
 * functions (the country, whose mapping needs both systems, is resolved by the flow).
 */
import {
  composePhoneNumber, genderTypeIds, individualSalutationTypeId, studioOnlyGenderTypeIds, type PersonStack, type PersonStackWrite,
} from '../adapters/studio/index.ts';
import type { OnlineRecord } from '../adapters/online/index.ts';

/** The res.partner fields the flow reads and writes. */
export const partnerFields = [
  'firstname', 'lastname', 'name_zwei', 'birthdate_web', 'title_web', 'gender',
  'BPKForcedFirstname', 'BPKForcedLastname', 'BPKForcedBirthdate', 'BPKForcedZip',
  'street', 'street_number_web', 'zip', 'city', 'country_id', 'anrede_individuell',
  'email', 'phone', 'mobile', 'fax',
  'donation_deduction_optout_web', 'donation_receipt_web', 'newsletter_web',
] as const;

/** Where each res.partner field lives in the FS person stack. */
export const partnerFieldSources: Readonly<Record<(typeof partnerFields)[number], string>> = {
  firstname: 'Person.Vorname', lastname: 'Person.Name', name_zwei: 'Person.Name2', birthdate_web: 'Person.Geburtsdatum',
  title_web: 'Person.Titel', gender: 'Person.GeschlechttypID',
  BPKForcedFirstname: 'Person.BPKErzwungenVorname', BPKForcedLastname: 'Person.BPKErzwungenNachname',
  BPKForcedBirthdate: 'Person.BPKErzwungenGeburtsdatum', BPKForcedZip: 'Person.BPKErzwungenPLZ',
  street: 'PersonAdresse.Strasse', street_number_web: 'PersonAdresse.Hausnummer', zip: 'PersonAdresse.PLZ', city: 'PersonAdresse.Ort',
  country_id: 'PersonAdresse.LandID', anrede_individuell: 'PersonAdresse.IndividuelleAnrede',
  email: 'PersonEmail.EmailVor@EmailNach', phone: 'PersonTelefon (400)', mobile: 'PersonTelefon (401)', fax: 'PersonTelefon (403)',
  donation_deduction_optout_web: 'PersonGruppe (110493)', donation_receipt_web: 'PersonGruppe (20168)',
  newsletter_web: 'PersonEmailGruppe (30104)',
};

export function genderToOnline(geschlechttypId: number | null): 'male' | 'female' | 'other' {
  if (geschlechttypId === genderTypeIds.male) return 'male';
  if (geschlechttypId === genderTypeIds.female) return 'female';
  return 'other';
}

export function genderToStudio(gender: unknown, current: number | null): number {
  if (gender === 'male') return genderTypeIds.male;
  if (gender === 'female') return genderTypeIds.female;
  return current !== null && studioOnlyGenderTypeIds.includes(current) ? current : 0;
}

export function joinEmail(vor: string | null | undefined, nach: string | null | undefined): string {
  const a = (vor ?? '').trim();
  const b = (nach ?? '').trim();
  if (!a && !b) return '';
  return `${a}@${b}`;
}

/** Splits at the first `@`. */
export function splitEmail(email: string): { EmailVor: string; EmailNach: string } {
  const at = email.indexOf('@');
  return at === -1 ? { EmailVor: email, EmailNach: '' } : { EmailVor: email.slice(0, at), EmailNach: email.slice(at + 1) };
}

const text = (v: unknown): string | null => (typeof v === 'string' && v.trim() !== '' ? v : null);
const falseIfEmpty = (v: string | null | undefined): string | false => (v === null || v === undefined || v === '' ? false : v);

/** FS → FSO: the partner values of a stack; `landId` is the address country, resolved by the flow. */
export function stackToPartner(stack: PersonStack): { values: Record<string, unknown>; landId: number | null } {
  const p = stack.person;
  const a = stack.address;
  const salutation = a && a.AnredeformtypID === individualSalutationTypeId ? a.IndividuelleAnrede : null;
  return {
    landId: a?.LandID ?? null,
    values: {
      firstname: falseIfEmpty(p.Vorname),
      lastname: falseIfEmpty(p.Name),
      name_zwei: falseIfEmpty(p.Name2),
      birthdate_web: falseIfEmpty(p.Geburtsdatum),
      title_web: falseIfEmpty(p.Titel),
      gender: genderToOnline(p.GeschlechttypID),
      BPKForcedFirstname: falseIfEmpty(p.BPKErzwungenVorname),
      BPKForcedLastname: falseIfEmpty(p.BPKErzwungenNachname),
      BPKForcedBirthdate: falseIfEmpty(p.BPKErzwungenGeburtsdatum),
      BPKForcedZip: falseIfEmpty(p.BPKErzwungenPLZ),
      street: falseIfEmpty(a?.Strasse),
      street_number_web: falseIfEmpty(a?.Hausnummer),
      zip: falseIfEmpty(a?.PLZ),
      city: falseIfEmpty(a?.Ort),
      anrede_individuell: falseIfEmpty(salutation),
      email: falseIfEmpty(stack.email ? joinEmail(stack.email.EmailVor, stack.email.EmailNach) : ''),
      phone: falseIfEmpty(composePhoneNumber(stack.phone)),
      mobile: falseIfEmpty(composePhoneNumber(stack.mobile)),
      fax: falseIfEmpty(composePhoneNumber(stack.fax)),
      donation_deduction_optout_web: stack.donationDeductionOptOut !== null,
      donation_receipt_web: stack.donationReceipt !== null,
      newsletter_web: stack.newsletter !== null,
    },
  };
}

export interface StudioContext {
  /** the stack as it is now (null when it will be created) */
  current: PersonStack | null;
  /** LandID of the partner's country (resolved by the flow), null when it has none */
  landId: number | null;
  /**
   * the default address salutation (dbo.Typen typenIds.addressSalutation); needed only when the
   * partner clears its individual salutation (clearsIndividualSalutation), so the flow reads it only then
   */
  defaultSalutationTypeId: number | null;
}

/** The partner's individual salutation is gone while FS's current address still has one: the address goes back to FS's default salutation. */
export function clearsIndividualSalutation(partner: OnlineRecord, current: PersonStack | null): boolean {
  return text(partner.anrede_individuell) === null && current?.address?.AnredeformtypID === individualSalutationTypeId;
}

/**
 * FSO → FS: the wanted state of the stack. Empty detail values end the current row; a stack
 * that has no such row and gets an empty value is left alone.
 */
export function partnerToStack(partner: OnlineRecord, context: StudioContext): Omit<PersonStackWrite, 'personId' | 'sosyncWriteDate'> {
  const current = context.current;
  const write: Omit<PersonStackWrite, 'personId' | 'sosyncWriteDate'> = {
    person: {
      Vorname: text(partner.firstname),
      Name: text(partner.lastname),
      Name2: text(partner.name_zwei),
      Titel: text(partner.title_web),
      Geburtsdatum: text(partner.birthdate_web),
      GeschlechttypID: genderToStudio(partner.gender, current?.person.GeschlechttypID ?? null),
      BPKErzwungenVorname: text(partner.BPKForcedFirstname),
      BPKErzwungenNachname: text(partner.BPKForcedLastname),
      BPKErzwungenGeburtsdatum: text(partner.BPKForcedBirthdate),
      BPKErzwungenPLZ: text(partner.BPKForcedZip),
    },
    donationDeductionOptOut: partner.donation_deduction_optout_web === true,
    donationReceipt: partner.donation_receipt_web === true,
    newsletter: partner.newsletter_web === true,
  };

  const salutation = text(partner.anrede_individuell);
  const addressGiven = [partner.street, partner.street_number_web, partner.zip, partner.city].some((v) => text(v) !== null)
    || context.landId !== null || salutation !== null;
  if (addressGiven) {
    const address: NonNullable<PersonStackWrite['address']> = {
      Strasse: text(partner.street),
      Hausnummer: text(partner.street_number_web),
      PLZ: text(partner.zip),
      Ort: text(partner.city),
    };
    if (context.landId !== null) address.LandID = context.landId;
    if (salutation !== null) {
      address.AnredeformtypID = individualSalutationTypeId;
      address.IndividuelleAnrede = salutation;
    } else if (clearsIndividualSalutation(partner, current)) {
      // the individual salutation was cleared: back to the system default
      address.AnredeformtypID = context.defaultSalutationTypeId;
      address.IndividuelleAnrede = null;
    }
    write.address = address;
  } else if (current?.address) {
    write.address = null;
  }

  const email = text(partner.email);
  if (email !== null) write.email = splitEmail(email.trim());
  else if (current?.email) write.email = null;

  for (const kind of ['phone', 'mobile', 'fax'] as const) {
    const number = text(partner[kind]);
    if (number !== null) write[kind] = number.trim();
    else if (current?.[kind]) write[kind] = null;
  }
  return write;
}
