/**
 * The inspection page in a real browser (Debian's Chromium through playwright-core), served by
 * the real app with a running worker system: it draws the job machine, shows the running job
 * actor and its state as the job moves, labels guarded edges with their guards' names, loads
 * nothing from elsewhere, reconnects when its WebSocket drops, and replays a recorded run as an
 * animation. Leaves a screenshot at /tmp/visualizer.png.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import { chromium, type Browser, type Page, type WebSocket, type WebSocketRoute } from 'playwright-core';
import { gate, recordOneJob, startInspectedService, type InspectedService } from './support.ts';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = '/tmp/visualizer.png';

let service: InspectedService;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];
const requests: string[] = [];
const sockets: WebSocketRoute[] = [];
const hold = gate();
let reading: () => void = () => {};
const readingStarted = new Promise<void>((resolve) => (reading = resolve));
const recordings = fs.mkdtempSync(path.join(os.tmpdir(), 'sosync-recordings-'));
let recorded: Awaited<ReturnType<typeof recordOneJob>>;

before(async () => {
  assert.ok(
    fs.existsSync(CHROMIUM),
    `Chromium is missing at ${CHROMIUM}: the page test needs it (apt-get install -y chromium; .ci/run installs it)`,
  );
  recorded = await recordOneJob(path.join(recordings, 'run.jsonl'));
  service = await startInspectedService({
    onRead: async () => {
      reading();
      await hold.wait;
    },
  }, { extraRoutes: (app) => app.use('/recordings', express.static(recordings)) });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1680, height: 1000 } });
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('request', (request) => requests.push(request.url()));
  // pass the page's WebSocket through, keeping a handle to drop it later
  await page.routeWebSocket(/\/inspect$/, (ws) => {
    ws.connectToServer();
    sockets.push(ws);
  });
});

after(async () => {
  hold.open();
  await browser?.close();
  await service?.close();
  fs.rmSync(recordings, { recursive: true, force: true });
});

const actorItem = (jobId: number, list = '#live-actors') => `${list} .actor[data-machine="job"][data-job-id="${jobId}"]`;

test('the page connects and draws every state of the job machine', async () => {
  await page.goto(`${service.baseUrl}/visualizer/`);
  await page.waitForSelector('#connection[data-status="open"]');
  await page.waitForSelector('svg#machine g.state');
  const shapes = (await (await fetch(`${service.baseUrl}/inspect/machines`)).json()) as {
    machines: { job: { states: Array<{ path: string; key: string }> } };
  };
  const states = shapes.machines.job.states.filter((s) => s.path !== '');
  assert.ok(states.length > 20);
  for (const s of states) {
    const node = page.locator(`svg#machine[data-machine="job"] g.state[data-state="${s.path}"]`);
    assert.equal(await node.count(), 1, `one SVG element for ${s.path}`);
    assert.equal(await node.locator('text.name').first().textContent(), s.key);
  }
  // the states do not overlap one another (siblings side by side, children inside parents)
  const boxes = await page.$$eval('svg#machine g.state', (gs) => gs.map((g) => {
    const r = g.querySelector('rect.box')!;
    return { path: g.getAttribute('data-state')!, x: +r.getAttribute('x')!, y: +r.getAttribute('y')!, w: +r.getAttribute('width')!, h: +r.getAttribute('height')! };
  }));
  for (const a of boxes) {
    for (const b of boxes) {
      if (a === b || b.path.startsWith(`${a.path}.`) || a.path.startsWith(`${b.path}.`)) continue;
      const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
      assert.ok(!overlap, `${a.path} overlaps ${b.path}`);
    }
  }
  assert.ok((await page.locator('svg#machine g.edge').count()) > 30, 'the transitions are drawn');
  // the supervisor is listed, idle
  await page.waitForSelector('#live-actors .actor[data-machine="supervisor"][data-state="idle"]');
});

test("every guarded edge is labelled with its guard's name, as the machine names it", async () => {
  const shapes = (await (await fetch(`${service.baseUrl}/inspect/machines`)).json()) as {
    machines: { job: { transitions: Array<{ source: string; targets: string[]; guard: string | null; label: string; kind: string }> } };
  };
  // the page draws transitions out of the machine's root as notes, the others as edges
  const guarded = shapes.machines.job.transitions.filter((t) => t.guard && t.source !== '' && t.targets.length);
  assert.ok(guarded.length >= 5, `guarded transitions: ${guarded.length}`);
  for (const t of guarded) {
    for (const target of t.targets) {
      const edge = page.locator(`svg#machine[data-machine="job"] g.edge[data-source=${JSON.stringify(t.source)}][data-target=${JSON.stringify(target)}][data-guard=${JSON.stringify(t.guard)}]`);
      assert.ok(await edge.count() >= 1, `an edge ${t.source} → ${target} guarded by ${t.guard}`);
      const labels = await edge.locator('tspan.guard').allTextContents();
      assert.ok(labels.some((l) => l.trim() === `[${t.guard}]`), `${t.source} → ${target} reads [${t.guard}]; has ${labels.join(', ')}`);
    }
  }
  const first = page.locator(`svg#machine g.edge[data-guard=${JSON.stringify(guarded[0].guard)}] tspan.guard`).first();
  assert.ok(await first.isVisible(), 'guard labels are shown, not only in tooltips');
});

let jobId: number;

test('a running job shows in the actor list with its state, highlighted in the drawing', async () => {
  jobId = await service.announce('Grace');
  await readingStarted;
  const item = page.locator(`${actorItem(jobId)}[data-state="direction.reading"]`);
  await item.waitFor();
  assert.equal(await item.locator('.actor-name').textContent(), `job #${jobId}`);
  assert.match((await item.locator('.actor-sub').textContent()) ?? '', /fs dbo\.Thing \d+/);
  await page.waitForSelector('#live-actors .actor[data-machine="supervisor"][data-state="pass.running"]');

  // following the current job: the drawing highlights where it is and where it has been
  await page.waitForSelector('svg#machine g.state.active[data-state="direction.reading"]');
  const classes = async (path: string) => (await page.locator(`svg#machine g.state[data-state="${path}"]`).getAttribute('class')) ?? '';
  assert.match(await classes('direction'), /\bactive\b/);
  assert.match(await classes('start'), /\bvisited\b/);
  assert.doesNotMatch(await classes('writing'), /\bactive\b|\bvisited\b/);
  assert.equal(await page.locator('#diagram-state').textContent(), 'direction.reading');
  assert.match((await page.locator('#log').textContent()) ?? '', new RegExp(`job #${jobId}.*started`));

  fs.rmSync(SCREENSHOT, { force: true });
  await page.screenshot({ path: SCREENSHOT });
  assert.ok(fs.statSync(SCREENSHOT).size > 10_000, 'a screenshot of the page with a running job');
});

test('the page reconnects after its WebSocket drops and shows the same live state again', async () => {
  assert.equal(sockets.length, 1);
  await sockets[0].close();
  await page.waitForSelector('#connection[data-status="closed"]');
  await page.waitForSelector('#connection[data-status="open"]');
  assert.equal(sockets.length, 2, 'a second connection was made');
  await page.locator(`${actorItem(jobId)}[data-state="direction.reading"]`).waitFor();
  await page.waitForSelector('svg#machine g.state.active[data-state="direction.reading"]');
});

test('when the job ends it moves to the recently ended list, in its final state', async () => {
  hold.open();
  await page.locator(`${actorItem(jobId, '#ended-actors')}[data-state="synced"]`).waitFor();
  assert.equal(await page.locator(actorItem(jobId)).count(), 0, 'no longer listed as running');
  await page.waitForSelector('svg#machine g.state.active.ended-ok[data-state="synced"]');
  await page.waitForSelector('#live-actors .actor[data-machine="supervisor"][data-state="idle"]');
  const log = (await page.locator('#log').textContent()) ?? '';
  assert.match(log, new RegExp(`job #${jobId}.*ended in synced`));
  assert.match(log, /writing → finishing|→ synced/);
});

test('clicking an actor selects it and draws its machine', async () => {
  await page.locator('#live-actors .actor[data-machine="supervisor"]').click();
  await page.waitForSelector('svg#machine[data-machine="supervisor"] g.state.active[data-state="idle"]');
  assert.equal(await page.locator('svg#machine g.state[data-state="pass.picking"]').count(), 1);
  assert.match((await page.locator('#diagram-notes').textContent()) ?? '', /STOP → stopped/);
  await page.locator('#follow').click();
  await page.waitForSelector('svg#machine[data-machine="job"]');
});

test('the page loaded nothing from elsewhere and raised no error', () => {
  assert.deepEqual(pageErrors, []);
  const origin = new URL(service.baseUrl);
  const foreign = requests.filter((u) => new URL(u).host !== origin.host);
  assert.deepEqual(foreign, []);
  assert.ok(requests.some((u) => u.endsWith('/visualizer/app.js')));
});

test("the Stately bridge relays the stream to Stately's inspector in a frame", async () => {
  // Stately's hosted inspector, answered here so no request leaves the machine: like the real
  // one it announces itself to its parent window, then counts what it is sent
  const bridge = await browser.newPage();
  const outside: string[] = [];
  await bridge.route(/^https?:\/\/(?!127\.0\.0\.1)/, (route) => {
    const url = route.request().url();
    if (url.startsWith('https://stately.ai/inspect')) {
      return route.fulfill({
        contentType: 'text/html',
        body: `<!doctype html><body><script>
          let count = 0;
          addEventListener('message', (e) => {
            if (!e.data || typeof e.data._version !== 'string') return;
            document.body.dataset.count = String(++count);
            if (e.data.type === '@xstate.actor' && e.data.name === 'supervisor') document.body.dataset.supervisor = e.data.sessionId;
          });
          parent.postMessage({ type: '@statelyai.connected' }, '*');
        </script></body>`,
      });
    }
    outside.push(url);
    return route.abort();
  });
  try {
    const response = await bridge.goto(`${service.baseUrl}/visualizer/stately.html`);
    assert.match(response?.headers()['content-security-policy'] ?? '', /frame-src https:\/\/stately\.ai/);
    const inspector = bridge.frameLocator('#inspector');
    await inspector.locator('body[data-supervisor]').waitFor({ state: 'attached' });
    await bridge.waitForSelector('#status[data-status="open"]');
    assert.ok(Number(await bridge.locator('#status').getAttribute('data-forwarded')) > 0);
    assert.deepEqual(outside, []);
  } finally {
    await bridge.close();
  }
});

// ---------- replaying a recorded run ----------

/** The page's way of writing a state value (`direction.reading`). */
function formatValue(value: unknown): string {
  if (typeof value === 'string') return value;
  return Object.entries(value as Record<string, unknown>).map(([k, v]) => (v && typeof v === 'object' && !Object.keys(v).length ? k : `${k}.${formatValue(v)}`)).join(', ');
}

/** The states the recorded job passed, in order, as the page writes them. */
function recordedJobStates(): string[] {
  const job = recorded.messages.find((m) => m.type === '@xstate.snapshot' && m.snapshot.context?.job?.job_id === recorded.jobId)!;
  const values = recorded.messages.filter((m) => m.type === '@xstate.snapshot' && m.sessionId === job.sessionId).map((m) => formatValue(m.snapshot.value));
  return values.filter((v, i) => v !== values[i - 1]);
}

async function replayPage(): Promise<{ page: Page; sockets: WebSocket[]; errors: string[] }> {
  const p = await browser.newPage({ viewport: { width: 1680, height: 1000 } });
  const opened: WebSocket[] = [];
  const errors: string[] = [];
  p.on('websocket', (ws) => opened.push(ws));
  p.on('pageerror', (err) => errors.push(err.message));
  return { page: p, sockets: opened, errors };
}

// the page draws on animation frames: two of them and the last step is on screen
const rendered = (p: Page) => p.evaluate('new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))');

test('a recording named by ?replay= plays as an animation through the states the job passed, without the live stream', async () => {
  const { page: p, sockets: opened, errors } = await replayPage();
  try {
    await p.goto(`${service.baseUrl}/visualizer/?replay=/recordings/run.jsonl&speed=100`);
    await p.waitForSelector('#replay[data-state="done"]');
    assert.equal(await p.locator('#connection').getAttribute('data-status'), 'replay');
    assert.match((await p.locator('#connection').textContent()) ?? '', /replay finished: run\.jsonl/);
    const position = p.locator('#replay-position');
    assert.equal(await position.getAttribute('data-total'), String(recorded.messages.length));
    assert.equal(await position.getAttribute('data-index'), String(recorded.messages.length));
    await p.locator(`${actorItem(recorded.jobId, '#ended-actors')}[data-state="synced"]`).waitFor();
    assert.match((await p.locator('#log').textContent()) ?? '', new RegExp(`job #${recorded.jobId}.*ended in synced`));
    assert.deepEqual(opened, [], 'a replay opens no WebSocket');

    // back to the start, then step by step: the drawing passes every state of the recorded job in order
    await p.click('#replay-restart');
    await p.waitForSelector('#replay[data-state="paused"]');
    assert.equal(await position.getAttribute('data-index'), '0');
    await rendered(p);
    assert.equal(await p.locator('#ended-actors .actor').count(), 0, 'restarting clears what was shown');
    const seen: string[] = [];
    for (let steps = 0; steps < recorded.messages.length && (await p.locator('#replay').getAttribute('data-state')) !== 'done'; steps++) {
      await p.click('#replay-step');
      await rendered(p);
      const shown = (await p.locator('#diagram-state').textContent()) ?? '';
      // '–': the job registered, its first state not yet arrived
      if (shown && shown !== '–' && shown !== seen.at(-1)) seen.push(shown);
    }
    assert.deepEqual(seen, recordedJobStates());
    await p.waitForSelector('svg#machine g.state.active.ended-ok[data-state="synced"]');

    // played at a readable pace, the drawing shows each state in turn on its own
    await p.click('#replay-restart');
    await p.selectOption('#replay-speed', '2');
    await p.evaluate(`(() => {
      const shown = (window.shownStates = []);
      const node = document.getElementById('diagram-state');
      new MutationObserver(() => {
        if (node.textContent && node.textContent !== '–' && node.textContent !== shown.at(-1)) shown.push(node.textContent);
      }).observe(node, { childList: true, characterData: true, subtree: true });
      const bar = document.getElementById('replay');
      window.playedFrom = performance.now();
      new MutationObserver(() => {
        if (bar.dataset.state === 'done') window.playedMs ??= performance.now() - window.playedFrom;
      }).observe(bar, { attributes: true });
    })()`);
    await p.click('#replay-play');
    await p.waitForSelector('#replay[data-state="done"]', { timeout: 120_000 });
    // in the order they happened (each drawn on its own is what the steps above check: a frame the
    // browser drops under load may merge two here)
    const shown = (await p.evaluate('window.shownStates')) as string[];
    const expected = recordedJobStates();
    let at = 0;
    for (const state of shown) {
      at = expected.indexOf(state, at);
      assert.ok(at >= 0, `${state} shown out of order: ${shown.join(' → ')}`);
    }
    assert.equal(shown.at(-1), 'synced');
    assert.ok(shown.length >= 3, `states shown while playing: ${shown.join(' → ')}`);
    // paced, not dumped: every snapshot stays at least 300 ms / speed on screen. A lower bound only,
    // so a slow machine cannot fail it
    const snapshots = recorded.messages.filter((m) => m.type === '@xstate.snapshot').length;
    const playedMs = Number(await p.evaluate('window.playedMs'));
    assert.ok(playedMs >= ((snapshots - 1) * 300) / 2, `played ${snapshots} snapshots in ${playedMs.toFixed(0)} ms`);
    assert.deepEqual(errors, []);
  } finally {
    await p.close();
  }
});

test('a recording chosen in the file input replaces the live stream; a file that is not one is refused, naming the line', async () => {
  const { page: p, sockets: opened, errors } = await replayPage();
  try {
    await p.goto(`${service.baseUrl}/visualizer/`);
    await p.waitForSelector('#connection[data-status="open"]');
    assert.equal(opened.length, 1, 'live first');
    const liveClosed = opened[0].isClosed() ? Promise.resolve() : opened[0].waitForEvent('close');
    await p.setInputFiles('#replay-file', path.join(recordings, 'run.jsonl'));
    await liveClosed;
    await p.waitForSelector('#replay[data-state="done"]');
    await p.locator(`${actorItem(recorded.jobId, '#ended-actors')}[data-state="synced"]`).waitFor();
    assert.equal(await p.locator('#live-actors .actor').count(), 0, 'the recorded run ended with its workers stopped; nothing of the live service shows');
    assert.match((await p.locator('#replay-name').textContent()) ?? '', /run\.jsonl/);

    await p.setInputFiles('#replay-file', { name: 'bad.jsonl', mimeType: 'text/plain', buffer: Buffer.from('{"type":"@xstate.actor","id":"a:1","sessionId":"x"}\nnot json\n') });
    await p.waitForSelector('#connection[data-status="closed"]');
    assert.equal(await p.locator('#connection').textContent(), 'cannot replay bad.jsonl: line 2 is not JSON');
    assert.equal(opened.length, 1, 'no reconnect to the live stream');
    assert.deepEqual(errors, []);
  } finally {
    await p.close();
  }
});
