/**
 * The rules for writing a person stack (SPEC 6.2): a part that is given updates its current row or
 * creates one with FS's defaults, a part that is null ends its current row (valid until yesterday),
 * a number equal to the composed current one keeps FS's split of it; afterwards every current row
 * carries the FSO id and former rows lose it. And the deletion of a whole stack.
 */
import { StudioInputError, StudioQueryError } from './errors.ts';
import { dateParam, type Param, type Statement, type TransactionScope } from './connection.ts';
import { groupIds, individualSalutationTypeId, newAddressTypeId, newPersonTypeId, phoneTypeIds, typenIds } from './fsIds.ts';
import { readTypenDefaults, typenDefaultsFrom, typenDefaultsQuery } from './lookups.ts';
import {
  composePhoneNumber, currentEmailIdQuery, currentRows, fullYear, ownedByPerson, personStackQuery, stackFromSets, stackTables,
  utcToday, validToday,
} from './personStackRead.ts';
import { checkId, definedOnly, deleteRows, insertRow, syncValues, updateRows, writeRows, type RowsUpdate, type RowWrite } from './tableAccess.ts';
import { addressAmTable, addressTable, emailGroupTable, emailTable, groupTable, personBPKTable, personTable, phoneTable } from './tables.ts';
import type { IsoDate, PersonStack, PersonStackWrite, PersonStackWriteResult } from './types.ts';

const openEnd = '2099-12-31';

function dayBefore(day: IsoDate): IsoDate {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() - 1);
  return d.toISOString().slice(0, 10);
}

const intOrNull = (v: string | null | undefined) => (v == null || v.trim() === '' || !/^-?\d+$/.test(v.trim()) ? null : Number(v));

export async function writePersonStack(scope: TransactionScope, input: PersonStackWrite): Promise<PersonStackWriteResult> {
  const today = input.today ?? utcToday();
  dateParam(today, 'today');
  const yesterday = dayBefore(today);
  if (!(input.sosyncWriteDate instanceof Date) || Number.isNaN(input.sosyncWriteDate.getTime())) {
    throw new StudioInputError('sosyncWriteDate must be a valid Date');
  }
  let personId = input.personId;
  let created = false;
  let before: PersonStack | null = null;
  let defaults: Map<number, string | null>;
  // read before the transaction begins: it begins with the first write (TransactionScope)
  if (personId === null) {
    defaults = await readTypenDefaults(scope.read, Object.values(typenIds));
  } else {
    // FS's defaults and the stack as it is now, in one round trip
    checkId('PersonID', personId);
    const typen = typenDefaultsQuery(Object.values(typenIds));
    const stack = personStackQuery(personId, today);
    const [typenRows, ...stackSets] = await scope.read(`${typen.text}\n${stack.text}`, [...typen.params, ...stack.params]);
    defaults = typenDefaultsFrom(typenRows);
    before = stackFromSets(personId, stackSets);
    if (!before) throw new StudioInputError(`dbo.Person ${personId} does not exist`);
  }
  const defaultCountry = intOrNull(defaults.get(typenIds.defaultCountry));
  const sync = syncValues({ sosyncWriteDate: input.sosyncWriteDate });

  if (personId === null) {
    const person = await insertRow(scope, personTable, {
      PersontypID: newPersonTypeId,
      NationalitätID: defaultCountry,
      Anlagedatum: new Date(),
      ...input.person,
      ...sync,
    });
    personId = person.PersonID;
    created = true;
  }
  const fsoId = input.sosyncFsoId !== undefined ? input.sosyncFsoId : (before?.sosyncFsoId ?? null);
  const validFromToday = { GültigMonatArray: fullYear, GültigVon: today, GültigBis: openEnd };
  const endValidity = { GültigBis: yesterday, sosync_fso_id: null, ...sync };
  // The parts' writes depend on nothing written before them: they go to FS in one batch, in this order.
  const writes: RowWrite[] = [];
  if (!created && input.person && Object.keys(definedOnly(input.person)).length > 0) {
    writes.push({ table: personTable, id: personId, values: { ...input.person, ...sync } });
  }

  // Address
  if (input.address !== undefined) {
    const current = before?.address ?? null;
    if (input.address === null) {
      if (current) writes.push({ table: addressTable, id: current.PersonAdresseID, values: endValidity });
    } else {
      const values: Record<string, unknown> = { ...input.address };
      if (values.IndividuelleAnrede != null && String(values.IndividuelleAnrede).trim() !== '' && values.AnredeformtypID === undefined) {
        values.AnredeformtypID = individualSalutationTypeId;
      }
      if (current) {
        writes.push({ table: addressTable, id: current.PersonAdresseID, values: { ...values, ...sync } });
      } else {
        writes.push({
          table: addressTable,
          insert: {
            PersonID: personId,
            AdresstypID: newAddressTypeId,
            AnredeformtypID: intOrNull(defaults.get(typenIds.addressSalutation)),
            LandID: defaultCountry,
            ...validFromToday,
            ...values,
            ...sync,
          },
        });
      }
    }
  }

  // E-mail
  if (input.email !== undefined) {
    const current = before?.email ?? null;
    if (input.email === null) {
      if (current) writes.push({ table: emailTable, id: current.PersonEmailID, values: endValidity });
    } else if (current) {
      writes.push({ table: emailTable, id: current.PersonEmailID, values: { ...input.email, ...sync } });
    } else {
      writes.push({
        table: emailTable,
        insert: {
          PersonID: personId,
          AnredeformtypID: intOrNull(defaults.get(typenIds.emailSalutation)),
          ...validFromToday,
          ...input.email,
          ...sync,
        },
      });
    }
  }

  // Phone, mobile, fax
  for (const kind of ['phone', 'mobile', 'fax'] as const) {
    const wanted = input[kind];
    if (wanted === undefined) continue;
    const current = before?.[kind] ?? null;
    const number = (wanted ?? '').trim();
    if (number === '') {
      if (current) writes.push({ table: phoneTable, id: current.PersonTelefonID, values: endValidity });
    } else if (current) {
      if (composePhoneNumber(current) !== number) {
        writes.push({ table: phoneTable, id: current.PersonTelefonID, values: { Landkennzeichen: null, Vorwahl: null, Rufnummer: number, ...sync } });
      }
    } else {
      writes.push({
        table: phoneTable,
        insert: { PersonID: personId, TelefontypID: phoneTypeIds[kind], Rufnummer: number, ...validFromToday, ...sync },
      });
    }
  }

  // Person groups: a group switched off ends every row of it valid today
  const personParams = (extra: Param[]): Param[] => [{ name: 'personId', type: 'int', value: personId }, { name: 'today', type: 'date', value: today }, ...extra];
  for (const flag of ['donationDeductionOptOut', 'donationReceipt'] as const) {
    const wanted = input[flag];
    if (wanted === undefined) continue;
    const current = before?.[flag] ?? null;
    if (wanted && !current) {
      writes.push({
        table: groupTable,
        insert: { PersonID: personId, zGruppeDetailID: groupIds[flag], Steuerung: true, GültigVon: today, GültigBis: openEnd, ...sync },
      });
    } else if (!wanted && current) {
      const group = `${flag}Group`;
      writes.push({
        table: groupTable,
        where: `[PersonID] = @personId AND [zGruppeDetailID] = @${group} AND ${validToday}`,
        params: personParams([{ name: group, type: 'int', value: groupIds[flag] }]),
        values: endValidity,
      });
    }
  }

  // Newsletter: a group of the current e-mail, so it is decided after the e-mail is written: the
  // batch above ends with reading the current e-mail and its newsletter rows, as written.
  const stack = personStackQuery(personId, today);
  let after: PersonStack | null;
  if (input.newsletter !== undefined) {
    const newsletterRead: Statement = {
      text: `${currentEmailIdQuery};\nSELECT [PersonEmailGruppeID] FROM dbo.[PersonEmailGruppe] WHERE [PersonEmailID] = (${currentEmailIdQuery}) AND [zGruppeDetailID] = @newsletterGroup AND ${validToday};`,
      params: personParams([{ name: 'newsletterGroup', type: 'int', value: groupIds.newsletter }]),
    };
    const { tail: [emailRows, groupRows] } = await writeRows(scope, writes, newsletterRead);
    const emailId = emailRows?.[0] ? Number(emailRows[0].PersonEmailID) : null;
    const newsletterWrites: RowWrite[] = [];
    if (input.newsletter && (groupRows ?? []).length === 0) {
      if (emailId === null) throw new StudioInputError(`dbo.Person ${personId}: the newsletter flag needs a current e-mail address`);
      newsletterWrites.push({
        table: emailGroupTable,
        insert: { PersonEmailID: emailId, zGruppeDetailID: groupIds.newsletter, Steuerung: true, GültigVon: today, GültigBis: openEnd, ...sync },
      });
    } else if (!input.newsletter) {
      for (const r of groupRows ?? []) newsletterWrites.push({ table: emailGroupTable, id: Number(r.PersonEmailGruppeID), values: endValidity });
    }
    // Nothing written: the stack is as read at the start, in this transaction.
    after = scope.written.length === 0 && newsletterWrites.length === 0 && before
      ? before
      : stackFromSets(personId, (await writeRows(scope, newsletterWrites, stack)).tail);
  } else {
    after = writes.length === 0 && !created && before ? before : stackFromSets(personId, (await writeRows(scope, writes, stack)).tail);
  }

  // Every current row carries the FSO id and this write's sosync_write_date; former ones lose the id.
  if (!after) throw new StudioQueryError(scope.address, `dbo.Person ${personId} vanished during the write`, 0);
  const current = currentRows(after);
  const touched = new Set(scope.written.filter((w) => w.action !== 'delete').map((w) => `${w.table}#${w.id}`));
  const stamps: RowsUpdate[] = current
    .filter(({ table, id, row }) => !(touched.has(`${table.model}#${id}`) && row.sosync_fso_id === fsoId))
    .map(({ table, id }) => ({ table, id, values: { sosync_fso_id: fsoId, ...sync } }));
  // former rows that still carry an FSO id, per table; with the stamps, one batch
  const personParam: Param[] = [{ name: 'personId', type: 'int', value: personId }];
  const formerRows: RowsUpdate[] = stackTables.map((table) => {
    const ids = current.filter((r) => r.table === table).map((r) => r.id);
    const exclude = ids.length ? ` AND [${table.key}] NOT IN (${ids.join(', ')})` : '';
    return { table, where: `${ownedByPerson(table)} AND [sosync_fso_id] IS NOT NULL${exclude}`, params: personParam, values: { sosync_fso_id: null, ...sync } };
  });
  // the last batch: a write that wrote nothing before it (it only stamps) is this one batch, a transaction of its own
  await updateRows(scope.final, [...stamps, ...formerRows]);
  return { personId, created, request: scope.written, answer: 'success' };
}

/**
 * Deletes the person and every row that belongs to it (its bPKs included), referencing rows first,
 * in one batch (a transaction of its own).
 */
export async function deletePersonStack(scope: TransactionScope, personId: number): Promise<boolean> {
  const p: Param[] = [{ name: 'personId', type: 'int', value: personId }];
  const owned = [emailGroupTable, addressAmTable, addressTable, emailTable, phoneTable, groupTable, personBPKTable]
    .map((table) => ({ table, where: ownedByPerson(table) }));
  const deleted = await deleteRows(scope.final, [...owned, { table: personTable, where: '[PersonID] = @personId' }], p);
  return deleted[deleted.length - 1].length > 0;
}
