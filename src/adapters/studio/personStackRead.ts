/**
 * Reading one person stack (SPEC 6.2): the Person row and, of each detail table, the row that is
 * current on a given day, in one batch; the stack's dates are maxima over all of the person's rows.
 */
import { groupIds, phoneTypeIds } from './fsIds.ts';
import type { Runner, Statement } from './connection.ts';
import {
  addressAmTable, addressTable, emailGroupTable, emailTable, groupTable, personTable, phoneTable, rowOf, type StudioTable,
} from './tables.ts';
import type { IsoDate, PersonStack, PersonTelefonRow, SyncColumns } from './types.ts';

export const utcToday = (): IsoDate => new Date().toISOString().slice(0, 10);

// The current-row rule of SPEC 6.2: valid today, full-year month mask first, then the newest row.
export const fullYear = '111111111111';
export const validToday = '([GültigVon] IS NULL OR [GültigVon] <= @today) AND ([GültigBis] IS NULL OR [GültigBis] >= @today)';
const monthMaskFirst = `CASE WHEN [GültigMonatArray] IS NULL OR [GültigMonatArray] = '' OR [GültigMonatArray] = '${fullYear}' THEN 0 ELSE 1 END`;
const currentAddressId = `(SELECT TOP 1 [PersonAdresseID] FROM dbo.[PersonAdresse] WHERE [PersonID] = @personId AND ${validToday} ORDER BY ${monthMaskFirst}, [PersonAdresseID] DESC)`;
/** The id of the person's current e-mail row (parameters @personId, @today). */
export const currentEmailIdQuery = `SELECT TOP 1 [PersonEmailID] FROM dbo.[PersonEmail] WHERE [PersonID] = @personId AND ${validToday} ORDER BY ${monthMaskFirst}, [PersonEmailID] DESC`;
const currentPhone = (typeId: number) =>
  `SELECT TOP 1 * FROM dbo.[PersonTelefon] WHERE [PersonID] = @personId AND [TelefontypID] = ${typeId} AND ${validToday} ORDER BY ${monthMaskFirst}, [PersonTelefonID] DESC;`;
const currentGroup = (groupId: number) =>
  `SELECT TOP 1 * FROM dbo.[PersonGruppe] WHERE [PersonID] = @personId AND [zGruppeDetailID] = ${groupId} AND ${validToday} ORDER BY [PersonGruppeID] DESC;`;

/** Where a detail table's rows belong to the person @personId. */
export function ownedByPerson(table: StudioTable): string {
  return table === emailGroupTable
    ? '[PersonEmailID] IN (SELECT [PersonEmailID] FROM dbo.[PersonEmail] WHERE [PersonID] = @personId)'
    : '[PersonID] = @personId';
}

type Part = Exclude<keyof PersonStack, 'personId' | 'writeDate' | 'sosyncWriteDate' | 'sosyncFsoId'>;

/** The stack's rows with their tables, in the order of the batch's first result sets. */
const parts: ReadonlyArray<readonly [Part, StudioTable, string]> = [
  ['person', personTable, 'SELECT * FROM dbo.[Person] WHERE [PersonID] = @personId;'],
  ['address', addressTable, `SELECT * FROM dbo.[PersonAdresse] WHERE [PersonAdresseID] = ${currentAddressId};`],
  ['addressAm', addressAmTable, `SELECT TOP 1 * FROM dbo.[PersonAdresseAM] WHERE [PersonAdresseID] = ${currentAddressId} ORDER BY [PersonAdresseAMID] DESC;`],
  ['email', emailTable, `SELECT * FROM dbo.[PersonEmail] WHERE [PersonEmailID] = (${currentEmailIdQuery});`],
  ['phone', phoneTable, currentPhone(phoneTypeIds.phone)],
  ['mobile', phoneTable, currentPhone(phoneTypeIds.mobile)],
  ['fax', phoneTable, currentPhone(phoneTypeIds.fax)],
  ['donationDeductionOptOut', groupTable, currentGroup(groupIds.donationDeductionOptOut)],
  ['donationReceipt', groupTable, currentGroup(groupIds.donationReceipt)],
  ['newsletter', emailGroupTable, `SELECT TOP 1 * FROM dbo.[PersonEmailGruppe] WHERE [PersonEmailID] = (${currentEmailIdQuery}) AND [zGruppeDetailID] = ${groupIds.newsletter} AND ${validToday} ORDER BY [PersonEmailGruppeID] DESC;`],
];

/** The tables a person stack is made of, Person first. */
export const stackTables: readonly StudioTable[] = [...new Set(parts.map(([, table]) => table))];

// The stack's dates are maxima over all of the person's rows, current or not: a row that a user
// ended (and that thereby left the stack) is a change of the stack too.
const personStackSql = [
  ...parts.map(([, , query]) => query),
  ...stackTables.filter((t) => t !== personTable).map((table) =>
    `SELECT MAX([write_date]) AS [write_date], MAX([sosync_write_date]) AS [sosync_write_date] FROM dbo.[${table.name}] WHERE ${ownedByPerson(table)};`),
].join('\n');

/** A stack's dates: of one row, or maxima over some of the person's rows. */
export type StackDates = { write_date: Date | null; sosync_write_date: Date | null };

/** A stack's rows, before its dates are worked out. */
export type StackParts = Omit<PersonStack, 'writeDate' | 'sosyncWriteDate' | 'sosyncFsoId'>;

/** A current row of a stack with its table. */
export interface StackRow {
  table: StudioTable;
  id: number;
  row: SyncColumns;
}

/** The stack's current rows, Person first. */
export function currentRows(stack: StackParts): StackRow[] {
  return parts.flatMap(([part, table]) => {
    const row = stack[part] as (SyncColumns & Record<string, unknown>) | null;
    return row === null ? [] : [{ table, id: Number(row[table.key]), row }];
  });
}

/**
 * The stack with its dates: maxima over its current rows and `maxima` (of all the person's rows,
 * current or not); its FSO id is the Person row's, else the first current row's that has one.
 */
export function completeStack(stack: StackParts, maxima: readonly StackDates[]): PersonStack {
  const current = currentRows(stack).map((r) => r.row);
  const maxDate = (pick: (r: StackDates) => Date | null) =>
    [...current, ...maxima].reduce<Date | null>((max, r) => {
      const d = pick(r);
      return d && (!max || d > max) ? d : max;
    }, null);
  return {
    ...stack,
    writeDate: maxDate((r) => r.write_date)!,
    sosyncWriteDate: maxDate((r) => r.sosync_write_date),
    sosyncFsoId: stack.person.sosync_fso_id ?? current.find((r) => r.sosync_fso_id !== null)?.sosync_fso_id ?? null,
  };
}

/**
 * The batch that reads a person's stack, to run on its own (readPersonStack) or after other
 * statements of the same batch; `stackFromSets` takes its result sets.
 */
export function personStackQuery(personId: number, today: IsoDate): Statement {
  return {
    text: personStackSql,
    params: [
      { name: 'personId', type: 'int', value: personId },
      { name: 'today', type: 'date', value: today },
    ],
  };
}

export function stackFromSets(personId: number, sets: readonly Record<string, unknown>[][]): PersonStack | null {
  const rows = Object.fromEntries(parts.map(([part, table], i) => [part, rowOf(table, sets[i]?.[0])]));
  if (!rows.person) return null;
  const maxima = sets.slice(parts.length).map((set) => set?.[0] as StackDates | undefined).filter((r): r is StackDates => r !== undefined);
  return completeStack({ personId, ...rows } as StackParts, maxima);
}

export async function readPersonStack(run: Runner, personId: number, today: IsoDate): Promise<PersonStack | null> {
  const { text, params } = personStackQuery(personId, today);
  return stackFromSets(personId, await run(text, params));
}

/** The composed number of a PersonTelefon row (SPEC 6.2). */
export function composePhoneNumber(row: Pick<PersonTelefonRow, 'Landkennzeichen' | 'Vorwahl' | 'Rufnummer'> | null): string {
  if (!row) return '';
  return [row.Landkennzeichen, row.Vorwahl, row.Rufnummer]
    .map((p) => (p ?? '').trim())
    .filter((p) => p !== '')
    .join(' ');
}
