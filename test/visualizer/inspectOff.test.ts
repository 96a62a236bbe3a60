/**
 * The `inspect` key, through the whole service started from an INI file (the end-to-end harness:
 * FS and FSO stand-ins over TDS and XML-RPC): on by default, with the page, the machine shapes
 * and the WebSocket; with `inspect = false` no actor has an inspect observer, there is no
 * WebSocket, the page and the inspection routes answer 404 saying inspection is off, and jobs
 * sync as before.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { assertDone, onlyNewJob, startEndToEnd, type EndToEnd } from '../support/endToEnd.ts';
import { ConfigError, readConfig } from '../../src/config/index.ts';
import { connectStream } from './support.ts';

/** The HTTP status an upgrade to `url` is answered with (101 when it is switched). */
function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    ws.once('error', reject);
  });
}

async function syncsACompany(e: EndToEnd): Promise<void> {
  const since = await e.lastJobId();
  await e.fs.insert('xBPKAccount', { Name: `Verein ${since}` });
  await e.waitForJobs();
  assertDone(await onlyNewJob(e, since));
}

describe('inspect on (the default)', () => {
  let e: EndToEnd;
  before(async () => { e = await startEndToEnd('pglite'); });
  after(async () => { await e?.close(); });

  it('the actors are inspected while a client watches, the page is served and the WebSocket streams', async () => {
    // attached to the inspection rather than observed: XState builds inspection events only while somebody watches
    assert.equal(e.service.workers()!.supervisor.options.inspect, undefined);
    assert.equal((await fetch(`${e.base}/visualizer/`)).status, 200);
    assert.equal((await fetch(`${e.base}/inspect/machines`)).status, 200);
    const client = await connectStream(`${e.base.replace('http', 'ws')}/inspect`);
    try {
      await client.waitFor('the supervisor', (m) => m.type === '@xstate.actor' && m.name === 'supervisor');
      await syncsACompany(e);
      await client.waitFor('a job done', (m) => m.type === '@xstate.snapshot' && m.snapshot.status === 'done' && m.snapshot.context?.job !== undefined);
    } finally {
      client.close();
    }
    await syncsACompany(e);
  });
});

describe('inspect = false', () => {
  let e: EndToEnd;
  before(async () => { e = await startEndToEnd('pglite', { ini: ['inspect = false'] }); });
  after(async () => { await e?.close(); });

  it('no actor has an inspect observer', () => {
    assert.equal(e.service.workers()!.supervisor.options.inspect, undefined);
    assert.equal(e.service.workers()!.protocol?.options.inspect, undefined);
  });

  it('the page and the inspection routes answer 404 saying that inspection is off', async () => {
    for (const path of ['/visualizer/', '/visualizer/app.js', '/visualizer/stately.html', '/inspect/machines', '/inspect/actors', '/inspect']) {
      const res = await fetch(`${e.base}${path}`);
      assert.equal(res.status, 404, path);
      const body = (await res.json()) as { error: string; detail: string };
      assert.equal(body.error, 'inspection is off', path);
      assert.match(body.detail, /inspect = false/);
    }
    const xml = await fetch(`${e.base}/visualizer/`, { headers: { accept: 'application/xml' } });
    assert.match(await xml.text(), /<error>inspection is off<\/error>/);
    const root = await fetch(`${e.base}/`, { redirect: 'manual' });
    assert.equal(root.headers.get('location'), '/visualizer/', 'the root still leads to where it says why');
  });

  it('there is no WebSocket: an upgrade to /inspect is answered 404, not switched', async () => {
    assert.equal(await upgradeStatus(`${e.base.replace('http', 'ws')}/inspect`), 404);
  });

  it('jobs sync as before', async () => {
    await syncsACompany(e);
  });
});

describe('the inspect key', () => {
  it('is on by default, off with false, and a value that is not a boolean is refused naming it', () => {
    assert.equal(readConfig([]).config.inspect, true);
    assert.equal(readConfig(['--inspect=false']).config.inspect, false);
    assert.equal(readConfig(['--inspect', 'no']).config.inspect, false);
    assert.throws(() => readConfig(['--inspect', 'maybe']), (err: unknown) => err instanceof ConfigError && err.key === 'inspect' && /"maybe" is not true or false/.test(err.message));
  });
});
