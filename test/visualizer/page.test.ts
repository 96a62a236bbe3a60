/**
 * The inspection page in a real browser (Debian's Chromium through playwright-core), served by
 * the real app with a running worker system: it draws the job machine, shows the running job
 * actor and its state as the job moves, loads nothing from elsewhere, and reconnects when its
 * WebSocket drops. Leaves a screenshot at /tmp/visualizer.png.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { chromium, type Browser, type Page, type WebSocketRoute } from 'playwright-core';
import { gate, startInspectedService, type InspectedService } from './support.ts';

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

before(async () => {
  assert.ok(
    fs.existsSync(CHROMIUM),
    `Chromium is missing at ${CHROMIUM}: the page test needs it (apt-get install -y chromium; .ci/run installs it)`,
  );
  service = await startInspectedService({
    onRead: async () => {
      reading();
      await hold.wait;
    },
  });
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
