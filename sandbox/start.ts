/**
 * The zero-setup sandbox (SPEC §7): stand-ins for FS (TDS over PGlite), FSO (Odoo XML-RPC, in
 * memory) and NTP, filled with demo data, and the endpoints sosync uses to reach them.
 *
 * A fresh sandbox seeds FS with persons and companies, then runs the real flows once for every
 * company and a share of the persons (and bPKs born in FSO), so that share starts out synced.
 * With a data directory, FS's database lives there, FSO's store is kept there as a snapshot plus a
 * journal fsynced before each answer (sandbox/online/journal.ts), and a later start restores both
 * instead of seeding again. Every write a stand-in has acknowledged survives a crash of the process.
 *
 * One PGlite instance holds FS's database and — unless the configuration puts it elsewhere (db_host,
 * or a state_dir other than the data directory) — sosync's sync table too (`syncTable`): starting
 * PGlite is most of a sandbox start. They cannot meet: FS lives in the schemas dbo, sosync and
 * studio, the sync table in public, and both sides take the instance's one lock
 * (src/adapters/syncTable/pgliteLock.ts) for each statement or transaction.
 */
import path from 'node:path';
import fs from 'node:fs';
import type { Config } from '../src/config/index.ts';
import type { Logger } from '../src/log.ts';
import type { Endpoints } from '../src/service.ts';
import type { SyncTableLocation } from '../src/adapters/syncTable/index.ts';
import { lockStateDirectory } from '../src/adapters/syncTable/stateLock.ts';
import { startStudioStandIn } from './studio/index.ts';
import { seedStudio } from './studio/seed.ts';
import { startOnlineStandIn } from './online/index.ts';
import { OnlineStore } from './online/store.ts';
import { OnlineJournal, ONLINE_SNAPSHOT_FILE } from './online/journal.ts';
import { startNtpStandIn } from './ntp/ntpStandIn.ts';
import { linkSandbox } from './link.ts';
import { openSandboxPglite } from './pgliteTemplate.ts';
import { seedCacheFor } from './seedCache.ts';
import { commitId } from '../src/version.ts';

export const SANDBOX_USER = 'sosync';
/** the data directory's PGlite database (FS, and the sync table when shared) */
export const SANDBOX_PGLITE_DIR = 'pglite';
/** where sandboxes before the shared PGlite kept FS's and the sync table's databases */
const OLD_LAYOUT_DIRS = ['studio', 'sync_table'];
export const SANDBOX_PASSWORD = 'sosync';
export { ONLINE_SNAPSHOT_FILE };

export interface Sandbox {
  endpoints: Endpoints;
  /** the first lines sosync prints: where everything is and how to log in */
  banner: string[];
  /** the stand-ins' lines of the banner (without sosync's API) */
  standInLines: string[];
  /** the sync table in the stand-ins' PGlite; null when the configuration puts it elsewhere */
  syncTable: SyncTableLocation | null;
  /** tell the stand-ins where sosync's /job/create is; `headers` carry sosync's api_token */
  attach(sosyncUrl: string, headers?: Record<string, string>): void;
  /** requests the FS stand-in and calls the FSO stand-in answered so far (benchmarks count round trips) */
  roundTrips(): { fs: number; fso: number };
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
    for (const c of closers.splice(0).reverse()) await c().catch((err) => log.warn({ err }, 'sandbox: error while closing'));
  };
  try {
    if (dataDir) {
      const old = OLD_LAYOUT_DIRS.find((d) => fs.existsSync(path.join(dataDir, d, 'PG_VERSION')));
      if (old) throw new Error(`sandbox data directory ${dataDir} is from an older sosync (separate "${old}" database) — delete it to start afresh`);
    }
    const studioDir = dataDir ? path.join(dataDir, SANDBOX_PGLITE_DIR) : undefined;
    const journal = dataDir ? new OnlineJournal(dataDir) : null;
    const hasStudio = studioDir !== undefined && fs.existsSync(path.join(studioDir, 'PG_VERSION'));
    const hasOnline = journal?.exists() ?? false;
    if (hasStudio !== hasOnline) {
      throw new Error(`sandbox data directory ${dataDir} is incomplete (${hasStudio ? `FS data but no ${ONLINE_SNAPSHOT_FILE}` : `${ONLINE_SNAPSHOT_FILE} but no FS data`}; was the first start interrupted?) — delete it to start afresh`);
    }
    const fresh = !hasStudio;
    // one process per data directory: PGlite files opened twice get corrupted
    if (dataDir) {
      const unlock = lockStateDirectory(dataDir);
      closers.push(async () => unlock());
    }

    // FSO's store first: a broken snapshot or journal should stop us before anything listens
    const store = new OnlineStore();
    const replayed = !fresh && journal ? journal.restore(store) : 0;

    if (studioDir) fs.mkdirSync(studioDir, { recursive: true });
    // in memory, the demo data an earlier start seeded today is loaded instead of seeded again
    const seedCache = dataDir ? null : seedCacheFor(options.persons, commitId(), log);
    const kept = await seedCache?.load(store) ?? null;
    const studioDb = kept?.db ?? await openSandboxPglite(studioDir, log);
    closers.push(() => studioDb.close());
    let dataLine: string;
    if (kept) {
      dataLine = `${kept.line.replace(/ — seeded in .*$/, '')} — as seeded by an earlier start today (kept in ${seedCache!.dbFile})`;
    } else if (fresh) {
      const seedStarted = performance.now();
      // bPKs are born in FSO; linkSandbox copies the synced ones to FS
      const seeded = await seedStudio(studioDb, { persons: options.persons, bpkEvery: 0 });
      const linked = await linkSandbox({ db: studioDb, store, personIds: seeded.personIds, companyIds: seeded.companyIds });
      const seconds = ((performance.now() - seedStarted) / 1000).toFixed(1);
      dataLine = `${seeded.personIds.length} FS persons (${linked.partners.length} synced), ${linked.companies.length} companies (all synced), `
        + `${linked.bpks.length} bPKs synced; FSO-only: ${linked.onlineOnlyPartnerIds.length} partners, ${linked.onlineOnlyBpkIds.length} bPKs — seeded in ${seconds} s`;
      await seedCache?.save(studioDb, store, dataLine);
    } else {
      const partners = store.search('res.partner', [], { activeTest: false }).length;
      dataLine = `restored: ${partners} FSO partners (${replayed} journalled changes replayed); FS as it was left`;
    }
    if (journal) {
      // the seed is complete only once FSO's half is on disk too; from here every change is journalled
      journal.attach(store);
      closers.push(async () => journal.close());
    }

    const studio = await startStudioStandIn({
      port: options.fsPort,
      host: '127.0.0.1',
      db: studioDb,
      databaseName: `mdb_${config.instance}`,
      users: [{ user: SANDBOX_USER, password: SANDBOX_PASSWORD }],
      logger: log,
      latencyMs: options.fsLatencyMs,
    });
    closers.push(() => studio.close());

    const online = await startOnlineStandIn({
      port: options.fsoPort,
      host: '127.0.0.1',
      database: config.instance,
      users: [{ login: SANDBOX_USER, password: SANDBOX_PASSWORD }],
      logger: log,
      store,
      journal: journal ?? undefined,
      latencyMs: options.fsoLatencyMs,
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

    const standInLines = [
      `  FSO stand-in   ${online.url}/xmlrpc/2/  database "${config.instance}", login ${SANDBOX_USER} / ${SANDBOX_PASSWORD}`,
      `  FS stand-in    TDS (SQL Server) on 127.0.0.1,${studio.port}  database "mdb_${config.instance}", login ${SANDBOX_USER} / ${SANDBOX_PASSWORD}`,
      `  NTP stand-in   udp 127.0.0.1:${ntp.port}`,
      `  demo data      ${dataLine}`,
      `  kept in        ${dataDir ?? 'memory (gone when the process stops; --sandbox_data_dir DIR keeps it)'}`,
    ];
    const banner = [
      'sosync SANDBOX — stand-ins with demo data, nothing here talks to a real system',
      `  sosync API     http://127.0.0.1:${config.port}/service/status   (live view: /visualizer)`,
      ...standInLines,
    ];
    const shared = config.db === null && config.stateDir === dataDir;
    return {
      endpoints,
      banner,
      standInLines,
      syncTable: shared
        ? { kind: 'pglite-shared', db: studioDb, description: `pglite:${studioDir ?? 'memory'} (shared with the FS stand-in)` }
        : null,
      attach(sosyncUrl, headers) {
        studio.engine.setAnnounceUrl(sosyncUrl, headers);
        online.setAnnounceUrl(sosyncUrl, headers);
      },
      roundTrips: () => ({ fs: studio.server.requestCount, fso: online.callCount }),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

export const STANDINS_INI_FILE = 'sosync.ini';

/** The [sosync] section that points a separate sosync at the stand-ins. */
export function standInsIni(config: Config, endpoints: Endpoints): string {
  const { studio, online } = endpoints;
  const lines = [
    '; written by `npm run standins`: sosync --conf <this file> reaches the stand-ins',
    '[sosync]',
    `instance = ${config.instance}`,
    `port = ${config.port}`,
    `studio_mssql_host = ${studio.host},${studio.port}`,
    `studio_mssql_db = ${studio.database}`,
    `studio_sosync_user = ${studio.user}`,
    `studio_sosync_pw = ${studio.password}`,
    'studio_mssql_encrypt = false',
    'studio_mssql_trust_server_certificate = true',
    `online_host = ${online.host}`,
    `online_sosync_user = ${online.user}`,
    `online_sosync_pw = ${online.password}`,
    `online_ntp_port = ${online.ntpPort}`,
    `ntp_servers = ${endpoints.ntpServers.join(',')}`,
    ...(config.sandboxOptions.dataDir ? [`state_dir = ${path.join(config.sandboxOptions.dataDir, 'sosync-state')}`] : []),
    '; the sync table: embedded PGlite under state_dir, or set db_host/db_name/db_user for PostgreSQL',
  ];
  return `${lines.join('\n')}\n`;
}
