/**
 * The FS stand-in's TDS server: enough of TDS 7.4 (SQL Server's wire protocol) for the `mssql`
 * driver (tedious underneath) to log in, run batches, run sp_executesql with typed parameters and
 * run transactions. SQL goes to a SqlEngine; this module only speaks bytes.
 */
import net from 'node:net';
import { silentLogger, type Logger } from '../../../src/log.ts';
import type { SqlEngine } from '../engine.ts';
import { TdsConnection, type ResponseFault } from './connection.ts';

export interface TdsServerOptions {
  engine: SqlEngine;
  logger?: Logger;
  /** the server name in ERROR tokens; default 'sosync-fs-standin' */
  serverName?: string;
  /**
   * ms every request after login (SQL batch, RPC, transaction manager request) waits before it is
   * answered, so a benchmark sees a network's round trip on loopback; default 0
   */
  latencyMs?: number;
}

export interface TdsServer {
  /** Starts listening; resolves with the bound port (pass 0 for a free one). */
  listen(port: number, host?: string): Promise<number>;
  /** Stops listening, ends every session (open transactions are left to SqlSession.close) and waits for them. */
  close(): Promise<void>;
  /**
   * Fault switch. On: every new connection is accepted and destroyed at once (the client sees the
   * socket close before PRELOGIN is answered), and connections already open are dropped too, so a
   * pooled client cannot keep working. The port stays bound, so switching off restores service on
   * the same port.
   */
  refuseConnections(on: boolean): void;
  /**
   * Fault switch. A message: every SQL batch and sp_executesql call is answered with an ERROR token
   * (number 50000, severity 16) carrying it, without reaching the engine. Session housekeeping that
   * clients send on their own — tedious' SET batch after login and mssql's `SELECT 1` pool probe —
   * still reaches the engine, so the failure shows on the caller's statements rather than as a
   * failed connect. Transaction manager requests are not affected. null switches it off.
   */
  failStatements(message: string | null): void;
  /**
   * Fault switch: the answers to statements whose SQL contains `match` (any statement when it is
   * absent; never the session housekeeping) are broken the given way — see ResponseFault. The
   * statement itself still runs (except for `stall`). null switches it off.
   */
  breakResponses(fault: { kind: ResponseFault; match?: string } | null): void;
  /** Requests answered after login (SQL batches, RPCs, transaction requests): round trips, counted. */
  readonly requestCount: number;
  /** Connections currently open (logged in or not). */
  readonly connectionCount: number;
  /** Logged-in connections currently open whose LOGIN7 named this application (a client pool's size, as the server sees it). */
  connectionsOf(appName: string): number;
  /** The port listened on, or undefined before listen(). */
  readonly port: number | undefined;
}

export function createTdsServer(options: TdsServerOptions): TdsServer {
  const logger = options.logger ?? silentLogger();
  const serverName = options.serverName ?? 'sosync-fs-standin';
  const connections = new Set<TdsConnection>();
  let refusing = false;
  let failMessage: string | null = null;
  let responseFault: { kind: ResponseFault; match?: string } | null = null;
  let nextSpid = 51;
  let nextTransaction = 1n;
  let boundPort: number | undefined;
  let requests = 0;

  const context = {
    engine: options.engine,
    logger,
    serverName,
    latencyMs: options.latencyMs ?? 0,
    countRequest: () => { requests++; },
    failStatementsMessage: () => failMessage,
    responseFault: (sql: string) => (responseFault && (!responseFault.match || sql.includes(responseFault.match)) ? responseFault.kind : null),
    newTransactionDescriptor: () => {
      const descriptor = Buffer.alloc(8);
      descriptor.writeBigUInt64LE(nextTransaction++);
      return descriptor;
    },
  };

  const server = net.createServer((socket) => {
    if (refusing) {
      socket.on('error', () => undefined);
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const spid = nextSpid;
    nextSpid = nextSpid >= 32000 ? 51 : nextSpid + 1;
    const connection = new TdsConnection(socket, spid, context);
    connections.add(connection);
    void connection.closed.then(() => connections.delete(connection));
    logger.debug({ spid, remote: socket.remoteAddress }, 'tds: connection accepted');
  });
  server.on('error', (err) => logger.error({ err }, 'tds: server error'));

  return {
    listen(port: number, host = '127.0.0.1'): Promise<number> {
      return new Promise((resolve, reject) => {
        const onError = (err: Error) => reject(err);
        server.once('error', onError);
        server.listen(port, host, () => {
          server.off('error', onError);
          const address = server.address();
          if (address === null || typeof address === 'string') {
            reject(new Error('tds: listening on something other than a TCP port'));
            return;
          }
          boundPort = address.port;
          logger.info({ host, port: boundPort }, 'tds: listening');
          resolve(boundPort);
        });
      });
    },

    async close(): Promise<void> {
      const stopped = new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
      });
      const open = [...connections];
      for (const connection of open) connection.destroy();
      await Promise.all(open.map((c) => c.closed));
      await stopped;
      logger.info('tds: closed');
    },

    refuseConnections(on: boolean): void {
      refusing = on;
      logger.info({ on }, 'tds: refuse connections');
      if (on) for (const connection of connections) connection.destroy();
    },

    failStatements(message: string | null): void {
      failMessage = message;
      logger.info({ message }, 'tds: fail statements');
    },

    breakResponses(fault): void {
      responseFault = fault;
      logger.info({ fault }, 'tds: break responses');
    },

    get requestCount(): number {
      return requests;
    },

    get connectionCount(): number {
      return connections.size;
    },

    connectionsOf(appName: string): number {
      return [...connections].filter((c) => c.appName === appName).length;
    },

    get port(): number | undefined {
      return boundPort;
    },
  };
}
