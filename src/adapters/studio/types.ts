/**
 * FS rows as the client hands them out: FS column names, `date` columns as 'YYYY-MM-DD' strings,
 * `datetime2` columns as Dates (UTC), `bit` columns as booleans.
 */

/** 'YYYY-MM-DD' */
export type IsoDate = string;

export interface SyncColumns {
  sosync_fso_id: number | null;
  sosync_write_date: Date | null;
  write_date: Date;
  noSyncJobSwitch: boolean;
}

export interface PersonRow extends SyncColumns {
  PersonID: number;
  PersontypID: number | null;
  Vorname: string | null;
  Name: string | null;
  Name2: string | null;
  Titel: string | null;
  Geburtsdatum: IsoDate | null;
  GeschlechttypID: number | null;
  NationalitätID: number | null;
  SprachetypID: number | null;
  zMarketingID: number | null;
  Anlagedatum: Date | null;
  xIDA: number | null;
  BPKErzwungenVorname: string | null;
  BPKErzwungenNachname: string | null;
  BPKErzwungenGeburtsdatum: IsoDate | null;
  BPKErzwungenPLZ: string | null;
}

export interface Validity {
  GültigMonatArray: string | null;
  GültigVon: IsoDate | null;
  GültigBis: IsoDate | null;
}

export interface PersonAdresseRow extends SyncColumns, Validity {
  PersonAdresseID: number;
  PersonID: number;
  AdresstypID: number | null;
  AnredeformtypID: number | null;
  IndividuelleAnrede: string | null;
  Strasse: string | null;
  Hausnummer: string | null;
  PLZ: string | null;
  Ort: string | null;
  LandID: number | null;
  FehlerZähler: number | null;
  xIDA: number | null;
}

export interface PersonAdresseAMRow extends SyncColumns {
  PersonAdresseAMID: number;
  PersonAdresseID: number;
  PersonID: number;
  PAC: string | null;
  xIDA: number | null;
}

export interface PersonEmailRow extends SyncColumns, Validity {
  PersonEmailID: number;
  PersonID: number;
  AnredeformtypID: number | null;
  EmailVor: string | null;
  EmailNach: string | null;
}

export interface PersonTelefonRow extends SyncColumns, Validity {
  PersonTelefonID: number;
  PersonID: number;
  /** phoneTypeIds (fsIds.ts) */
  TelefontypID: number | null;
  Landkennzeichen: string | null;
  Vorwahl: string | null;
  Rufnummer: string | null;
}

/** A membership in a zGruppeDetail group, of a person or of an e-mail address. */
export interface GroupMembership extends SyncColumns {
  zGruppeDetailID: number;
  Steuerung: boolean;
  GültigVon: IsoDate | null;
  GültigBis: IsoDate | null;
  xIDA: number | null;
}

export interface PersonGruppeRow extends GroupMembership {
  PersonGruppeID: number;
  PersonID: number;
}

export interface PersonEmailGruppeRow extends GroupMembership {
  PersonEmailGruppeID: number;
  PersonEmailID: number;
}

export interface XBPKAccountRow extends SyncColumns {
  xBPKAccountID: number;
  Name: string | null;
}

export interface PersonBPKRow extends SyncColumns {
  PersonBPKID: number;
  PersonID: number;
  xBPKAccountID: number;
  Anlagedatum: Date | null;
  BPKPrivat: string | null;
  BPKOeffentlich: string | null;
  Vorname: string | null;
  Nachname: string | null;
  Geburtsdatum: IsoDate | null;
  PositivAmUm: Date | null;
  PositivDaten: string | null;
  FehlerAmUm: Date | null;
  FehlerDaten: string | null;
  FehlerAntwortDaten: string | null;
  FehlerVorname: string | null;
  FehlerNachname: string | null;
  FehlerGeburtsdatum: IsoDate | null;
  FehlerCode: string | null;
  FehlerText: string | null;
}

/** Everything that makes up one person in FS, as of one day. */
export interface PersonStack {
  personId: number;
  person: PersonRow;
  /** the current address (valid today; full-year month mask preferred; then highest id) */
  address: PersonAdresseRow | null;
  addressAm: PersonAdresseAMRow | null;
  email: PersonEmailRow | null;
  phone: PersonTelefonRow | null;
  mobile: PersonTelefonRow | null;
  fax: PersonTelefonRow | null;
  /** PersonGruppe groupIds.donationDeductionOptOut valid today */
  donationDeductionOptOut: PersonGruppeRow | null;
  /** PersonGruppe groupIds.donationReceipt valid today */
  donationReceipt: PersonGruppeRow | null;
  /** PersonEmailGruppe groupIds.newsletter of the current e-mail, valid today */
  newsletter: PersonEmailGruppeRow | null;
  /** maximum over the stack's rows */
  writeDate: Date;
  /** maximum over the stack's rows; null when no row has one */
  sosyncWriteDate: Date | null;
  /** the Person row's sosync_fso_id (else the first current row that has one) */
  sosyncFsoId: number | null;
}

export type PersonValues = Partial<Pick<PersonRow,
  | 'PersontypID' | 'Vorname' | 'Name' | 'Name2' | 'Titel' | 'Geburtsdatum' | 'GeschlechttypID'
  | 'NationalitätID' | 'SprachetypID' | 'zMarketingID' | 'BPKErzwungenVorname' | 'BPKErzwungenNachname'
  | 'BPKErzwungenGeburtsdatum' | 'BPKErzwungenPLZ'>>;

export type AddressValues = Partial<Pick<PersonAdresseRow,
  | 'Strasse' | 'Hausnummer' | 'PLZ' | 'Ort' | 'LandID' | 'AnredeformtypID' | 'IndividuelleAnrede' | 'AdresstypID'>>;

export interface EmailValues {
  EmailVor: string;
  EmailNach: string;
}

/**
 * The wanted state of a person stack. For each part: `undefined` leaves it alone, `null` ends the
 * current row (it is no longer valid today), a value updates the current row or creates one.
 */
export interface PersonStackWrite {
  /** null: create a new person */
  personId: number | null;
  /** the day the stack is evaluated for; default: today (UTC) */
  today?: IsoDate;
  /** goes on every written row */
  sosyncWriteDate: Date;
  /** goes on every current row; default: the person's present sosync_fso_id */
  sosyncFsoId?: number | null;
  person?: PersonValues;
  address?: AddressValues | null;
  email?: EmailValues | null;
  /** the whole number; an existing row whose composed number equals it keeps its parts */
  phone?: string | null;
  mobile?: string | null;
  fax?: string | null;
  donationDeductionOptOut?: boolean;
  donationReceipt?: boolean;
  newsletter?: boolean;
}

/** One row a write touched, as evidence for the job row. */
export interface WrittenRow {
  table: string;
  action: 'insert' | 'update' | 'delete';
  /** the row's id */
  id: number;
  /** the column values sent (for deletes: none) */
  values: Record<string, unknown>;
}

/** What every successful write returns: `request` is the written row data. */
export interface StudioWriteEvidence {
  request: WrittenRow[];
  answer: 'success';
}

export interface PersonStackWriteResult extends StudioWriteEvidence {
  personId: number;
  created: boolean;
}

export interface RecordWriteResult extends StudioWriteEvidence {
  id: number;
}

export interface DeleteResult extends StudioWriteEvidence {
  /** false when there was nothing to delete */
  deleted: boolean;
}

export interface WriteMeta {
  sosyncWriteDate: Date;
  /** undefined: leave the row's sosync_fso_id as it is */
  sosyncFsoId?: number | null;
}

export type XBPKAccountValues = Partial<Pick<XBPKAccountRow, 'Name'>>;

export type PersonBPKValues = Partial<Omit<PersonBPKRow, 'PersonBPKID' | keyof SyncColumns>>;
