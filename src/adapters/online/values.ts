/**
 * Odoo's XML-RPC conventions, absorbed at the edge: `false` for "no value", many2one as
 * `[id, "display name"]`, datetimes as "YYYY-MM-DD HH:MM:SS" strings in UTC, dates as "YYYY-MM-DD".
 * Which of these applies depends on the field's type (a boolean's `false` is a real value), so the
 * normalisers take the types from `fields_get`.
 */

export interface Many2one {
  id: number;
  name: string;
}

/** A field value as our code sees it. Dates stay "YYYY-MM-DD" strings (they have no time zone). */
export type OnlineValue = string | number | boolean | Date | Many2one | number[] | null;
export type OnlineRecord = { id: number } & Record<string, OnlineValue>;

/** Odoo field types we treat specially; anything else passes through with false → null. */
export type OdooFieldType =
  | 'char' | 'text' | 'html' | 'selection' | 'integer' | 'float' | 'monetary' | 'boolean'
  | 'date' | 'datetime' | 'many2one' | 'one2many' | 'many2many' | 'binary' | 'reference'
  | (string & {});

export type FieldTypes = Record<string, OdooFieldType>;

const odooDatetimePattern = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/;

/** "YYYY-MM-DD HH:MM:SS[.ffffff]" (UTC) → Date; throws on anything else. */
export function parseOdooDatetime(text: string): Date {
  const m = odooDatetimePattern.exec(text.trim());
  if (!m) throw new Error(`not an Odoo datetime: "${text}"`);
  const ms = m[7] ? Math.floor(Number(m[7].padEnd(6, '0')) / 1000) : 0;
  const date = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6], ms));
  if (Number.isNaN(date.getTime()) || date.getUTCDate() !== +m[3]) throw new Error(`not a valid datetime: "${text}"`);
  return date;
}

/** Date → "YYYY-MM-DD HH:MM:SS" in UTC, the form Odoo stores and accepts (whole seconds). */
export function formatOdooDatetime(date: Date): string {
  return date.toISOString().slice(0, 19).replace('T', ' ');
}

/** Date → "YYYY-MM-DD HH:MM:SS.ffffff" in UTC (the finer form job announcements use). */
export function formatOdooDatetimeMicro(date: Date): string {
  return `${formatOdooDatetime(date)}.${String(date.getUTCMilliseconds() * 1000).padStart(6, '0')}`;
}

/** Date → "YYYY-MM-DD" (UTC calendar day). */
export function formatOdooDate(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/** Odoo's `false`/empty → null; everything else unchanged. For values whose type is unknown. */
export function nullIfFalse<T>(value: T | false | undefined): T | null {
  return value === false || value === undefined ? null : value;
}

/** One value read from Odoo → our form, by the field's type. */
export function normaliseOdooValue(value: unknown, type: OdooFieldType | undefined): OnlineValue {
  if (type === 'boolean') return value === true || value === 1;
  if (value === false || value === null || value === undefined) return null;
  switch (type) {
    case 'many2one':
      if (Array.isArray(value) && typeof value[0] === 'number') return { id: value[0], name: String(value[1] ?? '') };
      if (typeof value === 'number') return { id: value, name: '' };
      return null;
    case 'datetime':
      if (value instanceof Date) return value;
      return typeof value === 'string' && value !== '' ? parseOdooDatetime(value) : null;
    case 'date':
      if (value instanceof Date) return formatOdooDate(value);
      return typeof value === 'string' && value !== '' ? value.slice(0, 10) : null;
    case 'one2many':
    case 'many2many':
      return Array.isArray(value) ? value.filter((v): v is number => typeof v === 'number') : [];
    default:
      if (Array.isArray(value)) return value.filter((v): v is number => typeof v === 'number');
      if (typeof value === 'object' && !(value instanceof Date)) return JSON.stringify(value);
      return value as OnlineValue;
  }
}

/** A record read from Odoo → our form. Fields without a known type only get false → null. */
export function normaliseOdooRecord(record: Record<string, unknown>, types: FieldTypes): OnlineRecord {
  const out: Record<string, OnlineValue> = {};
  for (const [name, value] of Object.entries(record)) {
    out[name] = name === 'id' ? (value as number) : normaliseOdooValue(value, types[name]);
  }
  return out as OnlineRecord;
}

/** Our value → what Odoo expects in create/write and domains: null → false, Date → UTC string, many2one → id. */
export function toOdooValue(value: unknown): unknown {
  if (value === null || value === undefined) return false;
  if (value instanceof Date) return formatOdooDatetime(value);
  if (Array.isArray(value)) return value.map(toOdooValue);
  if (typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    if (typeof obj.id === 'number' && Object.keys(obj).every((k) => k === 'id' || k === 'name')) return obj.id;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) if (v !== undefined) out[k] = toOdooValue(v);
    return out;
  }
  return value;
}

/** The id of a many2one in any of its forms: `{ id, name }`, `[id, name]`, a bare id, or empty. */
export function many2oneId(value: unknown): number | null {
  if (typeof value === 'number') return value;
  if (Array.isArray(value) && typeof value[0] === 'number') return value[0];
  if (value && typeof value === 'object' && typeof (value as Many2one).id === 'number') return (value as Many2one).id;
  return null;
}
