/**
 * `host[:port]`, as every setting that names a server writes it: a host name or IPv4 address (or,
 * where the caller allows it, a bracketed IPv6 literal), then optionally `:port` — or `,port`,
 * SQL Server's own notation, where the caller allows that. The FS, FSO and NTP address parsers
 * are built on this one; each puts its own setting's name in front of a HostPortError's problem.
 */

/** What is wrong with a `host[:port]`, worded to follow the input (`"x:0": port 0 is outside 1–65535`). */
export class HostPortError extends Error {
  override name = 'HostPortError';
}

export interface HostPort {
  /** host name or address; an IPv6 literal without its brackets */
  host: string;
  /** null when the input names none */
  port: number | null;
}

export interface HostPortRules {
  /** accept `[v6]` and `[v6]:port` */
  ipv6?: boolean;
  /** accept SQL Server's `host,port` besides `host:port` */
  commaPort?: boolean;
}

const hostName = /^[A-Za-z0-9._-]+$/;
const ipv6Literal = /^[0-9A-Fa-f:.]+$/;

export function parseHostPort(input: string, rules: HostPortRules = {}): HostPort {
  const text = typeof input === 'string' ? input.trim() : '';
  if (text === '') throw new HostPortError(typeof input === 'string' ? 'is empty' : 'must be a string');
  const separators = rules.commaPort ? /[,:]/ : /:/;

  let host: string;
  let rest: string;
  const bracketed = /^\[([^\]]*)\](.*)$/.exec(text);
  if (bracketed || text.split(':').length > 2) {
    if (!rules.ipv6) throw new HostPortError('IPv6 addresses are not supported; give a host name or IPv4 address');
    if (!bracketed) throw new HostPortError('an IPv6 address needs brackets: [address] or [address]:port');
    [, host, rest] = bracketed;
    if (!ipv6Literal.test(host)) throw new HostPortError(`"${host}" is not an IPv6 address`);
  } else {
    const at = text.search(separators);
    host = at === -1 ? text : text.slice(0, at);
    rest = at === -1 ? '' : text.slice(at);
    if (host === '') throw new HostPortError('host is missing');
    if (!hostName.test(host)) throw new HostPortError(`"${host}" is not a host name or address`);
  }

  if (rest === '') return { host, port: null };
  if (!separators.test(rest[0])) throw new HostPortError(`"${rest}" after the host is not a port`);
  const portText = rest.slice(1);
  if (!/^\d{1,5}$/.test(portText)) throw new HostPortError(`port "${portText}" is not a number`);
  const port = Number(portText);
  if (port < 1 || port > 65535) throw new HostPortError(`port ${port} is outside 1–65535`);
  return { host, port };
}

/** `host:port` for messages, IPv6 in brackets. */
export function formatHostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}
