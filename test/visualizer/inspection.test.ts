/**
 * The inspection stream: events of the real worker system (supervisor over a PGlite sync table,
 * an in-memory flow) reach WebSocket clients of the real HTTP server in Stately's serialized
 * format; a client that connects late is brought up to date by the replay; values that would
 * break serialization are made safe; finished actors leave the live list.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import WebSocket from 'ws';
import { and, createActor, createMachine, fromPromise, not, or, setup, stateIn } from 'xstate';
import { createWebSocketReceiver, type StatelyInspectionEvent } from '@statelyai/inspect';
import { createInspection, describeMachine, INLINE_GUARD, toInspectable } from '../../src/inspection/index.ts';
import { attachInspectionSocket, mountVisualizer } from '../../src/server/inspection.ts';
import { jobMachine } from '../../src/machines/job.ts';
import { silentLogger } from '../../src/log.ts';
import { until } from '../support/wait.ts';
import { connectStream, gate, recordOneJob, startInspectedService, type InspectedService, type StreamClient } from './support.ts';

// the format version the Stately tools check (the package does not export its package.json)
const inspectVersion = (JSON.parse(fs.readFileSync(new URL('../../node_modules/@statelyai/inspect/package.json', import.meta.url), 'utf8')) as { version: string }).version;

let service: InspectedService;
let early: StreamClient;
let jobId: number;
const hold = gate();
let reading: () => void;
const readingStarted = new Promise<void>((resolve) => (reading = resolve));

before(async () => {
  service = await startInspectedService({
    onRead: async () => {
      reading();
      await hold.wait;
    },
  });
  early = await connectStream(service.wsUrl);
});

after(async () => {
  hold.open();
  early?.close();
  await service?.close();
});

const ofType = (type: string) => (m: Record<string, any>) => m.type === type;

test('the supervisor registers with its definition and its state, in the serialized format', async () => {
  const supervisor = await early.waitFor('supervisor registration', (m) => m.type === '@xstate.actor' && m.name === 'supervisor');
  assert.equal(supervisor._version, inspectVersion);
  assert.equal(typeof supervisor.sessionId, 'string');
  assert.match(supervisor.createdAt, /^\d+$/);
  assert.match(supervisor.id, /^[0-9a-f]{8}:\d+$/);
  assert.equal(supervisor.parentId, undefined);
  const definition = JSON.parse(supervisor.definition);
  assert.equal(definition.id, 'supervisor');
  assert.ok(definition.states.pass.states.running, 'the definition holds the nested states');
  // it was running before the client connected: its registration carries its state
  assert.equal(supervisor.snapshot.status, 'active');
  assert.equal(supervisor.snapshot.value, 'idle');
  assert.equal(supervisor.snapshot.context.jobsRun, 0);
});

let jobSession: string;

test('a running job shows as a live job actor of the supervisor, its Dates as ISO strings', async () => {
  jobId = await service.announce('Ada');
  await readingStarted;
  const supervisor = await early.waitFor('supervisor registration', (m) => m.type === '@xstate.actor' && m.name === 'supervisor');
  const initial = await early.waitFor('job initial snapshot', (m) => m.type === '@xstate.snapshot' && m.event.type === 'xstate.init' && m.snapshot.context?.job?.job_id === jobId);
  assert.equal(initial.snapshot.value, 'start');
  assert.match(initial.snapshot.context.job.job_date, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  const job = await early.waitFor('job registration', (m) => m.type === '@xstate.actor' && m.sessionId === initial.sessionId);
  jobSession = job.sessionId;
  assert.equal(job.parentId, supervisor.sessionId);
  assert.equal(JSON.parse(job.definition).id, 'job');
  // an actor starting while a client watches registers before it has a state; its initial snapshot follows
  assert.deepEqual(job.snapshot, { status: 'active' });
  assert.ok(early.messages.indexOf(job) < early.messages.indexOf(initial), 'registration comes first');

  const reading = await early.waitFor('job reading the direction', (m) => m.type === '@xstate.snapshot' && m.sessionId === job.sessionId && m.snapshot.value?.direction === 'reading');
  assert.equal(reading.snapshot.status, 'active');
  assert.equal(reading.snapshot.context.job.job_state, 'inprogress');

  const live = service.inspection.liveActors();
  const liveJob = live.find((a) => a.sessionId === job.sessionId);
  assert.ok(liveJob, 'the held job is live');
  assert.equal(liveJob.machine, 'job');
  assert.equal(liveJob.jobId, jobId);
  assert.deepEqual(liveJob.value, { direction: 'reading' });
  assert.deepEqual(live.find((a) => a.name === 'supervisor')?.value, { pass: 'running' });
});

test('a client connecting mid-job gets the current state at once, from the replay', async () => {
  const late = await connectStream(service.wsUrl);
  try {
    const job = await late.waitFor('the held job', (m) => m.type === '@xstate.actor' && m.sessionId === jobSession);
    // the replay ends with each live actor's registration and latest snapshot, the supervisor's
    // before its job's: once the job's second registration and a snapshot after it are in, all is
    const registrations = () => late.messages.flatMap((m, i) => (m.type === '@xstate.actor' && m.sessionId === job.sessionId ? [i] : []));
    await until(() => {
      const [, live] = registrations();
      return live !== undefined && late.messages.slice(live).some((m) => m.type === '@xstate.snapshot' && m.sessionId === job.sessionId);
    }, 'the live part of the replay');
    // the last snapshot of the job in the replay is its current state
    const last = late.messages.filter((m) => m.type === '@xstate.snapshot' && m.sessionId === job.sessionId).at(-1)!;
    assert.deepEqual(last.snapshot.value, { direction: 'reading' });
    const lastSupervisor = late.messages.filter((m) => m.sessionId === job.parentId && m.snapshot).at(-1)!;
    assert.deepEqual(lastSupervisor.snapshot.value, { pass: 'running' });
  } finally {
    late.close();
  }
});

test('the job runs to its end: steps, events and a done snapshot arrive; it leaves the live list', async () => {
  hold.open();
  const job = await early.waitFor('job registration', (m) => m.type === '@xstate.actor' && m.sessionId === jobSession);
  const done = await early.waitFor('job done', (m) => m.type === '@xstate.snapshot' && m.sessionId === job.sessionId && m.snapshot.status === 'done');
  assert.equal(done.snapshot.value, 'synced');
  assert.equal(done.snapshot.output.outcome, 'done');
  assert.equal(done.snapshot.context.job.job_state, 'done');

  const values = early.messages
    .filter((m) => m.type === '@xstate.snapshot' && m.sessionId === job.sessionId)
    .map((m) => JSON.stringify(m.snapshot.value));
  for (const step of ['"start"', '{"direction":"reading"}', '{"children":"listing"}', '"consistency"', '"writing"', '"finishing"', '"synced"']) {
    assert.ok(values.includes(step), `the job passed ${step}; saw ${values.join(' ')}`);
  }
  // the events that moved it are there too, from its invoked actors to the job
  const toJob = early.messages.filter((m) => m.type === '@xstate.event' && m.sessionId === job.sessionId).map((m) => m.event.type);
  assert.ok(toJob.includes('xstate.done.actor.0.job.writing'), `events to the job: ${toJob.join(', ')}`);

  await service.harness.workers.whenIdle();
  await early.waitFor('supervisor back to idle', (m) => m.type === '@xstate.snapshot' && m.sessionId === job.parentId && m.snapshot.value === 'idle');
  const live = service.inspection.liveActors();
  assert.equal(live.some((a) => a.machine === 'job'), false, 'no job actor stays live');
  assert.equal(live.some((a) => a.machine === null), false, 'no promise actor stays live');
  assert.deepEqual(live.map((a) => a.name), ['supervisor']);

  const row = await service.harness.table.store.getJob(jobId);
  assert.equal(row?.job_state, 'done');
});

test('every message is one JSON Stately event, numbered in the order sent; a repeated id is only a replayed copy', () => {
  const byId = new Map<string, string>();
  let last = 0;
  early.messages.forEach((m, i) => {
    assert.ok(['@xstate.actor', '@xstate.event', '@xstate.snapshot'].includes(m.type), m.type);
    assert.equal(m._version, inspectVersion);
    assert.equal(typeof m.sessionId, 'string');
    const seen = byId.get(m.id);
    if (seen !== undefined) {
      assert.equal(early.raw[i], seen, `message ${m.id} repeated with other content`);
      return;
    }
    const sequence = Number(m.id.split(':')[1]);
    assert.ok(sequence > last, `message ${m.id} sent after ${last}`);
    last = sequence;
    byId.set(m.id, early.raw[i]);
  });
});

test("Stately's own WebSocket receiver reads the stream", async () => {
  const receiver = createWebSocketReceiver({ server: service.wsUrl });
  const received: StatelyInspectionEvent[] = [];
  const supervisorSeen = new Promise<void>((resolve) => {
    receiver.subscribe((event) => {
      received.push(event);
      if (event.type === '@xstate.actor' && event.name === 'supervisor') resolve();
    });
  });
  await supervisorSeen;
  const actor = received.find((e) => e.type === '@xstate.actor' && e.name === 'supervisor') as Extract<StatelyInspectionEvent, { type: '@xstate.actor' }>;
  assert.equal(JSON.parse(actor.definition!).id, 'supervisor');
  assert.ok(received.some((e) => e.type === '@xstate.snapshot'));
});

test('the page and the machine shapes are served', async () => {
  const page = await fetch(`${service.baseUrl}/visualizer/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
  const html = await page.text();
  assert.match(html, /<svg id="machine"/);
  assert.doesNotMatch(html, /https?:\/\//, 'the page loads nothing from elsewhere');

  const root = await fetch(`${service.baseUrl}/`, { redirect: 'manual' });
  assert.equal(root.status, 302);
  assert.equal(root.headers.get('location'), '/visualizer/');

  const shapes = (await (await fetch(`${service.baseUrl}/inspect/machines`)).json()) as { machines: Record<string, ReturnType<typeof describeMachine>> };
  assert.deepEqual(Object.keys(shapes.machines).sort(), ['job', 'protocol', 'supervisor']);
  const job = shapes.machines.job;
  const paths = job.states.map((s) => s.path);
  for (const p of ['start', 'direction.reading', 'children.running', 'writing', 'finishing', 'synced', 'aborted']) assert.ok(paths.includes(p), p);
  const toFinishing = job.transitions.filter((t) => t.targets.includes('finishing')).map((t) => t.source);
  assert.ok(toFinishing.includes('children.next'), 'a target written as #job.finishing is resolved');
  const readDone = job.transitions.find((t) => t.source === 'direction.reading' && t.kind === 'done');
  assert.deepEqual(readDone?.targets, ['direction.deciding']);
  assert.equal(readDone?.label, 'readDirection');
  assert.deepEqual(job.states.find((s) => s.path === 'start')?.invokes, [{ id: '0.job.start', src: 'startJob' }]);

  const actors = (await (await fetch(`${service.baseUrl}/inspect/actors`)).json()) as { actors: Array<{ name: string }> };
  assert.ok(actors.actors.some((a) => a.name === 'supervisor'));
});

test('another path on the server refuses the WebSocket upgrade instead of hanging', async () => {
  await assert.rejects(connectStream(service.wsUrl.replace('/inspect', '/other')), /404/);
});

test("a page of another site may not open the stream; this service's own pages may", async () => {
  const attempt = (origin: string) => new Promise<number>((resolve, reject) => {
    const ws = new WebSocket(service.wsUrl, { origin });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('error', reject);
  });
  assert.equal(await attempt('http://evil.example'), 403);
  assert.equal(await attempt(service.baseUrl), 101);
});

test('describeMachine gives every state of the job machine exactly once', () => {
  const shape = describeMachine(jobMachine);
  const paths = shape.states.map((s) => s.path);
  assert.equal(new Set(paths).size, paths.length);
  assert.equal(paths[0], '');
  for (const t of shape.transitions) {
    for (const target of t.targets) assert.ok(paths.includes(target), `${t.source} → ${target}`);
  }
});

// ---------- safety of what is published, with small machines of its own ----------

/** An express app + server with the inspection routes only, for a given inspection. */
async function serve(inspection: ReturnType<typeof createInspection>) {
  const app = express();
  mountVisualizer(app, inspection);
  const server = http.createServer(app);
  attachInspectionSocket(server, inspection, silentLogger());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/inspect`;
  return { url, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

test('circular, huge and secret-looking values are published safely', async () => {
  const inspection = createInspection(silentLogger(), { maxMessageBytes: 64 * 1024 });
  const { url, close } = await serve(inspection);
  const client = await connectStream(url);
  try {
    const circular: Record<string, unknown> = { name: 'loop' };
    circular.self = circular;
    const machine = setup({ types: { context: {} as Record<string, unknown> } }).createMachine({
      id: 'odd',
      context: {
        circular,
        huge: 'x'.repeat(2_000_000),
        many: Array.from({ length: 10_000 }, (_, i) => ({ i })),
        deep: JSON.parse('{"a":'.repeat(50) + '1' + '}'.repeat(50)),
        at: new Date('2024-05-06T07:08:09.000Z'),
        count: 12n,
        failure: new Error('boom'),
        password: 'hunter2',
        nested: { api_token: 'tok-123', fine: 'kept' },
      },
      initial: 'a',
      states: { a: { on: { GO: 'b' } }, b: {} },
    });
    const actor = createActor(machine, { inspect: inspection.observer }).start();
    actor.send({ type: 'GO', secret: 'hunter2', big: 'y'.repeat(500_000) });
    const snap = await client.waitFor('the odd machine in b', (m) => m.type === '@xstate.snapshot' && m.snapshot.value === 'b');
    const ctx = snap.snapshot.context;
    assert.equal(ctx.circular.self, '[Circular]');
    assert.ok(ctx.huge.length < 1100 && ctx.huge.endsWith('(2000000 chars)'), 'a long string is cut and says so');
    assert.ok(ctx.many.length <= 51);
    assert.equal(ctx.at, '2024-05-06T07:08:09.000Z');
    assert.equal(ctx.count, '12', 'a BigInt as its digits');
    assert.deepEqual(ctx.failure, { name: 'Error', message: 'boom' });
    assert.equal(ctx.password, '[redacted]');
    assert.equal(ctx.nested.api_token, '[redacted]');
    assert.equal(ctx.nested.fine, 'kept');
    assert.equal(snap.event.type, 'GO');
    assert.equal(snap.event.secret, '[redacted]');
    const sent = await client.waitFor('the GO event', (m) => m.type === '@xstate.event' && m.event.type === 'GO');
    assert.equal(sent.event.secret, '[redacted]');
    for (const text of client.raw) {
      assert.ok(Buffer.byteLength(text) <= 64 * 1024, `a message of ${Buffer.byteLength(text)} bytes`);
      assert.doesNotMatch(text, /hunter2|tok-123/);
    }
    actor.stop();
  } finally {
    client.close();
    await close();
  }
});

test('toInspectable never throws, even on a getter or toJSON that does', () => {
  const hostile = {
    get bad() {
      throw new Error('no');
    },
    toJSONHolder: { toJSON() { throw new Error('nope'); } },
    fn: function named() {},
    buf: Buffer.from('abc'),
    map: new Map([['k', 1]]),
    set: new Set([1, 2]),
    nan: Number.NaN,
    invalid: new Date('x'),
  };
  assert.deepEqual(toInspectable(hostile), {
    bad: '[unreadable]',
    toJSONHolder: '[unreadable]',
    fn: { type: 'named' },
    buf: '[3 bytes]',
    map: { k: 1 },
    set: [1, 2],
    nan: 'NaN',
    invalid: 'Invalid Date',
  });
});

test('the replay buffer is bounded and still ends with the live actors', async () => {
  const inspection = createInspection(silentLogger(), { historySize: 20 });
  // the buffer is kept while somebody watches
  const unsubscribe = inspection.subscribe(() => {});
  const counter = createMachine({
    id: 'counter',
    initial: 'even',
    states: { even: { on: { TICK: 'odd' } }, odd: { on: { TICK: 'even' } } },
  });
  const actor = createActor(counter, { inspect: inspection.observer }).start();
  for (let i = 0; i < 101; i++) actor.send({ type: 'TICK' });
  await new Promise((resolve) => setTimeout(resolve, 20)); // Stately's inspector converts on a timer
  const replay = inspection.replay().map((t) => JSON.parse(t));
  assert.ok(replay.length <= 22, `replay of ${replay.length}`);
  const [registration, latest] = replay.slice(-2);
  assert.equal(registration.type, '@xstate.actor');
  assert.equal(registration.name, 'counter');
  assert.equal(latest.type, '@xstate.snapshot');
  assert.equal(latest.snapshot.value, 'odd');
  actor.stop();
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(inspection.liveActors(), []);
  unsubscribe();
});

test('a child stopped by its parent leaving the state leaves the live list', async () => {
  const inspection = createInspection(silentLogger());
  const never = fromPromise(() => new Promise<void>(() => {}));
  const parent = setup({ actors: { never } }).createMachine({
    id: 'parent',
    initial: 'waiting',
    states: { waiting: { invoke: { src: 'never' }, on: { LEAVE: 'left' } }, left: {} },
  });
  const actor = createActor(parent, { inspect: inspection.observer }).start();
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(inspection.liveActors().length, 2, 'parent and its invoked promise');
  actor.send({ type: 'LEAVE' });
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(inspection.liveActors().map((a) => a.name), ['parent']);
  actor.stop();
});

test('closing the HTTP server ends connected inspection clients instead of waiting for them', { timeout: 10_000 }, async () => {
  const inspection = createInspection(silentLogger());
  const { url, close } = await serve(inspection);
  const client = await connectStream(url);
  // http.Server.close resolves only once every socket is gone, upgraded ones included
  await close();
  assert.equal(typeof (await client.closed), 'number', 'the client saw its connection end');
});

// ---------- the chart shape names guards ----------

test('the chart shape names every guard as setup() does, higher-order guards spelled out', () => {
  const machine = setup({
    types: { context: {} as { count: number } },
    guards: {
      isReady: ({ context }) => context.count > 0,
      hasAtLeast: ({ context }, params: { n: number }) => context.count >= params.n,
    },
  }).createMachine({
    id: 'guarded',
    context: { count: 0 },
    initial: 'a',
    states: {
      a: {
        on: {
          NAMED: { guard: 'isReady', target: 'b' },
          PARAMS: { guard: { type: 'hasAtLeast', params: { n: 2 } }, target: 'b' },
          NOT: { guard: not('isReady'), target: 'b' },
          AND: { guard: and(['isReady', not({ type: 'hasAtLeast', params: { n: 3 } })]), target: 'b' },
          OR: { guard: or(['isReady', and(['isReady', 'isReady'])]), target: 'b' },
          IN: { guard: stateIn('b'), target: 'b' },
          INLINE: { guard: ({ context }) => context.count > 5, target: 'b' },
          PLAIN: 'b',
        },
        always: { guard: 'isReady', target: 'b' },
      },
      b: { after: { 100: { guard: 'isReady', target: 'a' } } },
    },
  });
  const shape = describeMachine(machine);
  const guardOf = (event: string) => shape.transitions.find((t) => t.event === event)?.guard;
  assert.equal(guardOf('NAMED'), 'isReady');
  assert.equal(guardOf('PARAMS'), 'hasAtLeast');
  assert.equal(guardOf('NOT'), '!isReady');
  assert.equal(guardOf('AND'), 'isReady && !hasAtLeast');
  assert.equal(guardOf('OR'), 'isReady || (isReady && isReady)');
  assert.equal(guardOf('IN'), 'in "b"');
  assert.equal(guardOf('INLINE'), INLINE_GUARD);
  assert.equal(guardOf('PLAIN'), null);
  assert.deepEqual(shape.transitions.filter((t) => t.kind === 'always').map((t) => [t.source, t.guard, t.targets]), [['a', 'isReady', ['b']]]);
  assert.deepEqual(shape.transitions.filter((t) => t.kind === 'after').map((t) => [t.source, t.label, t.guard]), [['b', 'after 100 ms', 'isReady']]);
});

test("the job machine's guarded transitions carry the names of the guards it implements", () => {
  const shape = describeMachine(jobMachine);
  const guarded = shape.transitions.filter((t) => t.guard !== null);
  assert.ok(guarded.length >= 5, `guarded transitions: ${guarded.length}`);
  const implemented = Object.keys(jobMachine.implementations.guards);
  const named = guarded.map((t) => t.guard!).filter((g) => /^[A-Za-z_$][\w$]*$/.test(g));
  assert.ok(named.length > 0, 'some guards are named');
  for (const name of named) assert.ok(implemented.includes(name), `${name} is a guard of setup()`);
  // every guard named in setup() and used by a transition reaches the chart
  const used = new Set(named);
  const definition = JSON.stringify(jobMachine.definition);
  for (const name of implemented) {
    if (definition.includes(`"guard":"${name}"`) || definition.includes(`"type":"${name}"`)) assert.ok(used.has(name), `${name} shows on the chart`);
  }
});

// ---------- nothing is serialized while nobody watches ----------

/** A machine whose context counts how often anything serializes it. */
function countingMachine() {
  const reads = { count: 0 };
  const watched = { toJSON: () => ({ reads: ++reads.count }) };
  const machine = createMachine({
    id: 'counted',
    context: { watched },
    initial: 'even',
    states: { even: { on: { TICK: 'odd' } }, odd: { on: { TICK: 'even' } } },
  });
  return { machine, reads };
}

/** The two ways of wiring a system: attached (as the service does), or with the observer passed to createActor. */
const wirings = {
  attached: (inspection: ReturnType<typeof createInspection>, machine: ReturnType<typeof countingMachine>['machine']) => {
    const actor = createActor(machine).start();
    inspection.attach(actor);
    return actor;
  },
  observer: (inspection: ReturnType<typeof createInspection>, machine: ReturnType<typeof countingMachine>['machine']) =>
    createActor(machine, { inspect: inspection.observer }).start(),
};

for (const [wiring, start] of Object.entries(wirings)) {
  test(`${wiring}, without a subscriber nothing is serialized; a client connecting later gets each live actor in its state now`, async () => {
    const inspection = createInspection(silentLogger(), { historySize: 50 });
    const { machine, reads } = countingMachine();
    const actor = start(inspection, machine);
    for (let i = 0; i < 9; i++) actor.send({ type: 'TICK' });
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(reads.count, 0, 'no snapshot was serialized for nobody');
    assert.deepEqual(inspection.liveActors().map((a) => [a.name, a.value]), [['counted', 'odd']]);

    const replay = inspection.replay().map((t) => JSON.parse(t));
    assert.ok(reads.count > 0, 'the replay serializes what it sends');
    // the steps nobody watched are not kept: the actor registers with its state now
    assert.deepEqual(replay.map((m) => [m.type, m.name, m.snapshot.value]), [['@xstate.actor', 'counted', 'odd']]);
    // a second client gets the same texts, serialized once
    const before = reads.count;
    assert.deepEqual(inspection.replay().map((t) => JSON.parse(t).id), replay.map((m) => m.id));
    assert.equal(reads.count, before, 'texts are kept, not serialized again');
    actor.send({ type: 'TICK' });
    const [moved] = inspection.replay().map((t) => JSON.parse(t));
    assert.equal(moved.snapshot.value, 'even', 'a step later the replay shows the new state');
    assert.ok(Number(moved.id.split(':')[1]) > Number(replay[0].id.split(':')[1]), 'under a new id');
    actor.stop();
  });
}

test('an attached system is asked for inspection events only while somebody is subscribed', () => {
  const inspection = createInspection(silentLogger());
  const actor = createActor(countingMachine().machine).start();
  // XState builds an inspection event for every step of every actor as soon as anybody inspects its system
  const system = actor.system;
  const inspect = system.inspect.bind(system);
  let inspecting = 0;
  system.inspect = (observer) => {
    inspecting++;
    const subscription = inspect(observer);
    return { unsubscribe: () => (inspecting--, subscription.unsubscribe()) };
  };
  inspection.attach(actor);
  assert.equal(inspecting, 0, 'attached, nobody watching');
  const received: string[] = [];
  const unsubscribe = inspection.subscribe((m) => received.push(m));
  assert.equal(inspecting, 1, 'a subscriber: the system is inspected');
  actor.send({ type: 'TICK' });
  assert.ok(received.some((m) => JSON.parse(m).snapshot?.value === 'odd'), 'the step reached the subscriber');
  unsubscribe();
  assert.equal(inspecting, 0, 'the last subscriber gone: no longer inspected');
  assert.deepEqual(inspection.replay().map((m) => JSON.parse(m).type), ['@xstate.actor'], 'and the replay buffer let go');
  actor.stop();
});

test('the WebSocket subscribes only while a client is connected', async () => {
  const inspection = createInspection(silentLogger());
  const { url, close } = await serve(inspection);
  const { machine, reads } = countingMachine();
  const actor = wirings.attached(inspection, machine);
  try {
    actor.send({ type: 'TICK' });
    assert.equal(reads.count, 0, 'no client yet: nothing serialized');
    const client = await connectStream(url);
    await client.waitFor('the replayed state', (m) => m.type === '@xstate.actor' && m.snapshot.value === 'odd');
    actor.send({ type: 'TICK' });
    await client.waitFor('the live step', (m) => m.type === '@xstate.snapshot' && m.snapshot.value === 'even' && m.event.type === 'TICK');
    client.close();
    await client.closed;
    await new Promise((resolve) => setTimeout(resolve, 50)); // the server sees the close after the client
    const afterClose = reads.count;
    for (let i = 0; i < 5; i++) actor.send({ type: 'TICK' });
    assert.equal(reads.count, afterClose, 'the last client gone: nothing serialized any more');
    const again = await connectStream(url);
    const caughtUp = await again.waitFor('the replayed state', (m) => m.type === '@xstate.actor');
    assert.equal(caughtUp.snapshot.value, 'odd', 'caught up with the steps taken while nobody watched');
    again.close();
  } finally {
    actor.stop();
    await close();
  }
});

test('a child that ends without a final snapshot is announced as stopped to a watching client', async () => {
  const inspection = createInspection(silentLogger());
  const messages: Array<Record<string, any>> = [];
  inspection.subscribe((m) => messages.push(JSON.parse(m)));
  const broken = createMachine({ id: 'broken', initial: 'a', states: { a: { on: { BREAK: { actions: () => { throw new Error('thrown in a transition'); } } } } } });
  const parent = setup({ actors: { broken } }).createMachine({
    id: 'holder',
    initial: 'holding',
    states: { holding: { invoke: { id: 'child', src: 'broken', onError: 'recovered' } }, recovered: {} },
  });
  const actor = createActor(parent, { inspect: inspection.observer }).start();
  const child = actor.getSnapshot().children.child!;
  child.send({ type: 'BREAK' });
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(inspection.liveActors().map((a) => a.name), ['holder']);
  const end = messages.find((m) => m.type === '@xstate.snapshot' && m.sessionId === child.sessionId && m.snapshot.status !== 'active');
  assert.ok(end, `the child's end was published: ${messages.filter((m) => m.sessionId === child.sessionId).map((m) => m.snapshot?.status).join(',')}`);
  actor.stop();
});

test('a child stopped before it started (its state left in the same step) is no live actor, and a watching client is told', async () => {
  const inspection = createInspection(silentLogger());
  const messages: Array<Record<string, any>> = [];
  inspection.subscribe((m) => messages.push(JSON.parse(m)));
  const never = fromPromise(() => new Promise<void>(() => {}));
  const parent = setup({ actors: { never } }).createMachine({
    id: 'passing',
    initial: 'a',
    states: { a: { invoke: { src: 'never' }, always: 'b' }, b: {} },
  });
  const actor = createActor(parent, { inspect: inspection.observer }).start();
  await new Promise((resolve) => setTimeout(resolve, 20));
  const registered = messages.filter((m) => m.type === '@xstate.actor').map((m) => m.sessionId);
  assert.equal(registered.length, 2, 'XState registered the child it never started');
  assert.deepEqual(inspection.liveActors().map((a) => a.name), ['passing']);
  const child = registered.find((id) => id !== actor.sessionId);
  assert.ok(messages.some((m) => m.type === '@xstate.snapshot' && m.sessionId === child && m.snapshot.status === 'stopped'), 'its end was published');
  actor.stop();
});

// ---------- recordings ----------

test('a recorder saves every message of a run as JSONL, the format the page replays', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sosync-recording-'));
  try {
    const file = path.join(dir, 'nested', 'run.jsonl');
    const { jobId, messages } = await recordOneJob(file);
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    assert.equal(lines.at(-1), '', 'ends with a newline');
    const parsed = lines.slice(0, -1).map((line) => JSON.parse(line));
    assert.deepEqual(parsed, messages);
    assert.ok(parsed.every((m) => ['@xstate.actor', '@xstate.event', '@xstate.snapshot'].includes(m.type)));
    assert.ok(parsed.some((m) => m.type === '@xstate.actor' && m.name === 'supervisor'));
    const done = parsed.find((m) => m.type === '@xstate.snapshot' && m.snapshot.status === 'done' && m.snapshot.context?.job?.job_id === jobId);
    assert.equal(done?.snapshot.value, 'synced');
    const sequences = parsed.map((m) => Number(m.id.split(':')[1]));
    assert.deepEqual(sequences, [...sequences].sort((a, b) => a - b));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
