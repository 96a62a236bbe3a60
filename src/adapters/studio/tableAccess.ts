/**
 * Reading and writing rows of one declared FS table (tables.ts) by id: the statements every table
 * shares, and the accessor built from them for the tables that are one record each (xBPKAccount,
 * PersonBPK). Every row written carries noSyncJobSwitch = 1 so FS does not announce sosync's own
 * change back (SPEC 4.3); deletes set FS's session flag for the same reason.
 */
import { INT32_MAX } from '../ids.ts';
import { StudioInputError, StudioQueryError } from './errors.ts';
import type { Param, Runner, Statement, StudioConnection, WriteScope } from './connection.ts';
import { rowOf, type StudioTable, type TableOf } from './tables.ts';
import type { DeleteResult, RecordWriteResult, WriteMeta } from './types.ts';


export function checkId(what: string, id: number): void {
  if (!Number.isInteger(id) || id <= 0 || id > INT32_MAX) throw new StudioInputError(`${what}: ${String(id)} is not a valid id`);
}

/** The sync columns a write sets besides the data. */
export function syncValues(meta: WriteMeta): Record<string, unknown> {
  const v: Record<string, unknown> = { sosync_write_date: meta.sosyncWriteDate, noSyncJobSwitch: true };
  if (meta.sosyncFsoId !== undefined) v.sosync_fso_id = meta.sosyncFsoId;
  return v;
}

export function definedOnly(values: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined));
}

function columnParams(table: StudioTable, values: Record<string, unknown>, prefix = ''): Param[] {
  return Object.keys(values).map((column, i) => {
    const type = table.columns[column];
    if (type === undefined) throw new StudioInputError(`${table.model} has no writable column ${column}`);
    return { name: `${prefix}v${i}`, type, value: values[column] };
  });
}

/**
 * The ids of `table`'s rows matching `where`, held for this transaction's update or delete of them
 * (UPDLOCK). sosync reads them this way instead of `… OUTPUT`: every FS table has triggers (they
 * announce changes to sosync), and SQL Server refuses an OUTPUT clause without INTO on a table
 * with an enabled trigger for that action (error 334).
 */
const idsToWrite = (table: StudioTable, where: string) => `SELECT [${table.key}] FROM dbo.[${table.name}] WITH (UPDLOCK) WHERE ${where};`;

/** One UPDATE of `table`'s rows matching `where`, after the read of their ids (its one result set); parameter names start with `prefix`. */
function updateStatement(table: StudioTable, values: Record<string, unknown>, where: string, whereParams: Param[], prefix = ''): Statement {
  const params = columnParams(table, values, prefix);
  const assignments = Object.keys(values).map((c, i) => `[${c}] = @${params[i].name}`).join(', ');
  return {
    text: `${idsToWrite(table, where)}\nUPDATE dbo.[${table.name}] SET ${assignments} WHERE ${where};`,
    params: [...params, ...whereParams],
  };
}

/** One INSERT, then the new row's `columns` (its one result set), found by SCOPE_IDENTITY() (no OUTPUT: see idsToWrite). */
function insertStatement(table: StudioTable, values: Record<string, unknown>, columns: string, prefix = ''): Statement {
  const params = columnParams(table, values, prefix);
  const names = Object.keys(values).map((c) => `[${c}]`).join(', ');
  return {
    text: `INSERT INTO dbo.[${table.name}] (${names}) VALUES (${params.map((p) => `@${p.name}`).join(', ')});\n`
      + `SELECT ${columns} FROM dbo.[${table.name}] WHERE [${table.key}] = SCOPE_IDENTITY();`,
    params,
  };
}

export async function insertRow<Row = Record<string, unknown>>(scope: WriteScope, table: StudioTable & { readonly row?: Row }, values: Record<string, unknown>): Promise<Row> {
  values = definedOnly(values);
  const { text, params } = insertStatement(table, values, '*');
  const [rows] = await scope.run(text, params);
  const row = rowOf(table, rows?.[0]);
  if (!row) throw new StudioQueryError(scope.address, `INSERT into ${table.model} returned no row`, 0);
  scope.written.push({ table: table.model, action: 'insert', id: Number((row as Record<string, unknown>)[table.key]), values });
  return row;
}

/** Updates row `id`; false when there is no such row. */
export async function updateRow(scope: WriteScope, table: StudioTable, id: number, values: Record<string, unknown>): Promise<boolean> {
  const { ids: [written] } = await writeRows(scope, [{ table, id, values }]);
  return written.length > 0;
}

/** Rows to update in one batch: `values` on row `id` of `table`, or on every row of `table` matching `where`. */
export type RowsUpdate =
  | { table: StudioTable; id: number; values: Record<string, unknown> }
  | { table: StudioTable; where: string; params: Param[]; values: Record<string, unknown> };

/** A row to insert in one batch: `insert` as a new row of `table`. */
export interface RowInsert {
  table: StudioTable;
  insert: Record<string, unknown>;
}

/** One write of a batch (writeRows). */
export type RowWrite = RowsUpdate | RowInsert;

/** What writeRows answers: the ids each write wrote (in the writes' order), and the result sets of the reads after them. */
export interface WrittenBatch {
  ids: number[][];
  tail: Record<string, unknown>[][];
}

/**
 * Several inserts and updates in one batch, one round trip, in the given order, then `tail` —
 * reads that see what the writes wrote. Each row written is recorded in the scope as insertRow
 * and updateRow record it. When the batch fails, FS stored none of it that outlives the
 * transaction, which the caller rolls back.
 */
export async function writeRows(scope: WriteScope, writes: readonly RowWrite[], tail?: Statement): Promise<WrittenBatch> {
  if (writes.length === 0 && !tail) return { ids: [], tail: [] };
  const values = writes.map((w) => definedOnly('insert' in w ? w.insert : w.values));
  const statements = writes.map((w, k): Statement => {
    if ('insert' in w) return insertStatement(w.table, values[k], `[${w.table.key}]`, `u${k}`);
    return 'id' in w
      ? updateStatement(w.table, values[k], `[${w.table.key}] = @u${k}id`, [{ name: `u${k}id`, type: 'int', value: w.id }], `u${k}`)
      : updateStatement(w.table, values[k], w.where, w.params, `u${k}`);
  });
  if (tail) statements.push(tail);
  const sets = await scope.run(statements.map((st) => st.text).join('\n'), dedupedParams(statements.flatMap((st) => st.params)));
  const ids = writes.map((w, k) => {
    const written = (sets[k] ?? []).map((r) => Number(r[w.table.key]));
    if ('insert' in w) {
      if (written.length !== 1 || !Number.isInteger(written[0])) throw new StudioQueryError(scope.address, `INSERT into ${w.table.model} returned no row`, 0);
      scope.written.push({ table: w.table.model, action: 'insert', id: written[0], values: values[k] });
    } else {
      for (const id of written) scope.written.push({ table: w.table.model, action: 'update', id, values: values[k] });
    }
    return written;
  });
  return { ids, tail: sets.slice(writes.length) };
}

/**
 * Several updates in one batch, one round trip, in the given order; each updated row is recorded
 * in the scope as updateRow records it. Answers the ids each update wrote (none where no row matched).
 */
export async function updateRows(scope: WriteScope, updates: readonly RowsUpdate[]): Promise<number[][]> {
  return (await writeRows(scope, updates)).ids;
}

/** Parameters of several statements of one batch: a name they share (a `where`'s @personId, say) goes once, and must mean one value. */
function dedupedParams(params: Param[]): Param[] {
  const byName = new Map<string, Param>();
  for (const p of params) {
    const seen = byName.get(p.name);
    // a Date compares by its time: two Date objects of one moment are one value
    if (seen && (seen.type !== p.type || !Object.is(valueOf(seen.value), valueOf(p.value)))) throw new StudioInputError(`batch parameter @${p.name} given two values`);
    byName.set(p.name, p);
  }
  return [...byName.values()];
}

const valueOf = (v: unknown) => (v instanceof Date ? v.getTime() : v);

/** Rows to delete in one batch: every row of `table` matching `where`. */
export interface RowsDelete {
  table: StudioTable;
  where: string;
}

/**
 * Several deletes in one batch, one round trip, in the given order, with FS's loop guard for
 * deletes set around them (the session context FS's triggers read). `params` serve every `where`.
 * Each deleted row is recorded in the scope; answers the ids each delete removed.
 */
export async function deleteRows(scope: WriteScope, deletes: readonly RowsDelete[], params: Param[]): Promise<number[][]> {
  const text = [
    "EXEC sp_set_session_context N'noSyncJobSwitch', 1;",
    ...deletes.map(({ table, where }) => `${idsToWrite(table, where)}\nDELETE FROM dbo.[${table.name}] WHERE ${where};`),
    "EXEC sp_set_session_context N'noSyncJobSwitch', 0;",
  ].join('\n');
  const sets = await scope.run(text, params);
  return deletes.map(({ table }, k) => {
    const ids = (sets[k] ?? []).map((r) => Number(r[table.key]));
    for (const id of ids) scope.written.push({ table: table.model, action: 'delete', id, values: {} });
    return ids;
  });
}

/** The row of `table` whose sosync_fso_id is `fsoId` (the lowest id when there are several). */
export async function findIdByFsoId(run: Runner, table: StudioTable, fsoId: number): Promise<number | null> {
  const [id] = await findIdsByFsoId(run, [[table, fsoId]]);
  return id;
}

/** The rows of several tables that carry the given FSO ids, in one batch (one round trip). */
export async function findIdsByFsoId(run: Runner, lookups: ReadonlyArray<readonly [StudioTable, number]>): Promise<Array<number | null>> {
  for (const [, fsoId] of lookups) checkId('sosync_fso_id', fsoId);
  const sets = await run(
    lookups.map(([table], i) => `SELECT TOP 1 [${table.key}] FROM dbo.[${table.name}] WHERE [sosync_fso_id] = @fsoId${i} ORDER BY [${table.key}];`).join('\n'),
    lookups.map(([, fsoId], i) => ({ name: `fsoId${i}`, type: 'int' as const, value: fsoId })));
  return lookups.map(([table], i) => (sets[i]?.[0] ? Number(sets[i][0][table.key]) : null));
}

/** One record kept in one FS row: read, find by FSO id, insert, update and delete it by id. */
export interface TableAccessor<Row, Values, NewValues = Values> {
  readonly table: TableOf<Row>;
  read(id: number): Promise<Row | null>;
  findIdByFsoId(fsoId: number): Promise<number | null>;
  insert(values: NewValues, meta: WriteMeta): Promise<RecordWriteResult>;
  /** refuses (StudioInputError) when row `id` does not exist */
  update(id: number, values: Values, meta: WriteMeta): Promise<RecordWriteResult>;
  /** `deleted` is false when there was nothing to delete */
  delete(id: number): Promise<DeleteResult>;
}

export function tableAccessor<Row, Values extends object, NewValues extends object = Values>(
  connection: StudioConnection, table: TableOf<Row>,
): TableAccessor<Row, Values, NewValues> {
  return {
    table,

    async read(id) {
      checkId(table.key, id);
      const [rows] = await connection.run(`SELECT * FROM dbo.[${table.name}] WHERE [${table.key}] = @id;`, [{ name: 'id', type: 'int', value: id }]);
      return rowOf(table, rows?.[0]);
    },

    findIdByFsoId: (fsoId) => findIdByFsoId(connection.run, table, fsoId),

    // each write is one batch, a transaction of its own: one round trip
    insert(values, meta) {
      return connection.inTransaction(async (scope) => {
        const row = await insertRow(scope.final, table, { ...values, ...syncValues(meta) });
        return { id: Number(row[table.key]), request: scope.written, answer: 'success' as const };
      });
    },

    update(id, values, meta) {
      checkId(table.key, id);
      return connection.inTransaction(async (scope) => {
        if (!(await updateRow(scope.final, table, id, { ...values, ...syncValues(meta) }))) throw new StudioInputError(`${table.model} ${id} does not exist`);
        return { id, request: scope.written, answer: 'success' as const };
      });
    },

    delete(id) {
      checkId(table.key, id);
      return connection.inTransaction(async (scope) => {
        const [ids] = await deleteRows(scope.final, [{ table, where: `[${table.key}] = @id` }], [{ name: 'id', type: 'int', value: id }]);
        return { deleted: ids.length > 0, request: scope.written, answer: 'success' as const };
      });
    },
  };
}
