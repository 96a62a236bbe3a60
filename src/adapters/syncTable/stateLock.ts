/**
 * PGlite is one process's database: a second process opening the same directory would corrupt
 * it. The first process puts a lock file holding its pid in place (a hard link of a complete file,
 * so nobody reads it half written); a later one finds it and refuses to start while that pid is
 * alive. A file left by a process that died is removed and taken over.
 */
import fs from 'node:fs';
import path from 'node:path';

export const STATE_LOCK_FILE = 'sosync.lock';

export class StateDirectoryInUseError extends Error {
  constructor(readonly dir: string, readonly pid: number) {
    super(`state directory ${dir} is in use by sosync process ${pid} (the embedded sync table allows one process; use db_host for several)`);
    this.name = 'StateDirectoryInUseError';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, it is just not ours to signal
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** the pid in the lock file; null when there is no file */
function holderOf(file: string): number | null {
  try {
    return Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Takes the directory for this process; returns the release function. */
export function lockStateDirectory(dir: string): () => void {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, STATE_LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    const mine = `${file}.${process.pid}`;
    fs.writeFileSync(mine, `${process.pid}\n`);
    try {
      fs.linkSync(mine, file);
      return () => {
        if (holderOf(file) === process.pid) fs.rmSync(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      fs.rmSync(mine, { force: true });
    }
    const holder = holderOf(file);
    if (holder === null) continue;
    if (Number.isInteger(holder) && holder !== process.pid && isAlive(holder)) throw new StateDirectoryInUseError(dir, holder);
    // left by a process that is gone: remove it and try again
    fs.rmSync(file, { force: true });
  }
  throw new Error(`cannot take the lock file ${file}`);
}
