/**
 * The date formats announcements use (all UTC): ISO 8601 with or without `Z` or an offset, with or
 * without fractional seconds, and Odoo's `YYYY-MM-DD HH:MM:SS[.ffffff]`.
 */
const pattern =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/** Parses an announced date; returns null when it is not one of the accepted formats. */
export function parseAnnouncedDate(text: string): Date | null {
  const m = pattern.exec(text.trim());
  if (!m) return null;
  const [, y, mo, d, h, mi, s = '0', fraction = '', zone] = m;
  const ms = Number((fraction + '000').slice(0, 3));
  const fields = [Number(y), Number(mo), Number(d), Number(h), Number(mi), Number(s)];
  const [year, month, day, hour, minute, second] = fields;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) return null;
  let utc = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  const check = new Date(utc);
  if (check.getUTCDate() !== day) return null; // 2024-02-30 and the like
  if (zone && zone.toUpperCase() !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const offsetMinutes = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || '0');
    utc -= sign * offsetMinutes * 60_000;
  }
  return new Date(utc);
}

/** A query-string date: a plain day (YYYY-MM-DD, midnight UTC) or any announced date format. */
export function parseDayOrDate(text: string): Date | null {
  return parseAnnouncedDate(text.length === 10 ? `${text}T00:00:00Z` : text);
}
