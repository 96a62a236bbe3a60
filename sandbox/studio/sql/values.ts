/**
 * Values across the seam: PostgreSQL's text output → TDS column types and JavaScript values,
 * and SqlParameter values → PostgreSQL text parameters. Dates are UTC throughout, as tedious
 * reads and writes them with `useUTC`.
 */
import { SqlServerError, type ColumnInfo, type SqlParameter, type TdsTypeName } from '../engine.ts';

export interface PgField {
  name: string;
  dataTypeID: number;
  dataTypeModifier?: number;
}

const OID = {
  bool: 16, int8: 20, int2: 21, int4: 23, text: 25, float4: 700, float8: 701, bpchar: 1042, varchar: 1043,
  date: 1082, timestamp: 1114, timestamptz: 1184, numeric: 1700,
} as const;

/** Type ids whose text form the backends must hand over unparsed. */
export const rawTypeIds: number[] = Object.values(OID);

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

export function formatUtcDate(d: Date): string {
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

export function formatUtcTimestamp(d: Date): string {
  return `${formatUtcDate(d)} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}`;
}

/** PostgreSQL `timestamp` text (UTC by convention) → Date. */
export function parsePgTimestamp(text: string): Date {
  const m = /^(\d{4,})-(\d\d)-(\d\d)(?:[ T](\d\d):(\d\d):(\d\d)(?:\.(\d+))?)?(?:([+-])(\d\d)(?::?(\d\d))?)?$/.exec(text);
  if (!m) throw new SqlServerError(`Conversion failed when converting date and/or time from character string.`, 241);
  const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  let t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0), ms);
  if (m[8]) t -= (m[8] === '-' ? -1 : 1) * (Number(m[9]) * 60 + Number(m[10] ?? 0)) * 60_000;
  const d = new Date(t);
  // Years below 100 would otherwise be shifted into the 1900s.
  if (Number(m[1]) < 100) d.setUTCFullYear(Number(m[1]));
  return d;
}

function decimalScale(field: PgField, rows: unknown[][], index: number): { precision: number; scale: number } {
  const mod = field.dataTypeModifier ?? -1;
  if (field.dataTypeID === OID.numeric && mod >= 4) {
    return { precision: ((mod - 4) >> 16) & 0xffff, scale: (mod - 4) & 0xffff };
  }
  let scale = 0;
  for (const row of rows) {
    const v = row[index];
    if (typeof v === 'string' && v.includes('.')) scale = Math.max(scale, v.length - v.indexOf('.') - 1);
  }
  return { precision: 38, scale: Math.min(scale, 18) };
}

/** Column metadata for a PostgreSQL field (the rows are needed only to size decimals). */
export function columnInfo(field: PgField, rows: unknown[][], index: number): ColumnInfo {
  // PostgreSQL names an unnamed expression "?column?"; SQL Server leaves it empty.
  const name = field.name === '?column?' ? '' : field.name;
  const mod = field.dataTypeModifier ?? -1;
  let type: TdsTypeName;
  const info: ColumnInfo = { name, type: 'nvarchar', nullable: true };
  switch (field.dataTypeID) {
    case OID.bool:
    case OID.int2: type = 'bit'; break; // smallint only ever stores FS bit columns
    case OID.int4:
    case OID.int8: type = 'int'; break; // COUNT(*) is bigint in PostgreSQL, int in SQL Server
    case OID.date: type = 'date'; break;
    case OID.timestamp:
    case OID.timestamptz: type = 'datetime2'; info.scale = 3; break;
    case OID.numeric:
    case OID.float4:
    case OID.float8: {
      type = 'decimal';
      Object.assign(info, decimalScale(field, rows, index));
      break;
    }
    default:
      type = 'nvarchar';
      if ((field.dataTypeID === OID.varchar || field.dataTypeID === OID.bpchar) && mod > 4) info.length = mod - 4;
  }
  info.type = type;
  return info;
}

/** One value from PostgreSQL's text form to what the wire server expects for `column`. */
export function convertValue(raw: unknown, column: ColumnInfo, dataTypeID: number): unknown {
  if (raw === null || raw === undefined) return null;
  const text = typeof raw === 'string' ? raw : raw instanceof Date ? raw.toISOString() : String(raw);
  switch (column.type) {
    case 'bit': return dataTypeID === OID.bool ? text === 't' || text === 'true' : Number(text) !== 0;
    case 'int': return Number(text);
    case 'date':
    case 'datetime2': return parsePgTimestamp(text);
    case 'decimal': return Number(text);
    default: return text;
  }
}

/** A SqlParameter's value as PostgreSQL text (or null). */
export function parameterText(p: SqlParameter): string | null {
  const v = p.value;
  if (v === null || v === undefined) return null;
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw new SqlServerError('Conversion failed when converting date and/or time from character string.', 241);
    return p.type === 'date' ? formatUtcDate(v) : formatUtcTimestamp(v);
  }
  if (typeof v === 'string') {
    if (p.type === 'bit') return v === 'true' || v === '1' ? '1' : v === 'false' || v === '0' ? '0' : v;
    return v;
  }
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return String(v);
}
