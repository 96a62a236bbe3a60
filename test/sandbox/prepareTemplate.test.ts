/**
 * `npm install` prepares the sandbox's empty database (sandbox/prepareTemplate.ts, run by the
 * `prepare` script): it makes the template once, keeps one that is there, and never fails the
 * install when the cache cannot be written.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { prepareTemplate } from '../../sandbox/prepareTemplate.ts';
import { openSandboxPglite } from '../../sandbox/pgliteTemplate.ts';
import { silentLogger } from '../../src/log.ts';

describe('the empty database npm install prepares', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sosync-prepare-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('is made once, in the cache, and is what the first start loads', async () => {
    const file = path.join(dir, 'cache', 'pglite-initdb.tar');
    assert.equal(await prepareTemplate(file), 'made');
    const made = fs.statSync(file);
    assert.ok(made.size > 1_000_000, `a data directory, not an empty file (${made.size} bytes)`);
    assert.equal(await prepareTemplate(file), 'kept', 'a second install keeps it');
    assert.equal(fs.statSync(file).mtimeMs, made.mtimeMs, 'and does not write it again');
    const db = await openSandboxPglite(undefined, silentLogger(), file);
    try {
      assert.equal((await db.query<{ n: number }>('SELECT 1 AS n')).rows[0].n, 1);
    } finally {
      await db.close();
    }
  });

  it('a cache that cannot be written fails nothing: the first start makes the database itself', async () => {
    const blocked = path.join(dir, 'a-file');
    fs.writeFileSync(blocked, 'not a directory');
    assert.equal(await prepareTemplate(path.join(blocked, 'pglite-initdb.tar')), 'failed');
  });
});
