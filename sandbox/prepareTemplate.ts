/**
 * Run by `npm install` (the `prepare` script, after the build): makes the sandbox's empty database
 * (PGlite's initdb, about 2 s) once and keeps it in the user's cache (pgliteTemplate.ts), so that
 * the first `npm start` on a machine does not spend that time. Installing never fails because of
 * it: a cache that cannot be written only means the first start runs initdb itself.
 */
import fs from 'node:fs';
import { silentLogger } from '../src/log.ts';
import { openSandboxPglite, templateFile } from './pgliteTemplate.ts';

export async function prepareTemplate(file = templateFile()): Promise<'kept' | 'made' | 'failed'> {
  if (fs.existsSync(file)) return 'kept';
  try {
    const db = await openSandboxPglite(undefined, silentLogger(), file);
    await db.close();
    return fs.existsSync(file) ? 'made' : 'failed';
  } catch {
    return 'failed';
  }
}

if (process.argv[1] && /prepareTemplate\.[jt]s$/.test(process.argv[1])) {
  const outcome = await prepareTemplate();
  const file = templateFile();
  if (outcome === 'made') console.log(`sandbox: empty database prepared in ${file}`);
  if (outcome === 'failed') console.log(`sandbox: could not prepare the empty database in ${file}; the first npm start makes it`);
}
