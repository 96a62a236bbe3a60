/**
 * The `online_host` setting: `host`, `host:port`, optionally prefixed by `http://` or `https://`.
 * A plain host means http. A trailing slash is ignored; a path is kept as a prefix for reverse proxies.
 */
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
    throw new OnlineHostError(`online_host: unsupported scheme "${schemeMatch[1]}" in "${raw}" (use http:// or https://)`);
  }
  let parsed: URL;
  try {
    parsed = new URL(schemeMatch ? raw : `http://${raw}`);
  } catch {
    throw new OnlineHostError(`online_host: "${raw}" is not a host, host:port or URL`);
  }
  if (parsed.username || parsed.password) {
    throw new OnlineHostError('online_host: must not carry credentials (use online_sosync_user / online_sosync_pw)');
  }
  if (parsed.search || parsed.hash) {
    throw new OnlineHostError(`online_host: "${raw}" must not have a query or fragment`);
  }
  if (parsed.hostname === '') throw new OnlineHostError(`online_host: "${raw}" has no host name`);
  const protocol = parsed.protocol as 'http:' | 'https:';
  const port = parsed.port ? Number(parsed.port) : protocol === 'https:' ? 443 : 80;
  const hostname = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  const basePath = parsed.pathname.replace(/\/+$/, '');
  const hostPart = hostname.includes(':') ? `[${hostname}]` : hostname;
  return { protocol, hostname, port, basePath, url: `${protocol}//${hostPart}:${port}${basePath}` };
}
