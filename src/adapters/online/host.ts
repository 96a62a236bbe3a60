/**
 * The `online_host` setting: `host`, `host:port`, optionally prefixed by `http://` or `https://`.
 * A plain host means http. A trailing slash is ignored; a path is kept as a prefix for reverse proxies.
 */
import { formatHostPort, HostPortError, parseHostPort } from '../hostPort.ts';
import { OnlineHostError } from './errors.ts';

export interface OnlineHost {
  protocol: 'http:' | 'https:';
  /** host name or IP (IPv6 without brackets) */
  hostname: string;
  port: number;
  /** path prefix before `/xmlrpc/2/...`, '' when none; never ends with '/' */
  basePath: string;
  /** `scheme://host:port[/prefix]`, the form used in messages */
  url: string;
}

export function parseOnlineHost(input: string): OnlineHost {
  const raw = (input ?? '').trim();
  if (raw === '') throw new OnlineHostError('online_host: empty host');
  const schemeMatch = /^([a-z][a-z0-9+.-]*):\/\//i.exec(raw);
  if (schemeMatch && !/^https?$/i.test(schemeMatch[1])) {
    throw new OnlineHostError(`online_host: unsupported scheme "${schemeMatch[1]}" in "${raw}" (give host[:port] with an optional http:// or https://)`);
  }
  const protocol = schemeMatch && schemeMatch[1].toLowerCase() === 'https' ? 'https:' : 'http:';
  const afterScheme = schemeMatch ? raw.slice(schemeMatch[0].length) : raw;
  if (/[?#]/.test(afterScheme)) throw new OnlineHostError(`online_host: "${raw}" must not have a query or fragment`);
  const slash = afterScheme.indexOf('/');
  const authority = slash === -1 ? afterScheme : afterScheme.slice(0, slash);
  if (authority.includes('@')) {
    throw new OnlineHostError('online_host: must not carry credentials (use online_sosync_user / online_sosync_pw)');
  }
  let address;
  try {
    address = parseHostPort(authority, { ipv6: true });
  } catch (err) {
    if (!(err instanceof HostPortError)) throw err;
    throw new OnlineHostError(`online_host: "${raw}" is not a host, host:port or URL: ${err.message}`);
  }
  const hostname = address.host.toLowerCase();
  const port = address.port ?? (protocol === 'https:' ? 443 : 80);
  const basePath = slash === -1 ? '' : afterScheme.slice(slash).replace(/\/+$/, '');
  return { protocol, hostname, port, basePath, url: `${protocol}//${formatHostPort(hostname, port)}${basePath}` };
}
