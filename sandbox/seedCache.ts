/**
 * The demo data of an in-memory sandbox, kept for the next start. Seeding 1,000 FS persons and
 * linking them to FSO takes 2–9 s on a small machine; loading a kept copy (the FS database as a
 * PGlite dump, FSO as a store snapshot) takes about one. A copy is only reused by the same
 * PGlite version and sosync commit, for the same number of persons, on the same day (so the demo's
 * write dates stay recent); saving one removes the older ones. It holds generated demo data only
 * (no FSO users or passwords: the snapshot leaves them out). A copy that cannot be read or written
 * costs only the time it would have saved. A sandbox with a data directory keeps its own data and
 * does not use this.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { Logger } from '../src/log.ts';
import type { OnlineStore } from './online/store.ts';
import { cacheDir, pgliteVersion, writeAtomically } from './pgliteTemplate.ts';

const PREFIX = 'sandbox-seeded-';

export interface SeededCopy {
  db: PGlite;
  /** the banner line the seeding wrote */
  line: string;
}

export class SeedCache {
  readonly dbFile: string;
  readonly onlineFile: string;

  constructor(private readonly dir: string, key: { commit: string; persons: number; day: string }, private readonly logger: Logger) {
    const name = `${PREFIX}${pgliteVersion()}-${key.commit.slice(0, 12)}-${key.persons}-${key.day}`;
    this.dbFile = path.join(dir, `${name}.tar`);
    this.onlineFile = path.join(dir, `${name}.fso.json`);
  }

  /** The kept copy with FSO's half loaded into `store`, or null (none, or unreadable). */
  async load(store: OnlineStore): Promise<SeededCopy | null> {
    if (!fs.existsSync(this.dbFile) || !fs.existsSync(this.onlineFile)) return null;
    let db: PGlite | null = null;
    try {
      const online = JSON.parse(fs.readFileSync(this.onlineFile, 'utf8')) as { line: string; snapshot: unknown };
      db = await PGlite.create(undefined, { loadDataDir: new Blob([fs.readFileSync(this.dbFile)]) });
      store.restore(online.snapshot);
      return { db, line: online.line };
    } catch (err) {
      await db?.close().catch(() => undefined);
      this.logger.warn({ err, file: this.dbFile }, 'sandbox: the kept demo data could not be loaded; seeding afresh');
      return null;
    }
  }

  /** Keeps the freshly seeded FS database and FSO store (FSO's half last: it marks the copy complete). */
  async save(db: PGlite, store: OnlineStore, line: string): Promise<void> {
    try {
      for (const old of fs.existsSync(this.dir) ? fs.readdirSync(this.dir) : []) {
        if (old.startsWith(PREFIX)) fs.rmSync(path.join(this.dir, old), { force: true });
      }
      writeAtomically(this.dbFile, Buffer.from(await (await db.dumpDataDir('none')).arrayBuffer()));
      writeAtomically(this.onlineFile, JSON.stringify({ line, snapshot: store.snapshot() }));
    } catch (err) {
      this.logger.debug({ err, file: this.dbFile }, 'sandbox: could not keep the demo data for next time');
    }
  }
}

/** The cache for an in-memory sandbox; null where there is no commit to key it by (a copy could be stale). */
export function seedCacheFor(persons: number, commit: string | null, logger: Logger, dir = cacheDir(), day = new Date().toISOString().slice(0, 10)): SeedCache | null {
  return commit ? new SeedCache(dir, { commit, persons, day }, logger) : null;
}
