/**
 * A fresh PGlite spends most of its start in initdb (≈4 s of a ≈5 s start here). An initialised,
 * still empty database is the same every time for one PGlite version, so the first sandbox start
 * keeps a copy of it (an uncompressed tar of its data directory, ≈40 MB) in the user's cache
 * directory and every later fresh start unpacks that copy instead of running initdb (≈1 s).
 * The copy holds no data of anybody's; it is written atomically, and a cache that cannot be read
 * or written only costs the time it would have saved.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import type { Logger } from '../src/log.ts';

export function pgliteVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.resolve('@electric-sql/pglite')));
  for (let up = 0; up < 5; up++, dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (!fs.existsSync(file)) continue;
    const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === '@electric-sql/pglite' && pkg.version) return pkg.version;
  }
  return 'unknown';
}

/** $XDG_CACHE_HOME/sosync, else ~/.cache/sosync */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), '.cache'), 'sosync');
}

export function templateFile(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(cacheDir(env), `pglite-${pgliteVersion()}-initdb.tar`);
}

/** Writes through a temporary file and a rename, so a reader never sees half a file. */
export function writeAtomically(file: string, data: Buffer | string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const partial = `${file}.${process.pid}`;
  fs.writeFileSync(partial, data);
  fs.renameSync(partial, file);
}

/**
 * Opens the PGlite in `dataDir` (in memory when undefined). One that does not exist yet starts
 * from the cached template when there is one; otherwise it runs initdb and leaves the template for
 * next time.
 */
export async function openSandboxPglite(dataDir: string | undefined, logger: Logger, file = templateFile()): Promise<PGlite> {
  if (dataDir && fs.existsSync(path.join(dataDir, 'PG_VERSION'))) return PGlite.create(dataDir);
  let template: Buffer | null = null;
  try {
    template = fs.readFileSync(file);
  } catch {
    // no template yet (or unreadable): initdb below
  }
  if (template) {
    try {
      return await PGlite.create(dataDir, { loadDataDir: new Blob([template]) });
    } catch (err) {
      logger.warn({ err, template: file }, 'sandbox: the cached empty database could not be loaded; running initdb');
      if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
      if (dataDir) fs.mkdirSync(dataDir, { recursive: true });
    }
  }
  const db = await PGlite.create(dataDir);
  try {
    writeAtomically(file, Buffer.from(await (await db.dumpDataDir('none')).arrayBuffer()));
  } catch (err) {
    logger.debug({ err, template: file }, 'sandbox: could not keep the empty database for next time');
  }
  return db;
}
