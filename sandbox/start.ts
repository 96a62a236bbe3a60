/**
 * The zero-setup sandbox (SPEC §7): stand-ins for FS (TDS over PGlite), FSO (Odoo XML-RPC, in
 * memory) and NTP, filled with demo data, and the endpoints sosync uses to reach them.
 */
import path from 'node:path';
import fs from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import type { Config } from '../src/config/index.ts';
import type { Logger } from '../src/log.ts';
import type { Endpoints } from '../src/service.ts';
import { startStudioStandIn } from './studio/index.ts';
import { seedStudio } from './studio/seed.ts';
import { startOnlineStandIn } from './online/index.ts';
import { startNtpStandIn } from './ntp/ntpStandIn.ts';

export const SANDBOX_USER = 'sosync';
export const SANDBOX_PASSWORD = 'sosync';

export interface Sandbox {
  endpoints: Endpoints;
  /** the first lines sosync prints: where everything is and how to log in */
  banner: string[];
  /** tell the stand-ins where sosync's /job/create is */
  attach(sosyncUrl: string): void;
  close(): Promise<void>;
}

export async function startSandbox(config: Config, logger: Logger): Promise<Sandbox> {
  // the stand-ins' own chatter stays below the banner unless sosync is asked for detail
  const quiet = logger.isLevelEnabled('debug') ? {} : { level: 'warn' };
  const log = logger.child({ component: 'sandbox' }, quiet);
  const options = config.sandboxOptions;
  const dataDir = options.dataDir;
  const closers: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const c of closers.reverse()) await c().catch((err) => log.warn({ err }, 'sandbox: error while closing'));
  };
  try {
    const studioDir = dataDir ? path.join(dataDir, 'studio') : undefined;
    const fresh = !studioDir || !fs.existsSync(path.join(studioDir, 'PG_VERSION'));
    if (studioDir) fs.mkdirSync(studioDir, { recursive: true });
    const studioDb = await PGlite.create(studioDir);
    closers.push(() => studioDb.close());
    if (fresh) await seedStudio(studioDb, { persons: options.persons });

    const studio = await startStudioStandIn({
      port: options.fsPort,
      host: '127.0.0.1',
      db: studioDb,
      databaseName: `mdb_${config.instance}`,
      users: [{ user: SANDBOX_USER, password: SANDBOX_PASSWORD }],
      logger: log,
    });
    closers.push(() => studio.close());

    const online = await startOnlineStandIn({
      port: options.fsoPort,
      host: '127.0.0.1',
      database: config.instance,
      users: [{ login: SANDBOX_USER, password: SANDBOX_PASSWORD }],
      logger: log,
      seed: { partners: 20, companies: 2, bpks: 6 },
    });
    closers.push(() => online.close());

    const ntp = await startNtpStandIn({ port: options.ntpPort, host: '127.0.0.1', logger: log });
    closers.push(() => ntp.close());

    const endpoints: Endpoints = {
      studio: {
        ...config.studio,
        host: '127.0.0.1',
        port: studio.port,
        database: `mdb_${config.instance}`,
        user: SANDBOX_USER,
        password: SANDBOX_PASSWORD,
        encrypt: false,
        trustServerCertificate: true,
      },
      online: { ...config.online, host: online.url, user: SANDBOX_USER, password: SANDBOX_PASSWORD, ntpPort: ntp.port },
      ntpServers: [`127.0.0.1:${ntp.port}`],
    };
    const banner = [
      'sosync SANDBOX — stand-ins with demo data, nothing here talks to a real system',
      `  sosync API     http://127.0.0.1:${config.port}/service/status   (live view: /visualizer)`,
      `  FSO stand-in   ${online.url}/xmlrpc/2/  database "${config.instance}", login ${SANDBOX_USER} / ${SANDBOX_PASSWORD}`,
      `  FS stand-in    TDS (SQL Server) on 127.0.0.1,${studio.port}  database "mdb_${config.instance}", login ${SANDBOX_USER} / ${SANDBOX_PASSWORD}`,
      `  NTP stand-in   udp 127.0.0.1:${ntp.port}`,
      `  data           ${dataDir ?? 'in memory (gone when sosync stops; --sandbox_data_dir DIR keeps it)'}`,
    ];
    return {
      endpoints,
      banner,
      attach(sosyncUrl) {
        studio.engine.setAnnounceUrl(sosyncUrl);
        online.setAnnounceUrl(sosyncUrl);
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
