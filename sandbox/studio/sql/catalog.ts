/**
 * The FS tables of the stand-in (SPEC Appendix) as data: the DDL, the translator's identifier
 * casing and the trigger wiring are all derived from this one list.
 */
import { salutationTypeIds, typenIds } from '../../../src/adapters/studio/fsIds.ts';

export type FsColumnType =
  | 'int' | 'bit' | 'date' | 'datetime2' | 'text'
  | `nvarchar(${number})` | `char(${number})`;

export interface FsColumn {
  name: string;
  type: FsColumnType;
  notNull?: boolean;
  /** PostgreSQL default expression */
  default?: string;
  references?: { table: string; column: string };
}

export interface FsTable {
  name: string;
  /** identity column; absent for tables keyed by hand (Typen, Land) */
  identity?: string;
  key: string;
  columns: FsColumn[];
  /**
   * What a change announces: the sosync model and the column holding its record id.
   * `PersonEmailID` means "look the PersonID up through dbo.PersonEmail".
   */
  announces?: { model: string; recordIdColumn: string; ownModel: boolean };
  /** gets the four sosync columns and the write_date trigger */
  syncColumns: boolean;
}

const nv = (n: number): FsColumnType => `nvarchar(${n})`;
const fk = (table: string, column: string) => ({ table, column });

const validity: FsColumn[] = [
  { name: 'GültigMonatArray', type: 'char(12)' },
  { name: 'GültigVon', type: 'date' },
  { name: 'GültigBis', type: 'date' },
];

const personModel = (recordIdColumn = 'PersonID') => ({ model: 'dbo.Person', recordIdColumn, ownModel: false });

export const fsTables: FsTable[] = [
  {
    name: 'Land', key: 'LandID', syncColumns: false,
    columns: [
      { name: 'LandID', type: 'int', notNull: true },
      { name: 'IsoCode2', type: 'char(2)', notNull: true },
      { name: 'Name', type: nv(100) },
    ],
  },
  {
    name: 'Typen', key: 'TypenID', syncColumns: true,
    columns: [
      { name: 'TypenID', type: 'int', notNull: true },
      { name: 'Formularwert', type: nv(200) },
      { name: 'Beschreibung', type: nv(200) },
    ],
  },
  {
    name: 'Person', identity: 'PersonID', key: 'PersonID', syncColumns: true,
    announces: { model: 'dbo.Person', recordIdColumn: 'PersonID', ownModel: true },
    columns: [
      { name: 'PersontypID', type: 'int' },
      { name: 'Vorname', type: nv(50) },
      { name: 'Name', type: nv(100) },
      { name: 'Name2', type: nv(100) },
      { name: 'Titel', type: nv(50) },
      { name: 'Geburtsdatum', type: 'date' },
      { name: 'GeschlechttypID', type: 'int' },
      { name: 'NationalitätID', type: 'int' },
      { name: 'SprachetypID', type: 'int' },
      { name: 'zMarketingID', type: 'int' },
      { name: 'Anlagedatum', type: 'datetime2' },
      { name: 'xIDA', type: 'int' },
      { name: 'BPKErzwungenVorname', type: nv(50) },
      { name: 'BPKErzwungenNachname', type: nv(100) },
      { name: 'BPKErzwungenGeburtsdatum', type: 'date' },
      { name: 'BPKErzwungenPLZ', type: nv(10) },
    ],
  },
  {
    name: 'PersonAdresse', identity: 'PersonAdresseID', key: 'PersonAdresseID', syncColumns: true,
    announces: personModel(),
    columns: [
      { name: 'PersonID', type: 'int', notNull: true, references: fk('Person', 'PersonID') },
      { name: 'AdresstypID', type: 'int' },
      { name: 'AnredeformtypID', type: 'int' },
      { name: 'IndividuelleAnrede', type: nv(200) },
      { name: 'Strasse', type: nv(100) },
      { name: 'Hausnummer', type: nv(30) },
      { name: 'PLZ', type: nv(10) },
      { name: 'Ort', type: nv(100) },
      { name: 'LandID', type: 'int' },
      { name: 'FehlerZähler', type: 'int', default: '0' },
      ...validity,
      { name: 'xIDA', type: 'int' },
    ],
  },
  {
    name: 'PersonAdresseAM', identity: 'PersonAdresseAMID', key: 'PersonAdresseAMID', syncColumns: true,
    announces: personModel(),
    columns: [
      { name: 'PersonAdresseID', type: 'int', notNull: true, references: fk('PersonAdresse', 'PersonAdresseID') },
      { name: 'PersonID', type: 'int', notNull: true, references: fk('Person', 'PersonID') },
      { name: 'PAC', type: nv(20) },
      { name: 'xIDA', type: 'int' },
    ],
  },
  {
    name: 'PersonEmail', identity: 'PersonEmailID', key: 'PersonEmailID', syncColumns: true,
    announces: personModel(),
    columns: [
      { name: 'PersonID', type: 'int', notNull: true, references: fk('Person', 'PersonID') },
      { name: 'AnredeformtypID', type: 'int' },
      { name: 'EmailVor', type: nv(100) },
      { name: 'EmailNach', type: nv(100) },
      ...validity,
    ],
  },
  {
    name: 'PersonTelefon', identity: 'PersonTelefonID', key: 'PersonTelefonID', syncColumns: true,
    announces: personModel(),
    columns: [
      { name: 'PersonID', type: 'int', notNull: true, references: fk('Person', 'PersonID') },
      { name: 'TelefontypID', type: 'int' },
      { name: 'Landkennzeichen', type: nv(10) },
      { name: 'Vorwahl', type: nv(20) },
      { name: 'Rufnummer', type: nv(50) },
      ...validity,
    ],
  },
  {
    name: 'PersonGruppe', identity: 'PersonGruppeID', key: 'PersonGruppeID', syncColumns: true,
    announces: personModel(),
    columns: [
      { name: 'PersonID', type: 'int', notNull: true, references: fk('Person', 'PersonID') },
      { name: 'zGruppeDetailID', type: 'int', notNull: true },
      { name: 'Steuerung', type: 'bit', notNull: true, default: '1' },
      { name: 'GültigVon', type: 'date' },
      { name: 'GültigBis', type: 'date' },
      { name: 'xIDA', type: 'int' },
    ],
  },
  {
    name: 'PersonEmailGruppe', identity: 'PersonEmailGruppeID', key: 'PersonEmailGruppeID', syncColumns: true,
    announces: personModel('PersonEmailID'),
    columns: [
      { name: 'PersonEmailID', type: 'int', notNull: true, references: fk('PersonEmail', 'PersonEmailID') },
      { name: 'zGruppeDetailID', type: 'int', notNull: true },
      { name: 'Steuerung', type: 'bit', notNull: true, default: '1' },
      { name: 'GültigVon', type: 'date' },
      { name: 'GültigBis', type: 'date' },
      { name: 'xIDA', type: 'int' },
    ],
  },
  {
    name: 'xBPKAccount', identity: 'xBPKAccountID', key: 'xBPKAccountID', syncColumns: true,
    announces: { model: 'dbo.xBPKAccount', recordIdColumn: 'xBPKAccountID', ownModel: true },
    columns: [{ name: 'Name', type: nv(200) }],
  },
  {
    name: 'PersonBPK', identity: 'PersonBPKID', key: 'PersonBPKID', syncColumns: true,
    announces: { model: 'dbo.PersonBPK', recordIdColumn: 'PersonBPKID', ownModel: true },
    columns: [
      { name: 'PersonID', type: 'int', notNull: true, references: fk('Person', 'PersonID') },
      { name: 'xBPKAccountID', type: 'int', notNull: true, references: fk('xBPKAccount', 'xBPKAccountID') },
      { name: 'Anlagedatum', type: 'datetime2' },
      { name: 'BPKPrivat', type: nv(200) },
      { name: 'BPKOeffentlich', type: nv(200) },
      { name: 'Vorname', type: nv(50) },
      { name: 'Nachname', type: nv(100) },
      { name: 'Geburtsdatum', type: 'date' },
      { name: 'PositivAmUm', type: 'datetime2' },
      { name: 'PositivDaten', type: 'text' },
      { name: 'FehlerAmUm', type: 'datetime2' },
      { name: 'FehlerDaten', type: 'text' },
      { name: 'FehlerAntwortDaten', type: 'text' },
      { name: 'FehlerVorname', type: nv(50) },
      { name: 'FehlerNachname', type: nv(100) },
      { name: 'FehlerGeburtsdatum', type: 'date' },
      { name: 'FehlerCode', type: nv(50) },
      { name: 'FehlerText', type: 'text' },
    ],
  },
];

export const syncColumns: FsColumn[] = [
  { name: 'sosync_fso_id', type: 'int' },
  { name: 'sosync_write_date', type: 'datetime2' },
  { name: 'write_date', type: 'datetime2', notNull: true, default: 'studio.utc_now()' },
  { name: 'noSyncJobSwitch', type: 'bit', notNull: true, default: '0' },
];

/** Every column of a table in DDL order (identity first, sosync columns last). */
export function allColumns(table: FsTable): FsColumn[] {
  const identity: FsColumn[] = table.identity ? [{ name: table.identity, type: 'int', notNull: true }] : [];
  return [...identity, ...table.columns, ...(table.syncColumns ? syncColumns : [])];
}

/** User-defined functions callable from T-SQL, keyed by lower-case `schema.name`. */
export const fsFunctions: Record<string, { schema: string; name: string }> = {
  'sosync.landid_to_isocountrycode2': { schema: 'sosync', name: 'LandID_to_IsoCountryCode2' },
  'sosync.isocountrycode2_to_landid': { schema: 'sosync', name: 'IsoCountryCode2_to_LandID' },
};

/** The exact spelling of every table, column and schema name, by lower-case name. */
export const canonicalNames: Map<string, string> = (() => {
  const names = new Map<string, string>();
  for (const s of ['dbo', 'sosync']) names.set(s, s);
  for (const t of fsTables) {
    names.set(t.name.toLowerCase(), t.name);
    for (const c of allColumns(t)) names.set(c.name.toLowerCase(), c.name);
  }
  return names;
})();

export const tableNames: Map<string, FsTable> = new Map(fsTables.map((t) => [t.name.toLowerCase(), t]));

/**
 * The actions FS's triggers fire on for `table` (schema.ts creates them): INSERT and UPDATE on every
 * table with sync columns, DELETE too on a table whose changes are announced.
 */
export function triggeredActions(table: FsTable): ReadonlySet<'INSERT' | 'UPDATE' | 'DELETE'> {
  if (!table.syncColumns) return new Set();
  return new Set(table.announces ? ['INSERT', 'UPDATE', 'DELETE'] as const : ['INSERT', 'UPDATE'] as const);
}

/** Countries of the stand-in's land table: LandID ↔ ISO 3166 alpha-2. */
export const lands: Array<[number, string, string]> = [
  [1, 'AT', 'Österreich'], [2, 'DE', 'Deutschland'], [3, 'CH', 'Schweiz'], [4, 'IT', 'Italien'],
  [5, 'LI', 'Liechtenstein'], [6, 'HU', 'Ungarn'], [7, 'CZ', 'Tschechien'], [8, 'SK', 'Slowakei'],
  [9, 'SI', 'Slowenien'], [10, 'FR', 'Frankreich'], [11, 'NL', 'Niederlande'], [12, 'BE', 'Belgien'],
  [13, 'LU', 'Luxemburg'], [14, 'GB', 'Vereinigtes Königreich'], [15, 'US', 'Vereinigte Staaten'],
  [16, 'PL', 'Polen'], [17, 'ES', 'Spanien'], [18, 'HR', 'Kroatien'], [19, 'DK', 'Dänemark'], [20, 'SE', 'Schweden'],
];

/** dbo.Typen system defaults (SPEC Appendix). */
export const typenDefaults: Array<[number, string, string]> = [
  [typenIds.addressSalutation, String(salutationTypeIds.standard), 'Standard-Anredeform Adresse'],
  [typenIds.emailSalutation, String(salutationTypeIds.standard), 'Standard-Anredeform E-Mail'],
  [typenIds.defaultCountry, '1', 'Standard-Land (LandID)'],
];
