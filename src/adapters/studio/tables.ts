/**
 * The FS tables sosync writes, each with its key and the SQL type of every column it may write.
 * The column lists are checked against the row types: a column missing here, or one the row type
 * does not have, is a type error.
 */
import type { ColumnType } from './connection.ts';
import type {
  PersonAdresseAMRow, PersonAdresseRow, PersonBPKRow, PersonEmailGruppeRow, PersonEmailRow, PersonGruppeRow,
  PersonRow, PersonTelefonRow, SyncColumns, XBPKAccountRow,
} from './types.ts';

export interface StudioTable {
  /** the bare name, e.g. `PersonBPK` */
  readonly name: string;
  /** `dbo.PersonBPK`, as written in evidence and messages */
  readonly model: string;
  /** the identity column */
  readonly key: string;
  /** every column a caller may write (the sync columns included), with its SQL type */
  readonly columns: Readonly<Record<string, ColumnType>>;
}

/** A table whose rows are typed `Row` (the property exists for the type only). */
export interface TableOf<Row> extends StudioTable {
  readonly key: keyof Row & string;
  readonly row?: Row;
}

const syncColumnTypes: Record<keyof SyncColumns, ColumnType> = {
  sosync_fso_id: 'int', sosync_write_date: 'datetime2', write_date: 'datetime2', noSyncJobSwitch: 'bit',
};

type DataColumns<Row, Key extends keyof Row> = { readonly [C in Exclude<keyof Row, Key | keyof SyncColumns>]-?: ColumnType };

function table<Row, Key extends keyof Row & string>(name: string, key: Key, columns: DataColumns<Row, Key>): TableOf<Row> {
  return { name, model: `dbo.${name}`, key, columns: { ...(columns as Record<string, ColumnType>), ...syncColumnTypes } };
}

const validity = { GültigMonatArray: 'nvarchar', GültigVon: 'date', GültigBis: 'date' } as const;
const membership = { zGruppeDetailID: 'int', Steuerung: 'bit', GültigVon: 'date', GültigBis: 'date', xIDA: 'int' } as const;

export const personTable = table<PersonRow, 'PersonID'>('Person', 'PersonID', {
  PersontypID: 'int', Vorname: 'nvarchar', Name: 'nvarchar', Name2: 'nvarchar', Titel: 'nvarchar', Geburtsdatum: 'date',
  GeschlechttypID: 'int', NationalitätID: 'int', SprachetypID: 'int', zMarketingID: 'int', Anlagedatum: 'datetime2',
  xIDA: 'int', BPKErzwungenVorname: 'nvarchar', BPKErzwungenNachname: 'nvarchar', BPKErzwungenGeburtsdatum: 'date',
  BPKErzwungenPLZ: 'nvarchar',
});

export const addressTable = table<PersonAdresseRow, 'PersonAdresseID'>('PersonAdresse', 'PersonAdresseID', {
  PersonID: 'int', AdresstypID: 'int', AnredeformtypID: 'int', IndividuelleAnrede: 'nvarchar', Strasse: 'nvarchar',
  Hausnummer: 'nvarchar', PLZ: 'nvarchar', Ort: 'nvarchar', LandID: 'int', FehlerZähler: 'int', ...validity, xIDA: 'int',
});

export const addressAmTable = table<PersonAdresseAMRow, 'PersonAdresseAMID'>('PersonAdresseAM', 'PersonAdresseAMID', {
  PersonAdresseID: 'int', PersonID: 'int', PAC: 'nvarchar', xIDA: 'int',
});

export const emailTable = table<PersonEmailRow, 'PersonEmailID'>('PersonEmail', 'PersonEmailID', {
  PersonID: 'int', AnredeformtypID: 'int', EmailVor: 'nvarchar', EmailNach: 'nvarchar', ...validity,
});

export const phoneTable = table<PersonTelefonRow, 'PersonTelefonID'>('PersonTelefon', 'PersonTelefonID', {
  PersonID: 'int', TelefontypID: 'int', Landkennzeichen: 'nvarchar', Vorwahl: 'nvarchar', Rufnummer: 'nvarchar', ...validity,
});

export const groupTable = table<PersonGruppeRow, 'PersonGruppeID'>('PersonGruppe', 'PersonGruppeID', {
  PersonID: 'int', ...membership,
});

export const emailGroupTable = table<PersonEmailGruppeRow, 'PersonEmailGruppeID'>('PersonEmailGruppe', 'PersonEmailGruppeID', {
  PersonEmailID: 'int', ...membership,
});

export const xBPKAccountTable = table<XBPKAccountRow, 'xBPKAccountID'>('xBPKAccount', 'xBPKAccountID', {
  Name: 'nvarchar',
});

export const personBPKTable = table<PersonBPKRow, 'PersonBPKID'>('PersonBPK', 'PersonBPKID', {
  PersonID: 'int', xBPKAccountID: 'int', Anlagedatum: 'datetime2', BPKPrivat: 'nvarchar', BPKOeffentlich: 'nvarchar',
  Vorname: 'nvarchar', Nachname: 'nvarchar', Geburtsdatum: 'date', PositivAmUm: 'datetime2', PositivDaten: 'nvarchar',
  FehlerAmUm: 'datetime2', FehlerDaten: 'nvarchar', FehlerAntwortDaten: 'nvarchar', FehlerVorname: 'nvarchar',
  FehlerNachname: 'nvarchar', FehlerGeburtsdatum: 'date', FehlerCode: 'nvarchar', FehlerText: 'nvarchar',
});

/** A row as the client hands it out: the table's `date` columns as 'YYYY-MM-DD'. */
export function rowOf<Row = Record<string, unknown>>(table: StudioTable & { readonly row?: Row }, row: Record<string, unknown> | undefined): Row | null {
  if (!row) return null;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    out[k] = table.columns[k] === 'date' && v instanceof Date ? v.toISOString().slice(0, 10) : v;
  }
  return out as Row;
}
