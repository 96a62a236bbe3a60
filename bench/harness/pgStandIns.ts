/**
 * The stand-ins for a throughput bench, in a process of their own, with FS kept in a PostgreSQL
 * database (a pooled connection per transaction, as SQL Server serves many sessions at once)
 * instead of the sandbox's PGlite: PGlite has one connection, so the FS stand-in there runs one
 * transaction at a time and, with an injected latency, that alone caps parallel workers.
 *
 * Run as `node --import tsx bench/harness/pgStandIns.ts '<json options>'`; prints one line
 * `ready {"fs":…,"fso":…,"ntp":…}` with the ports of the part it runs (PgStandInsOptions.part). Nothing is announced (the bench announces every
 * change itself). Ends on SIGTERM or when its parent goes away.
 */
import pg from 'pg';
import { silentLogger } from '../../src/log.ts';
import { startNtpStandIn } from '../../sandbox/ntp/ntpStandIn.ts';
import { startOnlineStandIn } from '../../sandbox/online/standIn.ts';
import { startStudioStandIn } from '../../sandbox/studio/index.ts';

export interface PgStandInsOptions {
  fsDb: { host: string; port: number; user: string; password?: string; database: string };
  fsLatencyMs: number;
  fsoLatencyMs: number;
  user: string;
  password: string;
  instance: string;
  /**
   * which stand-ins this process runs: FS, or FSO with the NTP stand-in, or all of them (default).
   * Apart, each system has an event loop of its own, as FS and FSO are separate servers.
   */
  part?: 'fs' | 'fso' | 'all';
}

async function main(options: PgStandInsOptions): Promise<void> {
  const logger = silentLogger();
  const part = options.part ?? 'all';
  const closers: Array<() => Promise<unknown>> = [];
  const ports: Record<string, number | undefined> = {};
  if (part !== 'fso') {
    const pool = new pg.Pool({ ...options.fsDb, max: 20 });
    const studio = await startStudioStandIn({
      db: pool, databaseName: `mdb_${options.instance}`, users: [{ user: options.user, password: options.password }],
      logger, latencyMs: options.fsLatencyMs,
    });
    closers.push(async () => { await studio.close(); await pool.end(); });
    ports.fs = studio.port;
  }
  if (part !== 'fs') {
    const online = await startOnlineStandIn({
      database: options.instance, users: [{ login: options.user, password: options.password }], logger, latencyMs: options.fsoLatencyMs,
    });
    const ntp = await startNtpStandIn({ host: '127.0.0.1' });
    closers.push(() => online.close(), () => ntp.close());
    ports.fso = online.port;
    ports.ntp = ntp.port;
  }
  const stop = async () => {
    await Promise.allSettled(closers.map((close) => close()));
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('disconnect', () => void stop());
  process.stdout.write(`ready ${JSON.stringify(ports)}\n`);
}

await main(JSON.parse(process.argv[2]) as PgStandInsOptions);
