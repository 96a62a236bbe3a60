import path from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import { openPglite, openPostgres, pgliteDatabase, type PostgresOptions, type SqlDatabase } from './database.ts';
import { migrate, type MigrationReport } from './migrations.ts';
import { SyncTableStore } from './store.ts';
import { lockStateDirectory } from './stateLock.ts';

export * from './store.ts';
export { FinishedJobCleanup, type FinishedJobCleanupOptions, type FinishedJobCleanupStatus } from './cleanup.ts';
export { migrate, migrations, syncTableColumns } from './migrations.ts';
export { StateDirectoryInUseError } from './stateLock.ts';
export { ClaimSession, claimStatements, DEADLOCK_CHECK_MS, RecordLockError, RECORD_LOCK_CLASS, recordKeyText, type RecordKey } from './claims.ts';
export { WorkerLock, readActiveProcess, wakeActiveProcess, type ActiveProcess, type ProcessIdentity } from './leadership.ts';
export { connectionLock } from './pgliteLock.ts';
export { openPglite, openPostgres, pgliteDatabase, toUtcTimestamp, DatabaseUnavailableError, type SqlDatabase } from './database.ts';

export type SyncTableLocation =
  | ({ kind: 'postgres' } & PostgresOptions)
  | { kind: 'pglite'; dataDir: string | null }
  /**
   * a PGlite instance somebody else opened, locked and will close (the sandbox's, shared with its
   * FS stand-in); `description` says where it lives
   */
  | { kind: 'pglite-shared'; db: PGlite; description: string };

export interface OpenedSyncTable {
  store: SyncTableStore;
  db: SqlDatabase;
  migrations: MigrationReport;
  /** where it lives, for the start-up log (no password) */
  description: string;
}

/** Opens (and migrates) sync_table on a PostgreSQL server or in PGlite. */
export async function openSyncTable(location: SyncTableLocation, now?: () => Date): Promise<OpenedSyncTable> {
  // one process per embedded database: a second one is refused before it opens the files
  const unlock = location.kind === 'pglite' && location.dataDir ? lockStateDirectory(location.dataDir) : null;
  let db: SqlDatabase;
  try {
    const opened = location.kind === 'postgres'
      ? await openPostgres(location)
      : location.kind === 'pglite-shared'
        ? await pgliteDatabase(location.db, { owned: false })
        : await openPglite(location.dataDir ? path.join(location.dataDir, 'sync_table') : undefined);
    db = unlock ? { ...opened, close: () => opened.close().finally(unlock) } : opened;
  } catch (err) {
    unlock?.();
    throw err;
  }
  try {
    const report = await migrate(db);
    const description = location.kind === 'postgres'
      ? `postgres://${location.user}@${location.host}:${location.port}/${location.database}`
      : location.kind === 'pglite-shared' ? location.description
      : location.dataDir ? `pglite:${path.join(location.dataDir, 'sync_table')}` : 'pglite:memory';
    return { store: new SyncTableStore(db, now), db, migrations: report, description };
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
}
