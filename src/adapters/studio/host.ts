/** `studio_mssql_host` forms: `host`, `host,port` (SQL Server's own notation), `host:port`, `[v6]:port`. */
import { HostPortError, parseHostPort } from '../hostPort.ts';

export interface StudioAddress {
  host: string;
  port: number;
}

export const defaultStudioPort = 1433;

/** Throws a HostPortError whose message names the input and the problem. */
export function parseStudioHost(value: string, defaultPort = defaultStudioPort): StudioAddress {
  try {
    const { host, port } = parseHostPort(value, { ipv6: true, commaPort: true });
    return { host, port: port ?? defaultPort };
  } catch (err) {
    if (!(err instanceof HostPortError)) throw err;
    throw new HostPortError(`"${value}" is not host, host,port or host:port: ${err.message}`);
  }
}
