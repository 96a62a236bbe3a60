/**
 * SQL Server data types on the wire (MS-TDS 2.2.5.4 / 2.2.5.5): TYPE_INFO and values for result
 * columns, and the decoding of RPC parameter values.
 *
 * Dates: the wire carries wall-clock values without a zone. tedious (useUTC, its default) writes and
 * reads them as UTC, so a JS Date's UTC fields are the wall-clock value on both sides.
 */
import type { ColumnInfo, TdsTypeName } from '../engine.ts';
import { PayloadReader, TdsProtocolError } from './reader.ts';
import { ByteWriter } from './writer.ts';

export const DataType = {
  NULL: 0x1f,
  INT1: 0x30,
  BIT: 0x32,
  INT2: 0x34,
  INT4: 0x38,
  DATETIM4: 0x3a,
  FLT4: 0x3b,
  DATETIME: 0x3d,
  FLT8: 0x3e,
  INT8: 0x7f,
  GUID: 0x24,
  INTN: 0x26,
  DATEN: 0x28,
  TIMEN: 0x29,
  DATETIME2N: 0x2a,
  DATETIMEOFFSETN: 0x2b,
  BITN: 0x68,
  DECIMALN: 0x6a,
  NUMERICN: 0x6c,
  FLTN: 0x6d,
  DATETIMN: 0x6f,
  BIGVARCHR: 0xa7,
  BIGCHAR: 0xaf,
  NVARCHAR: 0xe7,
  NCHAR: 0xef,
} as const;

/**
 * SQL_Latin1_General_CP1_CI_AS: LCID 0x0409, case/accent/width flags, sort id 52 → code page 1252,
 * which holds ä ö ü ß. tedious encodes varchar parameters with the collation the server announces.
 */
export const SERVER_COLLATION = Buffer.from([0x09, 0x04, 0xd0, 0x00, 0x34]);

const NVARCHAR_MAX_CHARS = 4000;
const VARCHAR_MAX_BYTES = 8000;
const USHORT_NULL = 0xffff;
const PLP_NULL = 0xffffffffffffffffn;
const PLP_UNKNOWN_LENGTH = 0xfffffffffffffffen;
const MS_PER_DAY = 86_400_000;
/** days from 0001-01-01 (date, datetime2) and from 1900-01-01 (datetime) to 1970-01-01 */
const DAYS_0001_TO_EPOCH = 719_162;
const DAYS_1900_TO_EPOCH = 25_567;

// ---------------------------------------------------------------- code page 1252

/** Code points of bytes 0x80..0x9F in Windows-1252; the five unassigned bytes map to themselves. */
const CP1252_HIGH = [
  0x20ac, 0x81, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8d, 0x017d, 0x8f,
  0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x9d, 0x017e, 0x0178,
];
const CP1252_REVERSE = new Map<number, number>(CP1252_HIGH.map((cp, i) => [cp, 0x80 + i]));

export function decodeCp1252(bytes: Buffer): string {
  let out = '';
  for (const b of bytes) out += String.fromCharCode(b >= 0x80 && b <= 0x9f ? CP1252_HIGH[b - 0x80] : b);
  return out;
}

/** Characters outside code page 1252 become '?', as SQL Server stores them in a varchar. */
export function encodeCp1252(text: string): Buffer {
  const out = Buffer.alloc(text.length);
  let n = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    const mapped = CP1252_REVERSE.get(cp);
    if (mapped !== undefined) out[n++] = mapped;
    else if (cp < 0x80 || (cp >= 0xa0 && cp <= 0xff)) out[n++] = cp;
    else out[n++] = 0x3f;
  }
  return out.subarray(0, n);
}

// ---------------------------------------------------------------- conversions from engine values

/** A value the engine handed over does not fit its column's type. */
export class ValueConversionError extends Error {}

function toDate(value: unknown, column: string): Date {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new ValueConversionError(`column ${column}: invalid date`);
    return value;
  }
  if (typeof value === 'string') {
    // A zone-less text is a wall-clock value, which this server keeps in the UTC fields.
    const zoneless = /^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$/.test(value);
    const parsed = new Date(zoneless ? (value.length === 10 ? `${value}T00:00:00Z` : `${value.replace(' ', 'T')}Z`) : value);
    if (!Number.isNaN(parsed.getTime())) return parsed;
  }
  if (typeof value === 'number' && Number.isFinite(value)) return new Date(value);
  throw new ValueConversionError(`column ${column}: cannot send ${describe(value)} as a date`);
}

function toBigInt(value: unknown, column: string): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  if (typeof value === 'boolean') return value ? 1n : 0n;
  if (typeof value === 'string' && /^\s*[+-]?\d+\s*$/.test(value)) return BigInt(value.trim());
  throw new ValueConversionError(`column ${column}: cannot send ${describe(value)} as an integer`);
}

function toBoolean(value: unknown, column: string): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return value !== 0 && value !== 0n;
  if (typeof value === 'string') {
    const v = value.trim().toLowerCase();
    if (['1', 'true', 't'].includes(v)) return true;
    if (['0', 'false', 'f'].includes(v)) return false;
  }
  throw new ValueConversionError(`column ${column}: cannot send ${describe(value)} as a bit`);
}

function toText(value: unknown): string {
  if (value instanceof Date) return value.toISOString();
  return String(value);
}

function describe(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value.slice(0, 40)) : String(value);
  return `${typeof value} ${text}`;
}

/** Decimal text of a number/bigint/string, normalised to digits with an optional '.' and sign. */
function decimalText(value: unknown, column: string): string {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number' && Number.isFinite(value)) {
    // The shortest text that reads back as the same number; toFixed only where that has an exponent.
    const text = String(value);
    if (!/e/i.test(text)) return text;
    return Math.abs(value) < 1e21 ? value.toFixed(20).replace(/\.?0+$/, '') : BigInt(Math.round(value)).toString();
  }
  if (typeof value === 'string' && /^\s*[+-]?(\d+\.?\d*|\.\d+)\s*$/.test(value)) return value.trim();
  throw new ValueConversionError(`column ${column}: cannot send ${describe(value)} as a decimal`);
}

/** Digits after the decimal point a value needs (trailing zeros ignored). */
function scaleOf(value: unknown): number {
  if (value === null || value === undefined) return 0;
  try {
    const text = decimalText(value, '');
    const frac = text.split('.')[1] ?? '';
    return frac.replace(/0+$/, '').length;
  } catch {
    return 0;
  }
}

/** Unscaled integer of a decimal at `scale`, rounded half away from zero. */
function scaledDecimal(value: unknown, scale: number, column: string): bigint {
  const text = decimalText(value, column);
  const negative = text.startsWith('-');
  const unsigned = text.replace(/^[+-]/, '');
  const [intPart, fracPart = ''] = unsigned.split('.');
  const padded = (fracPart + '0'.repeat(scale + 1)).slice(0, scale + 1);
  let scaled = BigInt((intPart || '0') + padded.slice(0, scale));
  if (Number(padded[scale]) >= 5) scaled += 1n;
  return negative ? -scaled : scaled;
}

// ---------------------------------------------------------------- result columns

/** A result column with everything the wire needs settled. */
export interface WireColumn {
  name: string;
  type: TdsTypeName;
  /** characters for (n)varchar; undefined = max */
  length: number | undefined;
  precision: number;
  scale: number;
  nullable: boolean;
}

function decimalBytes(precision: number): number {
  if (precision <= 9) return 5;
  if (precision <= 19) return 9;
  if (precision <= 28) return 13;
  return 17;
}

function intBytes(type: TdsTypeName): number {
  switch (type) {
    case 'tinyint': return 1;
    case 'smallint': return 2;
    case 'bigint': return 8;
    default: return 4;
  }
}

/** Settles lengths, precision and scale; a decimal without a scale gets the widest its values need. */
export function resolveColumns(columns: ColumnInfo[], rows: unknown[][]): WireColumn[] {
  return columns.map((column, index) => {
    let length = column.length;
    if (column.type === 'nvarchar' && length !== undefined && (length > NVARCHAR_MAX_CHARS || length < 1)) length = undefined;
    if (column.type === 'varchar' && length !== undefined && (length > VARCHAR_MAX_BYTES || length < 1)) length = undefined;
    let precision = 0;
    let scale = 0;
    if (column.type === 'decimal') {
      precision = Math.min(Math.max(column.precision ?? 38, 1), 38);
      scale = column.scale ?? Math.min(rows.reduce((max, row) => Math.max(max, scaleOf(row[index])), 0), 18);
      scale = Math.min(Math.max(scale, 0), precision);
    } else if (column.type === 'datetime2') {
      scale = column.scale !== undefined && column.scale >= 0 && column.scale <= 7 ? column.scale : 7;
    }
    return { name: column.name, type: column.type, length, precision, scale, nullable: column.nullable ?? true };
  });
}

export function writeTypeInfo(w: ByteWriter, column: WireColumn): void {
  switch (column.type) {
    case 'int':
    case 'bigint':
    case 'smallint':
    case 'tinyint':
      w.u8(DataType.INTN).u8(intBytes(column.type));
      return;
    case 'bit':
      w.u8(DataType.BITN).u8(1);
      return;
    case 'nvarchar':
      w.u8(DataType.NVARCHAR).u16le(column.length === undefined ? USHORT_NULL : column.length * 2).bytes(SERVER_COLLATION);
      return;
    case 'varchar':
      w.u8(DataType.BIGVARCHR).u16le(column.length === undefined ? USHORT_NULL : column.length).bytes(SERVER_COLLATION);
      return;
    case 'date':
      w.u8(DataType.DATEN);
      return;
    case 'datetime':
      w.u8(DataType.DATETIMN).u8(8);
      return;
    case 'datetime2':
      w.u8(DataType.DATETIME2N).u8(column.scale);
      return;
    case 'decimal':
      w.u8(DataType.DECIMALN).u8(decimalBytes(column.precision)).u8(column.precision).u8(column.scale);
      return;
    default: {
      const never: never = column.type;
      throw new ValueConversionError(`unknown column type ${String(never)}`);
    }
  }
}

function writePlp(w: ByteWriter, data: Buffer): void {
  w.u64le(BigInt(data.length));
  if (data.length > 0) w.u32le(data.length).bytes(data);
  w.u32le(0);
}

function timeOfDayUnits(date: Date, scale: number): { units: bigint; dayCarry: number } {
  const ms = ((date.getTime() % MS_PER_DAY) + MS_PER_DAY) % MS_PER_DAY;
  const perDay = 86_400n * 10n ** BigInt(scale);
  let units = BigInt(Math.round((ms * 10 ** scale) / 1000));
  let dayCarry = 0;
  if (units >= perDay) {
    units -= perDay;
    dayCarry = 1;
  }
  return { units, dayCarry };
}

function daysSinceEpoch(date: Date): number {
  return Math.floor(date.getTime() / MS_PER_DAY);
}

/** Writes one value of a ROW token. */
export function writeValue(w: ByteWriter, column: WireColumn, value: unknown): void {
  const isNull = value === null || value === undefined;
  switch (column.type) {
    case 'int':
    case 'bigint':
    case 'smallint':
    case 'tinyint': {
      if (isNull) { w.u8(0); return; }
      const size = intBytes(column.type);
      const v = toBigInt(value, column.name);
      const bits = BigInt(size * 8);
      const min = column.type === 'tinyint' ? 0n : -(1n << (bits - 1n));
      const max = column.type === 'tinyint' ? 255n : (1n << (bits - 1n)) - 1n;
      if (v < min || v > max) throw new ValueConversionError(`column ${column.name}: ${v} is out of range for ${column.type}`);
      const b = Buffer.alloc(size);
      if (size === 1) b.writeUInt8(Number(v));
      else if (size === 2) b.writeInt16LE(Number(v));
      else if (size === 4) b.writeInt32LE(Number(v));
      else b.writeBigInt64LE(v);
      w.u8(size).bytes(b);
      return;
    }
    case 'bit':
      if (isNull) { w.u8(0); return; }
      w.u8(1).u8(toBoolean(value, column.name) ? 1 : 0);
      return;
    case 'nvarchar': {
      if (column.length === undefined) {
        if (isNull) { w.u64le(PLP_NULL); return; }
        writePlp(w, Buffer.from(toText(value), 'utf16le'));
        return;
      }
      if (isNull) { w.u16le(USHORT_NULL); return; }
      const data = Buffer.from(toText(value), 'utf16le');
      if (data.length > column.length * 2) throw new ValueConversionError(`column ${column.name}: text longer than nvarchar(${column.length})`);
      w.u16le(data.length).bytes(data);
      return;
    }
    case 'varchar': {
      if (column.length === undefined) {
        if (isNull) { w.u64le(PLP_NULL); return; }
        writePlp(w, encodeCp1252(toText(value)));
        return;
      }
      if (isNull) { w.u16le(USHORT_NULL); return; }
      const data = encodeCp1252(toText(value));
      if (data.length > column.length) throw new ValueConversionError(`column ${column.name}: text longer than varchar(${column.length})`);
      w.u16le(data.length).bytes(data);
      return;
    }
    case 'date': {
      if (isNull) { w.u8(0); return; }
      const days = daysSinceEpoch(toDate(value, column.name)) + DAYS_0001_TO_EPOCH;
      w.u8(3).uintLE(BigInt(days), 3);
      return;
    }
    case 'datetime': {
      if (isNull) { w.u8(0); return; }
      const date = toDate(value, column.name);
      let days = daysSinceEpoch(date) + DAYS_1900_TO_EPOCH;
      const ms = date.getTime() - daysSinceEpoch(date) * MS_PER_DAY;
      let ticks = Math.round(ms * 0.3);
      if (ticks >= 25_920_000) {
        ticks -= 25_920_000;
        days += 1;
      }
      w.u8(8).i32le(days).u32le(ticks);
      return;
    }
    case 'datetime2': {
      if (isNull) { w.u8(0); return; }
      const date = toDate(value, column.name);
      const { units, dayCarry } = timeOfDayUnits(date, column.scale);
      const timeBytes = column.scale <= 2 ? 3 : column.scale <= 4 ? 4 : 5;
      const days = daysSinceEpoch(date) + DAYS_0001_TO_EPOCH + dayCarry;
      w.u8(timeBytes + 3).uintLE(units, timeBytes).uintLE(BigInt(days), 3);
      return;
    }
    case 'decimal': {
      if (isNull) { w.u8(0); return; }
      const scaled = scaledDecimal(value, column.scale, column.name);
      const magnitude = scaled < 0n ? -scaled : scaled;
      if (magnitude >= 10n ** BigInt(column.precision)) {
        throw new ValueConversionError(`column ${column.name}: ${toText(value)} does not fit decimal(${column.precision},${column.scale})`);
      }
      const size = decimalBytes(column.precision);
      w.u8(size).u8(scaled < 0n ? 0 : 1).uintLE(magnitude, size - 1);
      return;
    }
    default: {
      const never: never = column.type;
      throw new ValueConversionError(`unknown column type ${String(never)}`);
    }
  }
}

// ---------------------------------------------------------------- RPC parameters

export interface ParamTypeInfo {
  dataType: number;
  /** the engine-facing type name */
  name: TdsTypeName;
  /** fixed byte size, or max length from TYPE_INFO */
  length: number;
  precision: number;
  scale: number;
  plp: boolean;
  collation?: Buffer;
}

/** A parameter type this server does not decode; the request is answered with an error. */
export class UnsupportedTypeError extends Error {}

export function readParamTypeInfo(r: PayloadReader): ParamTypeInfo {
  const dataType = r.uint8('parameter type');
  const info = (name: TdsTypeName, length: number, extra: Partial<ParamTypeInfo> = {}): ParamTypeInfo => ({
    dataType, name, length, precision: 0, scale: 0, plp: false, ...extra,
  });
  switch (dataType) {
    case DataType.INT1: return info('tinyint', 1);
    case DataType.INT2: return info('smallint', 2);
    case DataType.INT4: return info('int', 4);
    case DataType.INT8: return info('bigint', 8);
    case DataType.BIT: return info('bit', 1);
    case DataType.FLT4: return info('decimal', 4);
    case DataType.FLT8: return info('decimal', 8);
    case DataType.DATETIME: return info('datetime', 8);
    case DataType.DATETIM4: return info('datetime', 4);
    case DataType.INTN: {
      const length = r.uint8('intn length');
      const name = ({ 1: 'tinyint', 2: 'smallint', 4: 'int', 8: 'bigint' } as Record<number, TdsTypeName>)[length];
      if (!name) throw new TdsProtocolError(`invalid intn length ${length}`);
      return info(name, length);
    }
    case DataType.BITN: return info('bit', r.uint8('bitn length'));
    case DataType.FLTN: return info('decimal', r.uint8('fltn length'));
    case DataType.DATETIMN: return info('datetime', r.uint8('datetimn length'));
    case DataType.DATEN: return info('date', 3);
    case DataType.DATETIME2N: return info('datetime2', 0, { scale: r.uint8('datetime2 scale') });
    case DataType.DATETIMEOFFSETN: return info('datetime2', 0, { scale: r.uint8('datetimeoffset scale') });
    case DataType.DECIMALN:
    case DataType.NUMERICN: {
      const length = r.uint8('decimal length');
      const precision = r.uint8('decimal precision');
      const scale = r.uint8('decimal scale');
      return info('decimal', length, { precision, scale });
    }
    case DataType.GUID: return info('nvarchar', r.uint8('guid length'));
    case DataType.NVARCHAR:
    case DataType.NCHAR:
    case DataType.BIGVARCHR:
    case DataType.BIGCHAR: {
      const length = r.uint16le('string max length');
      const collation = r.bytes(5, 'collation');
      const name: TdsTypeName = dataType === DataType.NVARCHAR || dataType === DataType.NCHAR ? 'nvarchar' : 'varchar';
      return info(name, length, { plp: length === USHORT_NULL, collation });
    }
    default:
      throw new UnsupportedTypeError(`data type 0x${dataType.toString(16).padStart(2, '0')} is not supported`);
  }
}

function readPlp(r: PayloadReader): Buffer | null {
  const total = r.uint64le('plp length');
  if (total === PLP_NULL) return null;
  const parts: Buffer[] = [];
  for (;;) {
    const chunk = r.uint32le('plp chunk length');
    if (chunk === 0) break;
    parts.push(r.bytes(chunk, 'plp chunk'));
  }
  const data = Buffer.concat(parts);
  if (total !== PLP_UNKNOWN_LENGTH && BigInt(data.length) !== total) {
    throw new TdsProtocolError('plp chunks do not add up to the announced length');
  }
  return data;
}

function decodeText(info: ParamTypeInfo, data: Buffer): string {
  if (info.name === 'nvarchar') return data.toString('utf16le');
  // A UTF-8 collation sets bit 2 of the collation's fourth byte (the UTF8 flag).
  const utf8 = info.collation !== undefined && (info.collation[3] & 0x04) !== 0;
  return utf8 ? data.toString('utf8') : decodeCp1252(data);
}

function formatGuid(b: Buffer): string {
  const hex = (bytes: number[]) => bytes.map((i) => b[i].toString(16).padStart(2, '0')).join('');
  return `${hex([3, 2, 1, 0])}-${hex([5, 4])}-${hex([7, 6])}-${hex([8, 9])}-${hex([10, 11, 12, 13, 14, 15])}`.toUpperCase();
}

function dateFromDays(days: number, epochOffset: number, msOfDay = 0): Date {
  return new Date((days - epochOffset) * MS_PER_DAY + msOfDay);
}

function readUIntLE(b: Buffer): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  return v;
}

/** Reads one parameter value: number | bigint | boolean | string | Date | null. */
export function readParamValue(r: PayloadReader, info: ParamTypeInfo): unknown {
  const fixed = [DataType.INT1, DataType.INT2, DataType.INT4, DataType.INT8, DataType.BIT, DataType.FLT4,
    DataType.FLT8, DataType.DATETIME, DataType.DATETIM4] as number[];
  if (info.plp) {
    const data = readPlp(r);
    return data === null ? null : decodeText(info, data);
  }
  if (info.dataType === DataType.NVARCHAR || info.dataType === DataType.NCHAR
    || info.dataType === DataType.BIGVARCHR || info.dataType === DataType.BIGCHAR) {
    const length = r.uint16le('string length');
    if (length === USHORT_NULL) return null;
    return decodeText(info, r.bytes(length, 'string'));
  }
  const length = fixed.includes(info.dataType) ? info.length : r.uint8('value length');
  if (length === 0) return null;
  const data = r.bytes(length, 'value');
  switch (info.dataType) {
    case DataType.INT1:
    case DataType.INT2:
    case DataType.INT4:
    case DataType.INT8:
    case DataType.INTN: {
      if (length === 1) return data.readUInt8(0);
      if (length === 2) return data.readInt16LE(0);
      if (length === 4) return data.readInt32LE(0);
      if (length === 8) {
        const v = data.readBigInt64LE(0);
        return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      }
      break;
    }
    case DataType.BIT:
    case DataType.BITN:
      if (length === 1) return data[0] !== 0;
      break;
    case DataType.FLT4:
    case DataType.FLT8:
    case DataType.FLTN:
      if (length === 4) return data.readFloatLE(0);
      if (length === 8) return data.readDoubleLE(0);
      break;
    case DataType.DECIMALN:
    case DataType.NUMERICN: {
      const sign = data[0] === 1 ? '' : '-';
      const digits = readUIntLE(data.subarray(1)).toString().padStart(info.scale + 1, '0');
      const text = info.scale > 0 ? `${digits.slice(0, -info.scale)}.${digits.slice(-info.scale)}` : digits;
      return Number(sign + text);
    }
    case DataType.DATEN:
      if (length === 3) return dateFromDays(data.readUIntLE(0, 3), DAYS_0001_TO_EPOCH);
      break;
    case DataType.DATETIME:
    case DataType.DATETIMN:
    case DataType.DATETIM4:
      if (length === 8) return dateFromDays(data.readInt32LE(0), DAYS_1900_TO_EPOCH, Math.round(data.readUInt32LE(4) / 0.3));
      if (length === 4) return dateFromDays(data.readUInt16LE(0), DAYS_1900_TO_EPOCH, data.readUInt16LE(2) * 60_000);
      break;
    case DataType.DATETIME2N:
    case DataType.DATETIMEOFFSETN: {
      const timeBytes = info.scale <= 2 ? 3 : info.scale <= 4 ? 4 : 5;
      const expected = timeBytes + 3 + (info.dataType === DataType.DATETIMEOFFSETN ? 2 : 0);
      if (length !== expected) break;
      const units = Number(readUIntLE(data.subarray(0, timeBytes)));
      const ms = Math.round((units * 1000) / 10 ** info.scale);
      // datetimeoffset values are stored in UTC already; the trailing offset is only for display.
      return dateFromDays(data.readUIntLE(timeBytes, 3), DAYS_0001_TO_EPOCH, ms);
    }
    case DataType.GUID:
      if (length === 16) return formatGuid(data);
      break;
    default:
      break;
  }
  throw new TdsProtocolError(`invalid value length ${length} for data type 0x${info.dataType.toString(16)}`);
}
