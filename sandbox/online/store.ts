/**
 * The FSO stand-in's database: models, rows, and Odoo's rules for values. In memory.
 * Rows hold empty values as null, many2one as the related id, dates as "YYYY-MM-DD" and datetimes as
 * "YYYY-MM-DD HH:MM:SS" (UTC) — what Odoo keeps in PostgreSQL. `toOdoo` turns a row into what
 * Odoo's `read` answers: `false` for empty, `[id, display_name]` for many2one.
 *
 * Writing through the store directly is what a database script would do: no sync announcement, no
 * `sosync_write_date` bookkeeping. The stand-in's RPC layer adds FSO's behaviour on top.
 */
import { compileDomain, compileOrder, type DomainContext, type Row } from './domain.ts';
import { OdooException, missingRecord, pyRepr } from './faults.ts';
import { magicFields, modelDefs, type FieldDef, type ModelDef } from './models.ts';
import { isoCountries } from './countries.ts';

export type { Row };

export interface StoreWriteOptions {
  /** acting user, for create_uid / write_uid */
  uid?: number;
}

export interface StoreSearchOptions {
  offset?: number;
  limit?: number;
  order?: string;
  /** hide archived records unless the domain mentions `active` (Odoo's default); default true */
  activeTest?: boolean;
}

/** What `OnlineStore.snapshot` gives and `restore` takes; plain JSON. */
export interface OnlineSnapshot {
  format: 'sosync-fso-stand-in';
  version: 1;
  models: Record<string, { nextId: number; rows: Row[] }>;
}

const odooDatetime = /^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}:\d{2})(?:\.\d{1,6})?)?$/;

function isValidDay(day: string): boolean {
  const d = new Date(`${day}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === day;
}

export function odooNow(date = new Date()): string {
  return date.toISOString().slice(0, 19).replace('T', ' ');
}

const isEmpty = (v: unknown) => v === null || v === undefined || v === false;

/** One stored change, as the journal keeps it: the row's whole new state, or its removal. */
export type StoreChange =
  | { op: 'put'; model: string; row: Row; nextId: number }
  | { op: 'drop'; model: string; id: number };

export class OnlineStore implements DomainContext {
  /** told of every row change (not of res.users: logins come from the stand-in options) */
  onChange: ((change: StoreChange) => void) | null = null;
  readonly models = new Map<string, ModelDef & { allFields: Record<string, FieldDef> }>();
  private readonly tables = new Map<string, Map<number, Row>>();
  private readonly nextIds = new Map<string, number>();
  private readonly passwords = new Map<number, string>();

  constructor(defs: ModelDef[] = modelDefs) {
    for (const def of defs) {
      this.models.set(def.name, { ...def, allFields: { ...magicFields, ...def.fields } });
      this.tables.set(def.name, new Map());
      this.nextIds.set(def.name, def.name === 'res.users' ? 2 : 1);
    }
    if (this.models.has('res.country')) {
      for (const [code, name] of isoCountries) this.create('res.country', { code, name });
    }
  }

  // --- models ------------------------------------------------------------------------------

  /** the model (with magic fields), or Odoo's error for an unknown one */
  model(name: string): ModelDef & { allFields: Record<string, FieldDef> } {
    const def = this.models.get(name);
    if (!def) throw new OdooException(`Object ${name} doesn't exist`, 'KeyError');
    return { ...def, fields: def.allFields };
  }

  private table(model: string): Map<number, Row> {
    this.model(model);
    return this.tables.get(model)!;
  }

  // --- reading -----------------------------------------------------------------------------

  row(model: string, id: number): Row | undefined {
    return this.tables.get(model)?.get(id);
  }

  /** a copy of the stored row */
  get(model: string, id: number): Row | undefined {
    const r = this.table(model).get(id);
    return r ? { ...r } : undefined;
  }

  /** copies of all rows, in id order */
  all(model: string): Row[] {
    return [...this.table(model).values()].map((r) => ({ ...r }));
  }

  exists(model: string, id: number): boolean {
    return this.table(model).has(id);
  }

  displayName(model: string, id: number): string {
    const def = this.models.get(model);
    const r = this.row(model, id);
    if (def?.recName && r && typeof r[def.recName] === 'string') return r[def.recName] as string;
    return `${model},${id}`;
  }

  /** ids of `model` matching `domain`, ordered, paged */
  search(model: string, domain: unknown, options: StoreSearchOptions = {}): number[] {
    const def = this.model(model);
    const predicate = compileDomain(domain ?? [], def, this);
    const mentionsActive = Array.isArray(domain) && domain.some((t) => Array.isArray(t) && t[0] === 'active');
    const hideArchived = (options.activeTest ?? true) && 'active' in def.fields && !mentionsActive;
    let rows = [...this.table(model).values()].filter((r) => (!hideArchived || r.active === true) && predicate(r));
    rows.sort(compileOrder(options.order || def.order, def));
    const offset = typeof options.offset === 'number' && options.offset > 0 ? options.offset : 0;
    rows = rows.slice(offset);
    if (typeof options.limit === 'number' && options.limit > 0) rows = rows.slice(0, options.limit);
    return rows.map((r) => r.id as number);
  }

  /** rows as Odoo's `read` answers them: false for empty, [id, name] for many2one */
  toOdoo(model: string, id: number, fields?: string[]): Record<string, unknown> {
    const def = this.model(model);
    const r = this.row(model, id);
    if (!r) throw missingRecord(model, [id], 1);
    const names = fields && fields.length > 0 ? fields : Object.keys(def.fields);
    const out: Record<string, unknown> = { id };
    for (const name of names) {
      const f = def.fields[name];
      if (!f) throw new OdooException(`Invalid field ${pyRepr(name)} on model ${pyRepr(model)}`, 'ValueError');
      if (name === 'display_name') out[name] = this.displayName(model, id);
      else if (f.type === 'boolean') out[name] = r[name] === true;
      else if (f.type === 'many2one') {
        const ref = r[name];
        out[name] = typeof ref === 'number' && this.row(f.relation!, ref) ? [ref, this.displayName(f.relation!, ref)] : false;
      } else out[name] = isEmpty(r[name]) ? false : r[name];
    }
    return out;
  }

  fieldsGet(model: string, allfields?: string[] | null, attributes?: string[] | null): Record<string, Record<string, unknown>> {
    const def = this.model(model);
    const out: Record<string, Record<string, unknown>> = {};
    for (const [name, f] of Object.entries(def.fields)) {
      if (allfields && allfields.length > 0 && !allfields.includes(name)) continue;
      const info: Record<string, unknown> = {
        type: f.type, string: f.string, required: f.required ?? false, readonly: f.readonly ?? false,
        sortable: true, searchable: true,
      };
      if (f.relation) info.relation = f.relation;
      if (f.selection) info.selection = f.selection.map(([k, v]) => [k, v]);
      out[name] = attributes && attributes.length > 0
        ? Object.fromEntries(Object.entries(info).filter(([k]) => attributes.includes(k)))
        : info;
    }
    return out;
  }

  // --- writing -----------------------------------------------------------------------------

  /** Odoo's coercion of one incoming value into the stored form; throws like Odoo on bad input */
  private coerce(model: string, name: string, f: FieldDef, value: unknown): unknown {
    if (f.type === 'boolean') return Boolean(value);
    if (value === false || value === null || value === undefined || value === '') {
      return null;
    }
    const bad = (why: string) => new OdooException(`Wrong value for ${model}.${name}: ${pyRepr(value)} (${why})`, 'ValueError');
    switch (f.type) {
      case 'char': case 'text':
        if (typeof value === 'string') return value;
        if (typeof value === 'number') return String(value);
        throw bad('expected text');
      case 'selection': {
        if (typeof value !== 'string' || !f.selection?.some(([k]) => k === value)) throw bad('not one of the selection values');
        return value;
      }
      case 'integer':
        if (typeof value === 'number' && Number.isFinite(value)) return Math.trunc(value);
        if (typeof value === 'string' && /^-?\d+$/.test(value)) return Number(value);
        throw new OdooException(`invalid literal for int() with base 10: ${pyRepr(value)}`, 'ValueError');
      case 'float':
        if (typeof value === 'number') return value;
        throw new OdooException(`could not convert string to float: ${pyRepr(value)}`, 'ValueError');
      case 'date': {
        const text = value instanceof Date ? value.toISOString().slice(0, 10) : String(value);
        const m = odooDatetime.exec(text);
        if (!m || !isValidDay(m[1])) throw new OdooException(`time data ${pyRepr(text)} does not match format '%Y-%m-%d'`, 'ValueError');
        return m[1];
      }
      case 'datetime': {
        const text = value instanceof Date ? odooNow(value) : String(value);
        const m = odooDatetime.exec(text);
        if (!m || !isValidDay(m[1])) {
          throw new OdooException(`time data ${pyRepr(text)} does not match format '%Y-%m-%d %H:%M:%S'`, 'ValueError');
        }
        return `${m[1]} ${m[2] ?? '00:00:00'}`;
      }
      case 'many2one': {
        const id = Array.isArray(value) ? value[0] : value;
        if (typeof id !== 'number' || !Number.isInteger(id)) throw bad('expected a record id');
        if (!this.row(f.relation!, id)) {
          const table = model.replace(/\./g, '_');
          throw new OdooException(
            `insert or update on table "${table}" violates foreign key constraint "${table}_${name}_fkey"\nDETAIL:  Key (${name})=(${id}) is not present in table "${f.relation!.replace(/\./g, '_')}".`,
            'psycopg2.IntegrityError',
          );
        }
        return id;
      }
    }
  }

  /** validate and convert incoming values; magic fields are ignored like Odoo does */
  private prepare(model: string, values: unknown): Row {
    if (!values || typeof values !== 'object' || Array.isArray(values)) {
      throw new OdooException(`Invalid values for ${model}: ${pyRepr(values)}`, 'TypeError');
    }
    const def = this.model(model);
    const out: Row = {};
    for (const [name, value] of Object.entries(values as Row)) {
      if (name in magicFields) continue;
      const f = def.fields[name];
      if (!f) throw new OdooException(`Invalid field ${pyRepr(name)} on model ${pyRepr(model)}`, 'ValueError');
      out[name] = this.coerce(model, name, f, value);
    }
    return out;
  }

  private checkRequired(model: string, row: Row): void {
    const def = this.model(model);
    for (const [name, f] of Object.entries(def.fields)) {
      if (f.required && isEmpty(row[name])) {
        throw new OdooException(
          `null value in column "${name}" violates not-null constraint\nDETAIL:  Failing row of ${model} (id ${String(row.id)}).`,
          'psycopg2.IntegrityError',
        );
      }
    }
  }

  /** insert a record; returns its id */
  create(model: string, values: Row, options: StoreWriteOptions = {}): number {
    const def = this.model(model);
    const given = this.prepare(model, values);
    const id = this.nextIds.get(model)!;
    const now = odooNow();
    const row: Row = { id };
    for (const [name, f] of Object.entries(def.fields)) {
      if (name in magicFields) continue;
      row[name] = f.type === 'boolean' ? (name === 'active') : null;
    }
    Object.assign(row, given);
    if (def.compute) Object.assign(row, def.compute(row, given));
    Object.assign(row, { create_date: now, write_date: now, create_uid: options.uid ?? null, write_uid: options.uid ?? null });
    this.checkRequired(model, row);
    this.nextIds.set(model, id + 1);
    this.put(model, row);
    return id;
  }

  /** update records; all must exist (Odoo's MissingError otherwise) */
  update(model: string, ids: number[], values: Row, options: StoreWriteOptions = {}): void {
    const def = this.model(model);
    const given = this.prepare(model, values);
    const table = this.table(model);
    const missing = ids.filter((id) => !table.has(id));
    if (missing.length > 0) throw missingRecord(model, missing, options.uid ?? 1);
    const now = odooNow();
    const updated = ids.map((id) => {
      const row = { ...table.get(id)!, ...given };
      if (def.compute) Object.assign(row, def.compute(row, given));
      Object.assign(row, { write_date: now, write_uid: options.uid ?? null });
      this.checkRequired(model, row);
      return row;
    });
    for (const row of updated) this.put(model, row);
  }

  /** delete records, applying the many2one ondelete rules of the models referring to them */
  remove(model: string, ids: number[], options: StoreWriteOptions = {}): void {
    const table = this.table(model);
    const missing = ids.filter((id) => !table.has(id));
    if (missing.length > 0) throw missingRecord(model, missing, options.uid ?? 1);
    const doomed = new Set(ids);
    for (const [otherName, other] of this.models) {
      for (const [field, f] of Object.entries(other.fields)) {
        if (f.type !== 'many2one' || f.relation !== model) continue;
        for (const r of this.tables.get(otherName)!.values()) {
          if (typeof r[field] !== 'number' || !doomed.has(r[field] as number)) continue;
          if (f.ondelete === 'restrict') {
            throw new OdooException(
              'The operation cannot be completed: another model requires the record being deleted. If possible, archive it instead.\n\n'
              + `Model: ${other.description} (${otherName}), Constraint: ${otherName.replace(/\./g, '_')}_${field}_fkey`,
              'psycopg2.IntegrityError',
            );
          }
        }
      }
    }
    for (const id of ids) {
      table.delete(id);
      if (model !== 'res.users') this.onChange?.({ op: 'drop', model, id });
    }
    for (const [otherName, other] of this.models) {
      for (const [field, f] of Object.entries(other.fields)) {
        if (f.type !== 'many2one' || f.relation !== model) continue;
        const refs = [...this.tables.get(otherName)!.values()].filter((r) => typeof r[field] === 'number' && doomed.has(r[field] as number));
        if (refs.length === 0) continue;
        if (f.ondelete === 'cascade') this.remove(otherName, refs.map((r) => r.id as number), options);
        else for (const r of refs) this.put(otherName, { ...r, [field]: null });
      }
    }
  }

  private put(model: string, row: Row): void {
    this.tables.get(model)!.set(row.id as number, row);
    if (model !== 'res.users') this.onChange?.({ op: 'put', model, row: { ...row }, nextId: this.nextIds.get(model)! });
  }

  /** Applies a journalled change as it was recorded (replay after a restart). */
  apply(change: StoreChange): void {
    const table = this.tables.get(change.model);
    if (!table || change.model === 'res.users') throw new Error(`journal: unknown model ${change.model}`);
    if (change.op === 'drop') {
      table.delete(change.id);
      return;
    }
    table.set(change.row.id as number, { ...change.row });
    this.nextIds.set(change.model, Math.max(this.nextIds.get(change.model)!, change.nextId));
  }

  // --- users and countries -----------------------------------------------------------------

  addUser(login: string, password: string, name = login): number {
    const uid = this.create('res.users', { login, name });
    this.passwords.set(uid, password);
    return uid;
  }

  /** delete a user (a later addUser with the same login gets a new uid) */
  removeUser(login: string): void {
    const ids = this.search('res.users', [['login', '=', login]], { activeTest: false });
    for (const id of ids) this.passwords.delete(id);
    if (ids.length > 0) this.remove('res.users', ids);
  }

  setPassword(login: string, password: string): void {
    for (const id of this.search('res.users', [['login', '=', login]])) this.passwords.set(id, password);
  }

  /** uid of an active user with this login and password, or false (like common.authenticate) */
  checkLogin(login: unknown, password: unknown): number | false {
    if (typeof login !== 'string' || typeof password !== 'string') return false;
    const [uid] = this.search('res.users', [['login', '=', login]]);
    return uid !== undefined && this.passwords.get(uid) === password ? uid : false;
  }

  checkUid(uid: unknown, password: unknown): boolean {
    if (typeof uid !== 'number' || typeof password !== 'string') return false;
    const r = this.row('res.users', uid);
    return r !== undefined && r.active === true && this.passwords.get(uid) === password;
  }

  // --- snapshot and restore (the sandbox keeps FSO's data across restarts) ----------------------

  /**
   * Every model's rows and next id, as plain JSON. Users are left out: their logins and
   * passwords come from whoever starts the stand-in, and passwords never go to disk.
   */
  snapshot(): OnlineSnapshot {
    const models: OnlineSnapshot['models'] = {};
    for (const [name, table] of this.tables) {
      if (name === 'res.users') continue;
      models[name] = { nextId: this.nextIds.get(name)!, rows: [...table.values()].map((r) => ({ ...r })) };
    }
    return { format: 'sosync-fso-stand-in', version: 1, models };
  }

  /**
   * Replaces the rows of every model named in `snapshot` (ids preserved). Checks the whole
   * snapshot first, so a bad one changes nothing.
   */
  restore(snapshot: unknown): void {
    const s = snapshot as Partial<OnlineSnapshot> | null;
    if (!s || typeof s !== 'object' || s.format !== 'sosync-fso-stand-in' || s.version !== 1 || !s.models || typeof s.models !== 'object') {
      throw new Error('not an FSO stand-in snapshot (format "sosync-fso-stand-in", version 1)');
    }
    const checked: Array<[string, number, Row[]]> = [];
    for (const [name, entry] of Object.entries(s.models)) {
      if (!this.models.has(name)) throw new Error(`snapshot: unknown model ${name}`);
      if (name === 'res.users') throw new Error('snapshot: res.users is not restored (logins come from the stand-in options)');
      if (!entry || !Array.isArray(entry.rows) || !Number.isInteger(entry.nextId)) throw new Error(`snapshot: ${name} needs rows and nextId`);
      let maxId = 0;
      for (const row of entry.rows) {
        if (!row || typeof row !== 'object' || !Number.isInteger(row.id) || (row.id as number) < 1) {
          throw new Error(`snapshot: ${name} has a row without a positive integer id`);
        }
        maxId = Math.max(maxId, row.id as number);
      }
      if (entry.nextId <= maxId) throw new Error(`snapshot: ${name} nextId ${entry.nextId} is not above its highest id ${maxId}`);
      checked.push([name, entry.nextId, entry.rows]);
    }
    for (const [name, nextId, rows] of checked) {
      const table = this.tables.get(name)!;
      table.clear();
      for (const row of rows) table.set(row.id as number, { ...row });
      this.nextIds.set(name, nextId);
    }
  }

  countryId(code: string): number | undefined {
    return this.search('res.country', [['code', '=', code.toUpperCase()]], { limit: 1 })[0];
  }
}
