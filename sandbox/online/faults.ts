/**
 * Odoo-like failures of the stand-in. Odoo's XML-RPC layer turns exceptions into Faults with
 * faultCode 1 (application error), 2 (user error / warning), 3 (access denied), 4 (access error);
 * the stand-in writes the message on the first line, then a Python-style traceback ending in it.
 */

export type PythonException =
  | 'ValueError' | 'KeyError' | 'AttributeError' | 'TypeError' | 'AssertionError' | 'NameError'
  | 'odoo.exceptions.MissingError' | 'odoo.exceptions.AccessDenied' | 'odoo.exceptions.AccessError'
  | 'odoo.exceptions.UserError'
  | 'odoo.exceptions.ValidationError' | 'psycopg2.IntegrityError' | 'psycopg2.OperationalError';

const faultCodes: Partial<Record<PythonException, number>> = {
  'odoo.exceptions.MissingError': 2,
  'odoo.exceptions.UserError': 2,
  'odoo.exceptions.ValidationError': 2,
  'odoo.exceptions.AccessDenied': 3,
  'odoo.exceptions.AccessError': 4,
};

export class OdooException extends Error {
  constructor(message: string, readonly exception: PythonException = 'ValueError') {
    super(message);
  }

  get faultCode(): number {
    return faultCodes[this.exception] ?? 1;
  }

  /** message, then a traceback shaped like the one Odoo's server prints */
  faultString(where: string): string {
    return [
      this.message,
      'Traceback (most recent call last):',
      '  File "/opt/online/odoo/service/wsgi_server.py", line 124, in wsgi_xmlrpc',
      '    result = odoo.http.dispatch_rpc(service, method, params)',
      '  File "/opt/online/odoo/http.py", line 115, in dispatch_rpc',
      '    result = dispatch(method, params)',
      `  File "/opt/online/odoo/service/model.py", line 41, in ${where}`,
      '    return fn(dbname, *args, **kwargs)',
      `${this.exception}: ${this.message.replace(/\n/g, ' ')}`,
      '',
    ].join('\n');
  }
}

export const accessDenied = () => new OdooException('Access Denied', 'odoo.exceptions.AccessDenied');

export const missingRecord = (model: string, ids: number[], uid: number) =>
  new OdooException(
    `Record does not exist or has been deleted.\n(Records: ${model}(${ids.join(', ')}${ids.length === 1 ? ',' : ''}), User: ${uid})`,
    'odoo.exceptions.MissingError',
  );

/** Python's repr of a JSON-ish value, for messages that quote a domain leaf or a value */
export function pyRepr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (typeof value === 'number') return String(value);
  if (value instanceof Date) return `datetime.datetime(${value.toISOString()})`;
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(', ')}]`;
  if (typeof value === 'object') {
    return `{${Object.entries(value).map(([k, v]) => `${pyRepr(k)}: ${pyRepr(v)}`).join(', ')}}`;
  }
  return String(value);
}

export function leafRepr(leaf: unknown[]): string {
  return `(${leaf.map(pyRepr).join(', ')})`;
}
