// Writes dist/version.txt with the commit being built, for installs that carry no .git.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

let id = '';
try {
  id = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
} catch {
  console.warn('write-version: not a git checkout; dist/version.txt keeps its previous content if any');
}
if (/^[0-9a-f]{40}$/.test(id)) {
  fs.mkdirSync('dist', { recursive: true });
  fs.writeFileSync('dist/version.txt', `${id}\n`);
}
