/**
 * The demo data of an in-memory sandbox kept for the next start (sandbox/seedCache.ts): a second
 * start loads what the first seeded instead of seeding again, with the same data on both sides, and
 * a damaged copy is seeded afresh with a warning, never half used.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startSandbox, type Sandbox } from '../../sandbox/start.ts';
import { seedCacheFor } from '../../sandbox/seedCache.ts';
import { readConfig } from '../../src/config/index.ts';
import { silentLogger } from '../../src/log.ts';
import { commitId } from '../../src/version.ts';
import { logCapture } from '../support/logs.ts';
import { freePort } from '../support/ports.ts';

const PERSONS = 15;

describe('an in-memory sandbox keeps its seeded demo data for the next start', () => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'sosync-seed-cache-'));
  const previous = process.env.XDG_CACHE_HOME;
  const started: Sandbox[] = [];
  before(() => { process.env.XDG_CACHE_HOME = cache; });
  after(async () => {
    for (const s of started) await s.close();
    if (previous === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = previous;
    fs.rmSync(cache, { recursive: true, force: true });
  });

  const start = async (logger = silentLogger()) => {
    const { config } = readConfig([
      '--sandbox_persons', String(PERSONS), '--port', String(await freePort()), '--listen', '127.0.0.1',
      '--sandbox_fso_port', String(await freePort()), '--sandbox_fs_port', String(await freePort()), '--sandbox_ntp_port', String(await freePort()),
    ]);
    const sandbox = await startSandbox(config, logger);
    started.push(sandbox);
    return sandbox;
  };
  const dataLine = (s: Sandbox) => s.standInLines.find((l) => l.trimStart().startsWith('demo data')) ?? '';
  const fsPersons = async (s: Sandbox) => {
    const db = s.syncTable?.kind === 'pglite-shared' ? s.syncTable.db : null;
    return (await db!.query<{ id: number; name: string }>('SELECT "PersonID" AS id, "Vorname" AS name FROM dbo."Person" ORDER BY 1')).rows;
  };

  test('the first start seeds and keeps; the second loads the same data', async () => {
    assert.ok(commitId(), 'a checkout has a commit to key the copy by');
    const first = await start();
    assert.match(dataLine(first), /seeded in [\d.]+ s/);
    const kept = seedCacheFor(PERSONS, commitId(), silentLogger())!;
    assert.ok(fs.existsSync(kept.dbFile) && fs.existsSync(kept.onlineFile), 'both halves kept');
    const firstPersons = await fsPersons(first);

    const second = await start();
    assert.match(dataLine(second), new RegExp(`${PERSONS} FS persons .* as seeded by an earlier start today`));
    assert.doesNotMatch(dataLine(second), /seeded in/);
    assert.deepEqual(await fsPersons(second), firstPersons, 'FS as the first start seeded it');
    assert.ok(firstPersons.length >= PERSONS);
  });

  test('a damaged copy is not used: the sandbox seeds afresh and says why', async () => {
    const kept = seedCacheFor(PERSONS, commitId(), silentLogger())!;
    fs.writeFileSync(kept.onlineFile, '{"line": "x", "snapshot": {"format": "something else"}}');
    const { logger, lines } = logCapture();
    const third = await start(logger);
    assert.match(dataLine(third), /seeded in [\d.]+ s/, 'seeded again');
    assert.ok(lines.some((l) => /kept demo data could not be loaded; seeding afresh/.test(String(l.msg))), JSON.stringify(lines.map((l) => l.msg)));
    assert.equal((await fsPersons(third)).length >= PERSONS, true);
  });
});
