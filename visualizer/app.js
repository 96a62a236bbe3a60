// The live inspection page: reads Stately-format inspection events from the service's WebSocket
// (/inspect), keeps the live actors and their states, draws the selected actor's machine and
// logs what happens. Everything it needs comes from the service itself. It also replays a
// recording of such events (a JSONL file or JSON array, chosen in the file input or named by
// `?replay=<url>` on this origin) as an animation, instead of the live stream.
import { layoutMachine } from './layout.js';
import { askToken, authHeaders, sendToken, UNAUTHORIZED_CLOSE } from './token.js';

const SVG = 'http://www.w3.org/2000/svg';
const MAX_LOG_LINES = 400;
const MAX_ENDED = 8;

const $ = (id) => document.getElementById(id);
const ui = {
  connection: $('connection'),
  summary: $('summary'),
  follow: $('follow'),
  live: $('live-actors'),
  ended: $('ended-actors'),
  details: $('details'),
  detailsTitle: $('details-title'),
  diagramTitle: $('diagram-title'),
  diagramState: $('diagram-state'),
  diagramNotes: $('diagram-notes'),
  svg: $('machine'),
  log: $('log'),
  replayFile: $('replay-file'),
  replayBar: $('replay'),
  replayName: $('replay-name'),
  replayPlay: $('replay-play'),
  replayStep: $('replay-step'),
  replayRestart: $('replay-restart'),
  replaySpeed: $('replay-speed'),
  replayPosition: $('replay-position'),
};

const state = {
  machines: {},
  layouts: new Map(),
  /** sessionId → actor (machine actors only; promise actors are noise at this level) */
  actors: new Map(),
  /** machine actors that ended, newest first */
  ended: [],
  selected: null,
  follow: true,
  boot: null,
  lastSeq: 0,
  received: 0,
  drawn: null,
};

// ---------- formatting ----------

function valuePaths(value, prefix = '') {
  if (value === undefined || value === null) return [];
  if (typeof value === 'string') return [prefix + value];
  const out = [];
  for (const [key, sub] of Object.entries(value)) {
    out.push(prefix + key);
    out.push(...valuePaths(sub, `${prefix}${key}.`));
  }
  return out;
}

function formatValue(value) {
  if (value === undefined || value === null) return '–';
  if (typeof value === 'string') return value;
  return Object.entries(value).map(([k, v]) => (v && typeof v === 'object' && !Object.keys(v).length ? k : `${k}.${formatValue(v)}`)).join(', ');
}

function time(createdAt) {
  const d = new Date(Number(createdAt) || Date.now());
  return d.toTimeString().slice(0, 8) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}

function jobOf(actor) {
  const job = actor.context && actor.context.job;
  return job && typeof job === 'object' ? job : null;
}

function labelOf(actor) {
  if (actor.machine === 'job') {
    const job = jobOf(actor);
    const parent = state.actors.get(actor.parentId) || state.ended.find((a) => a.sessionId === actor.parentId);
    const child = parent && parent.machine === 'job';
    return `${child ? 'child job' : 'job'} #${job ? job.job_id : '?'}`;
  }
  return actor.machine || actor.name;
}

function subLabelOf(actor) {
  const job = jobOf(actor);
  if (job) return `${job.job_source_system} ${job.job_source_model} ${job.job_source_record_id}`;
  return '';
}

// the invoked source behind an `xstate.done.actor.<id>` / `xstate.error.actor.<id>` event
function describeEvent(actor, event) {
  if (!event || !event.type) return '';
  const m = /^xstate\.(done|error)\.actor\.(.+)$/.exec(event.type);
  if (m) {
    const shape = state.machines[actor.machine];
    const invoke = shape && shape.states.flatMap((s) => s.invokes).find((i) => i.id === m[2]);
    const src = invoke ? invoke.src : m[2];
    if (m[1] === 'done') return `${src} done`;
    const message = event.error && (event.error.message || event.error);
    return `${src} failed${message ? `: ${typeof message === 'string' ? message : JSON.stringify(message)}` : ''}`;
  }
  if (event.type.startsWith('xstate.after.')) return 'timer';
  if (event.type === 'xstate.init') return 'started';
  return event.type;
}

// ---------- the log ----------

function log(kind, createdAt, who, what, why = '', extraClass = '') {
  const atBottom = ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 30;
  const li = document.createElement('li');
  li.className = `kind-${kind} ${extraClass}`.trim();
  const parts = [['time', time(createdAt)], ['who', who], ['what', what], ['why', why ? `  (${why})` : '']];
  for (const [cls, text] of parts) {
    if (!text) continue;
    const span = document.createElement('span');
    span.className = cls;
    span.textContent = text;
    li.append(span);
  }
  ui.log.append(li);
  while (ui.log.childElementCount > MAX_LOG_LINES) ui.log.firstElementChild.remove();
  if (atBottom) ui.log.scrollTop = ui.log.scrollHeight;
}

// ---------- the stream ----------

function machineIdOf(definition) {
  if (!definition) return null;
  try {
    const parsed = JSON.parse(definition);
    return parsed && parsed.states && typeof parsed.id === 'string' ? parsed.id : null;
  } catch {
    return null;
  }
}

function endActor(actor, createdAt, fresh) {
  state.actors.delete(actor.sessionId);
  actor.ended = true;
  actor.endedAt = createdAt;
  state.ended = [actor, ...state.ended.filter((a) => a.sessionId !== actor.sessionId)].slice(0, MAX_ENDED);
  for (const child of [...state.actors.values()]) {
    if (child.parentId === actor.sessionId) endActor(child, createdAt, false);
  }
  if (fresh) {
    const job = jobOf(actor);
    const failed = actor.status === 'error' || ['error', 'aborted'].includes(formatValue(actor.value));
    const detail = job && actor.context.error ? actor.context.error.text : '';
    log('ended', createdAt, labelOf(actor), `ended in ${formatValue(actor.value)}${actor.status !== 'done' ? ` (${actor.status})` : ''}`, detail, failed ? 'failed' : '');
  }
}

function onMessage(message) {
  state.received++;
  const [boot, seqText] = String(message.id || '').split(':');
  const seq = Number(seqText) || 0;
  if (boot && boot !== state.boot) {
    if (state.boot) log('system', Date.now(), 'service', 'restarted: starting afresh');
    state.boot = boot;
    state.lastSeq = 0;
    state.actors.clear();
  }
  // replayed messages rebuild the state but are logged only once
  const fresh = seq > state.lastSeq;
  if (fresh) state.lastSeq = seq;

  if (message.type === '@xstate.actor') {
    const machine = machineIdOf(message.definition);
    if (!machine) return;
    const snapshot = message.snapshot || {};
    if (snapshot.status && snapshot.status !== 'active') return;
    const known = state.actors.get(message.sessionId);
    const actor = known || {
      sessionId: message.sessionId,
      parentId: message.parentId,
      name: message.name,
      machine,
      visited: new Set(),
      startedAt: message.createdAt,
      lastStep: null,
    };
    actor.status = snapshot.status || 'active';
    actor.value = snapshot.value;
    actor.context = snapshot.context;
    for (const p of valuePaths(actor.value)) actor.visited.add(p);
    state.actors.set(actor.sessionId, actor);
    return;
  }

  const actor = state.actors.get(message.sessionId);
  if (!actor) return;

  if (message.type === '@xstate.snapshot') {
    const snapshot = message.snapshot || {};
    const before = formatValue(actor.value);
    const beforeLeaves = valuePaths(actor.value);
    actor.status = snapshot.status || 'active';
    if (snapshot.value !== undefined) actor.value = snapshot.value;
    if (snapshot.context !== undefined) actor.context = snapshot.context;
    const after = formatValue(actor.value);
    for (const p of valuePaths(actor.value)) actor.visited.add(p);
    if (message.event && message.event.type === 'xstate.init') {
      if (fresh) log('started', message.createdAt, labelOf(actor), `started in ${after}`, subLabelOf(actor));
    } else if (before !== after) {
      actor.lastStep = { from: beforeLeaves[beforeLeaves.length - 1], to: valuePaths(actor.value).pop(), event: message.event && message.event.type };
      const why = describeEvent(actor, message.event);
      const failed = message.event && /^xstate\.error\./.test(message.event.type);
      if (fresh) log(failed ? 'error' : 'step', message.createdAt, labelOf(actor), `${before} → ${after}`, why);
    }
    if (actor.status !== 'active') endActor(actor, message.createdAt, fresh);
    return;
  }

  if (message.type === '@xstate.event') {
    const type = message.event && message.event.type;
    // internal events show in the step they cause; an outside event is worth its own line
    if (fresh && type && !type.startsWith('xstate.')) log('event', message.createdAt, labelOf(actor), `received ${type}`, message.sourceId ? `from ${message.sourceId}` : 'from the service');
  }
}

// ---------- choosing what to show ----------

function currentJob() {
  const jobs = [...state.actors.values()].filter((a) => a.machine === 'job');
  const roots = jobs.filter((a) => !state.actors.get(a.parentId) || state.actors.get(a.parentId).machine !== 'job');
  return roots[roots.length - 1] || jobs[jobs.length - 1] || null;
}

function selectedActor() {
  if (state.follow) {
    return currentJob() || state.ended.find((a) => a.machine === 'job') || null;
  }
  return state.actors.get(state.selected) || state.ended.find((a) => a.sessionId === state.selected) || null;
}

function select(sessionId) {
  state.follow = false;
  state.selected = sessionId;
  scheduleRender();
}

ui.follow.addEventListener('click', () => {
  state.follow = !state.follow;
  scheduleRender();
});

// ---------- rendering ----------

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    render();
  });
}

function actorItem(actor, depth, shown) {
  const li = document.createElement('li');
  li.className = `actor depth-${Math.min(depth, 3)}${shown && shown.sessionId === actor.sessionId ? ' selected' : ''}`;
  li.dataset.session = actor.sessionId;
  li.dataset.machine = actor.machine;
  const job = jobOf(actor);
  if (job) li.dataset.jobId = String(job.job_id);
  const name = document.createElement('span');
  name.className = 'actor-name';
  name.textContent = labelOf(actor);
  li.append(name);
  const sub = subLabelOf(actor);
  if (sub) {
    const s = document.createElement('span');
    s.className = 'actor-sub';
    s.textContent = sub;
    li.append(s);
  }
  const value = formatValue(actor.value);
  const st = document.createElement('span');
  st.className = `actor-state outcome-${value} status-${actor.status}`;
  st.textContent = value;
  li.dataset.state = value;
  li.append(st);
  const note = noteOf(actor);
  if (note) {
    const n = document.createElement('span');
    n.className = 'actor-note';
    n.textContent = note;
    li.append(n);
  }
  li.addEventListener('click', () => select(actor.sessionId));
  return li;
}

function noteOf(actor) {
  const c = actor.context || {};
  if (actor.machine === 'supervisor') {
    const parts = [`${c.jobsRun ?? 0} jobs run`];
    if (c.lastOutcome) parts.push(`last: job #${c.lastOutcome.jobId} ${c.lastOutcome.outcome}`);
    if (c.driftLock) parts.push(`locked until ${c.driftLock.until}: ${c.driftLock.reason}`);
    if (c.lastError) parts.push(`error: ${c.lastError}`);
    return parts.join(' · ');
  }
  if (actor.machine === 'protocol') {
    const parts = [`${c.copied ?? 0} rows copied`];
    if (c.lastError) parts.push(`error: ${c.lastError}`);
    return parts.join(' · ');
  }
  if (actor.machine === 'job' && c.error) return c.error.text;
  return '';
}

function renderActors(shown) {
  const children = new Map();
  for (const a of state.actors.values()) {
    const parent = state.actors.has(a.parentId) ? a.parentId : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(a);
  }
  const items = [];
  const walk = (parent, depth) => {
    for (const a of children.get(parent) || []) {
      items.push(actorItem(a, depth, shown));
      walk(a.sessionId, depth + 1);
    }
  };
  walk(null, 0);
  ui.live.replaceChildren(...items);
  ui.ended.replaceChildren(...state.ended.map((a) => actorItem(a, 0, shown)));
}

function el(name, attrs = {}, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (parent) parent.append(node);
  return node;
}

function layoutFor(machineId) {
  if (!state.layouts.has(machineId)) state.layouts.set(machineId, layoutMachine(state.machines[machineId]));
  return state.layouts.get(machineId);
}

function drawMachine(machineId) {
  const shape = state.machines[machineId];
  const layout = layoutFor(machineId);
  const svg = ui.svg;
  svg.replaceChildren();
  svg.setAttribute('viewBox', `0 0 ${layout.width} ${layout.height}`);
  svg.setAttribute('preserveAspectRatio', 'xMidYMin meet');
  svg.dataset.machine = machineId;
  const defs = el('defs', {}, svg);
  for (const id of ['arrow', 'arrow-error', 'arrow-taken']) {
    const marker = el('marker', { id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, defs);
    el('path', { d: 'M0,0 L10,5 L0,10 z' }, marker);
  }

  // compound states under the transitions, simple states over them: lines never cross a state's name
  const compoundLayer = el('g', { class: 'states compound-states' }, svg);
  const edgesLayer = el('g', { class: 'edges' }, svg);
  const atomicLayer = el('g', { class: 'states atomic-states' }, svg);
  const ordered = shape.states.filter((s) => s.path !== '').sort((a, b) => a.path.split('.').length - b.path.split('.').length);
  for (const s of ordered) {
    const box = layout.boxes.get(s.path);
    const g = el('g', { class: `state ${box.compound ? 'compound' : 'atomic'}${s.type === 'final' ? ' final' : ''}`, 'data-state': s.path, id: `state-${machineId}.${s.path}` }, box.compound ? compoundLayer : atomicLayer);
    el('title', {}, g).textContent = `${s.path}${s.invokes.length ? ` — runs ${s.invokes.map((i) => i.src).join(', ')}` : ''}`;
    el('rect', { class: 'box', x: box.x, y: box.y, width: box.w, height: box.h, rx: box.compound ? 10 : 7 }, g);
    if (s.type === 'final') el('rect', { class: 'inner', x: box.x + 3, y: box.y + 3, width: box.w - 6, height: box.h - 6, rx: 5 }, g);
    if (box.compound) {
      el('text', { class: 'name', x: box.x + 12, y: box.y + 18 }, g).textContent = s.key;
    } else {
      const invoke = s.invokes.map((i) => i.src).join(', ');
      const name = el('text', { class: 'name', x: box.x + box.w / 2, y: box.y + (invoke ? 21 : box.h / 2 + 5), 'text-anchor': 'middle' }, g);
      name.textContent = s.key;
      if (invoke) el('text', { class: 'invoke', x: box.x + box.w / 2, y: box.y + 38, 'text-anchor': 'middle' }, g).textContent = `▸ ${invoke}`;
    }
  }

  const placedLabels = [];
  for (const e of layout.edges) {
    const t = e.transition;
    const attrs = { class: `edge kind-${t.kind}${t.guard ? ' guarded' : ''}`, 'data-source': e.source, 'data-target': e.target, 'data-event': t.event };
    if (t.guard) attrs['data-guard'] = t.guard;
    const g = el('g', attrs, edgesLayer);
    el('title', {}, g).textContent = `${e.source} → ${e.target}: ${t.label || 'always'}${t.guard ? ` [${t.guard}]` : ''}`;
    el('path', { d: e.d, 'marker-end': `url(#${t.kind === 'error' ? 'arrow-error' : 'arrow'})` }, g);
    // events and timers are few and worth reading (a done edge's source already shows in its state);
    // a guarded edge says which guard lets it through, by the name the machine gives it
    const named = t.kind === 'event' || t.kind === 'after' ? t.label : '';
    const guard = t.guard ? `[${t.guard}]` : '';
    if (named || guard) {
      const text = `${named}${named && guard ? ' ' : ''}${guard}`;
      const at = freeSpot(placedLabels, e.mid.x, e.mid.y - 4, text.length * 6.6, 14);
      const label = el('text', { class: 'label', x: at.x, y: at.y, 'text-anchor': 'middle' }, g);
      if (named) el('tspan', { class: 'event' }, label).textContent = named;
      if (guard) el('tspan', { class: 'guard' }, label).textContent = `${named ? ' ' : ''}${guard}`;
    }
  }

  const initialLayer = el('g', { class: 'initials' }, svg);
  for (const i of layout.initials) {
    const g = el('g', { class: 'initial', 'data-parent': i.parent }, initialLayer);
    if (i.across) {
      const y = i.y + i.h / 2;
      el('circle', { cx: i.x - 16, cy: y, r: 4 }, g);
      el('path', { d: `M${i.x - 12},${y} L${i.x - 2},${y}` }, g);
    } else {
      const x = i.x + i.w / 2;
      el('circle', { cx: x, cy: i.y - 13, r: 4 }, g);
      el('path', { d: `M${x},${i.y - 9} L${x},${i.y - 1}` }, g);
    }
  }

  ui.diagramNotes.textContent = layout.notes.length
    ? `In any state: ${[...new Set(layout.notes.map((n) => `${n.transition.label} → ${n.target}`))].join(' · ')}`
    : '';
  state.drawn = machineId;
}

// moves a label down until it no longer covers one placed before it
function freeSpot(placed, x, y, w, h) {
  let at = { x, y };
  for (let tries = 0; tries < 8; tries++) {
    const clash = placed.some((p) => Math.abs(p.x - at.x) * 2 < p.w + w && Math.abs(p.y - at.y) < h);
    if (!clash) break;
    at = { x, y: at.y + h };
  }
  placed.push({ ...at, w });
  return at;
}

function highlight(actor) {
  const active = new Set(actor ? valuePaths(actor.value) : []);
  const visited = actor ? actor.visited : new Set();
  const outcome = actor && actor.ended ? (['error', 'aborted'].includes(formatValue(actor.value)) || actor.status === 'error' ? 'ended-error' : 'ended-ok') : '';
  for (const g of ui.svg.querySelectorAll('g.state')) {
    const path = g.dataset.state;
    g.classList.toggle('active', active.has(path));
    g.classList.toggle('visited', !active.has(path) && visited.has(path));
    g.classList.toggle('ended-ok', active.has(path) && outcome === 'ended-ok');
    g.classList.toggle('ended-error', active.has(path) && outcome === 'ended-error');
  }
  const step = actor && actor.lastStep;
  const live = actor && !actor.ended;
  for (const g of ui.svg.querySelectorAll('g.edge')) {
    g.classList.toggle('from-active', Boolean(live && active.has(g.dataset.source)));
    const taken = Boolean(step && g.dataset.target && step.to && (step.to === g.dataset.target || step.to.startsWith(`${g.dataset.target}.`)) && step.from && (step.from === g.dataset.source || step.from.startsWith(`${g.dataset.source}.`)));
    g.classList.toggle('taken', taken);
    const path = g.querySelector('path');
    const kind = g.classList.contains('kind-error') ? 'arrow-error' : 'arrow';
    path.setAttribute('marker-end', `url(#${taken ? 'arrow-taken' : kind})`);
  }
}

function render() {
  const shown = selectedActor();
  ui.follow.classList.toggle('on', state.follow);
  ui.follow.textContent = state.follow ? 'following the current job' : 'follow the current job';
  renderActors(shown);

  const machineId = shown && state.machines[shown.machine] ? shown.machine : 'job';
  if (state.machines[machineId]) {
    if (state.drawn !== machineId) drawMachine(machineId);
    highlight(shown && shown.machine === machineId ? shown : null);
  }
  const title = shown ? `${labelOf(shown)}${shown.ended ? ' (ended)' : ''}` : 'no job has run yet';
  ui.diagramTitle.textContent = `${machineId} machine — ${title}`;
  ui.diagramState.textContent = shown ? formatValue(shown.value) : '';
  ui.diagramState.dataset.state = shown ? formatValue(shown.value) : '';

  ui.detailsTitle.textContent = shown ? `Details — ${labelOf(shown)}` : 'Details';
  const text = shown ? JSON.stringify(shown.context ?? null, null, 1) : '';
  ui.details.textContent = text.length > 8000 ? `${text.slice(0, 8000)}\n…` : text;

  const jobs = [...state.actors.values()].filter((a) => a.machine === 'job').length;
  ui.summary.textContent = `${state.actors.size} live actor${state.actors.size === 1 ? '' : 's'} · ${jobs} job${jobs === 1 ? '' : 's'} running · ${state.received} events`;
}

// ---------- connection ----------

function setConnection(status, text) {
  ui.connection.className = `connection ${status}`;
  ui.connection.dataset.status = status;
  ui.connection.textContent = text;
}

async function loadMachines() {
  let response = await fetch('/inspect/machines', { cache: 'no-store', headers: authHeaders() });
  if (response.status === 401 && askToken('sosync asks for its API token.')) {
    response = await fetch('/inspect/machines', { cache: 'no-store', headers: authHeaders() });
  }
  if (!response.ok) throw new Error(`machines: HTTP ${response.status}`);
  state.machines = (await response.json()).machines;
  state.layouts.clear();
  state.drawn = null;
}

const live = { on: true, socket: null, retryTimer: null, retryMs: 1000 };

async function connect() {
  if (!live.on) return;
  setConnection('connecting', 'connecting…');
  try {
    if (!Object.keys(state.machines).length) await loadMachines();
  } catch {
    return retry();
  }
  if (!live.on) return;
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/inspect`;
  const socket = new WebSocket(url);
  live.socket = socket;
  let opened = false;
  socket.addEventListener('open', () => {
    sendToken(socket);
    opened = true;
    live.retryMs = 1000;
    // the replay that follows rebuilds the live actors from scratch
    state.actors.clear();
    setConnection('open', 'live');
    scheduleRender();
  });
  socket.addEventListener('message', (e) => {
    if (!live.on) return;
    try {
      onMessage(JSON.parse(e.data));
    } catch (err) {
      console.warn('inspection message not understood', err);
    }
    scheduleRender();
  });
  socket.addEventListener('close', (e) => {
    if (!live.on) return;
    if (e.code === UNAUTHORIZED_CLOSE && askToken('sosync refused the API token.')) return connect();
    if (opened) log('system', Date.now(), 'page', 'connection lost; reconnecting');
    retry();
  });
}

function retry() {
  const seconds = Math.round(live.retryMs / 1000);
  setConnection('closed', `disconnected — retrying in ${seconds} s`);
  live.retryTimer = setTimeout(connect, live.retryMs);
  live.retryMs = Math.min(live.retryMs * 2, 10000);
}

function stopLive() {
  live.on = false;
  clearTimeout(live.retryTimer);
  if (live.socket) live.socket.close();
}

// ---------- replaying a recording ----------

// each snapshot shows for at least this long (at 1×), longer when the recorded gap was longer
const STEP_MS = 300;
const MAX_STEP_MS = 2000;
const replay = { name: '', messages: [], index: 0, playing: false, timer: null, speed: 1 };

function parseRecording(text) {
  const trimmed = text.trim();
  if (!trimmed) throw new Error('it is empty');
  let items;
  if (trimmed.startsWith('[')) {
    try {
      items = JSON.parse(trimmed);
    } catch (err) {
      throw new Error(`it is not a JSON array: ${err.message}`);
    }
  } else {
    items = trimmed.split('\n').filter((line) => line.trim()).map((line, i) => {
      try {
        return JSON.parse(line);
      } catch {
        throw new Error(`line ${i + 1} is not JSON`);
      }
    });
  }
  items.forEach((m, i) => {
    if (!m || typeof m.type !== 'string' || !m.type.startsWith('@xstate.')) throw new Error(`message ${i + 1} is not an inspection event`);
  });
  return items;
}

function resetView() {
  state.actors.clear();
  state.ended = [];
  state.boot = null;
  state.lastSeq = 0;
  state.received = 0;
  state.selected = null;
  state.follow = true;
  ui.log.replaceChildren();
}

function showReplayState(status) {
  ui.replayBar.dataset.state = status;
  ui.replayPlay.textContent = status === 'playing' ? 'pause' : 'play';
  ui.replayPosition.dataset.index = String(replay.index);
  ui.replayPosition.dataset.total = String(replay.messages.length);
  ui.replayPosition.textContent = `event ${replay.index} of ${replay.messages.length}`;
  const what = { playing: 'replaying', paused: 'replay paused', done: 'replay finished' }[status];
  setConnection('replay', `${what}: ${replay.name}`);
}

function delayBefore(index) {
  const message = replay.messages[index];
  if (!message || message.type !== '@xstate.snapshot') return 0;
  const previous = replay.messages[index - 1];
  const gap = previous ? Number(message.createdAt) - Number(previous.createdAt) : 0;
  return Math.min(MAX_STEP_MS, Math.max(STEP_MS, Number.isFinite(gap) ? gap : 0)) / replay.speed;
}

function applyNext() {
  const message = replay.messages[replay.index];
  if (!message) return false;
  replay.index++;
  try {
    onMessage(message);
  } catch (err) {
    console.warn('recorded message not understood', err);
  }
  scheduleRender();
  return true;
}

function tick() {
  replay.timer = null;
  if (!replay.playing) return;
  applyNext();
  if (replay.index >= replay.messages.length) {
    replay.playing = false;
    showReplayState('done');
    return;
  }
  showReplayState('playing');
  replay.timer = setTimeout(tick, delayBefore(replay.index));
}

function play() {
  if (replay.index >= replay.messages.length) restartReplay();
  replay.playing = true;
  clearTimeout(replay.timer);
  replay.timer = setTimeout(tick, delayBefore(replay.index));
  showReplayState('playing');
}

function pause() {
  replay.playing = false;
  clearTimeout(replay.timer);
  showReplayState(replay.index >= replay.messages.length ? 'done' : 'paused');
}

// one step: everything up to and including the next snapshot
function step() {
  pause();
  while (applyNext()) {
    if (replay.messages[replay.index - 1].type === '@xstate.snapshot') break;
  }
  showReplayState(replay.index >= replay.messages.length ? 'done' : 'paused');
}

function restartReplay() {
  resetView();
  replay.index = 0;
  scheduleRender();
}

async function startReplay(name, text) {
  stopLive();
  // stop an earlier replay without showing its state: until this one is loaded the bar says so
  replay.playing = false;
  clearTimeout(replay.timer);
  ui.replayBar.hidden = false;
  replay.name = name;
  ui.replayName.textContent = name;
  ui.replayBar.dataset.state = 'loading';
  setConnection('replay', `loading the replay: ${name}`);
  try {
    replay.messages = parseRecording(text);
    if (!Object.keys(state.machines).length) await loadMachines();
  } catch (err) {
    replay.messages = [];
    ui.replayBar.dataset.state = 'failed';
    setConnection('closed', `cannot replay ${name}: ${err.message}`);
    return;
  }
  restartReplay();
  play();
}

ui.replayFile.addEventListener('change', async () => {
  const file = ui.replayFile.files && ui.replayFile.files[0];
  if (file) await startReplay(file.name, await file.text());
});
ui.replayPlay.addEventListener('click', () => (replay.playing ? pause() : play()));
ui.replayStep.addEventListener('click', step);
// back to the start, playing on only if it was playing
ui.replayRestart.addEventListener('click', () => {
  const playing = replay.playing;
  pause();
  restartReplay();
  if (playing) play();
  else showReplayState('paused');
});
ui.replaySpeed.addEventListener('change', () => {
  replay.speed = Number(ui.replaySpeed.value) || 1;
  if (replay.playing) play();
});

async function replayFromUrl(url) {
  const name = url.split('/').pop() || url;
  try {
    const response = await fetch(url, { cache: 'no-store' });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    await startReplay(name, await response.text());
  } catch (err) {
    stopLive();
    setConnection('closed', `cannot replay ${name}: ${err.message}`);
  }
}

const params = new URLSearchParams(location.search);
if (params.has('speed')) {
  ui.replaySpeed.value = params.get('speed');
  replay.speed = Number(params.get('speed')) || 1;
}
if (params.get('replay')) replayFromUrl(params.get('replay'));
else connect();
scheduleRender();
