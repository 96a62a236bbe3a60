/** `studio_mssql_host` forms: `host`, `host,port` (SQL Server's own notation), `host:port`, `[v6]:port`. */
export interface StudioAddress {
  host: string;
  port: number;
}

export const defaultStudioPort = 1433;

export function parseStudioHost(value: string, defaultPort = defaultStudioPort): StudioAddress {
  const trimmed = value.trim();
  const match = /^(\[[^\]]+\]|[^,:\s\[\]]+)(?:[,:](\d+))?$/.exec(trimmed);
  if (!match) throw new Error(`"${value}" is not host, host,port or host:port`);
  const host = match[1].replace(/^\[|\]$/g, '');
  if (match[2] === undefined) return { host, port: defaultPort };
  const port = Number(match[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${match[2]} is not a port between 1 and 65535`);
  return { host, port };
}
