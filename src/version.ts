/**
 * The git commit the running build was made from: `git rev-parse HEAD` where the install is a
 * checkout, else the file the build wrote (dist/version.txt).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root, whether running from src/ (tsx) or dist/src/ (built). */
export function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  return process.cwd();
}

let cached: string | null | undefined;

export function commitId(): string | null {
  if (cached !== undefined) return cached;
  const root = projectRoot();
  cached = null;
  if (fs.existsSync(path.join(root, '.git'))) {
    try {
      const out = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      if (/^[0-9a-f]{40}$/.test(out)) cached = out;
    } catch {
      // not a usable checkout: fall back to the build's file
    }
  }
  if (cached === null) {
    try {
      const out = fs.readFileSync(path.join(root, 'dist', 'version.txt'), 'utf8').trim();
      if (/^[0-9a-f]{40}$/.test(out)) cached = out;
    } catch {
      // no build file either
    }
  }
  return cached;
}
