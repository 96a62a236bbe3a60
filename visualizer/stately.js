// Feeds the service's inspection stream to Stately's hosted inspector in a frame, when it can be
// reached. The stream already is in Stately's serialized format; this page only relays it the way
// Stately's inspector expects from a window: it announces itself with `@statelyai.connected`,
// after which events are posted to it. Events that arrive before that are kept and sent then.
import { askToken, sendToken, UNAUTHORIZED_CLOSE } from './token.js';

const INSPECTOR = 'https://stately.ai/inspect';
const INSPECTOR_ORIGIN = new URL(INSPECTOR).origin;
const MAX_BUFFER = 2000;

const frame = document.getElementById('inspector');
const status = document.getElementById('status');
let connected = false;
let forwarded = 0;
const buffer = [];

function show(kind, text) {
  status.className = `connection ${kind}`;
  status.dataset.status = kind;
  status.dataset.forwarded = String(forwarded);
  status.dataset.buffered = String(buffer.length);
  status.textContent = text;
}

function post(event) {
  frame.contentWindow.postMessage(event, INSPECTOR_ORIGIN);
  forwarded++;
}

window.addEventListener('message', (e) => {
  if (e.origin !== INSPECTOR_ORIGIN || !e.data || e.data.type !== '@statelyai.connected') return;
  connected = true;
  for (const event of buffer.splice(0)) post(event);
  show('open', `relaying to Stately's inspector (${forwarded} events)`);
});

let retryMs = 1000;
function connect() {
  const socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/inspect`);
  socket.addEventListener('open', () => {
    sendToken(socket);
    retryMs = 1000;
    show(connected ? 'open' : 'connecting', connected ? 'relaying' : 'waiting for Stately\'s inspector to load…');
  });
  socket.addEventListener('message', (e) => {
    let event;
    try {
      event = JSON.parse(e.data);
    } catch {
      return;
    }
    if (connected) {
      post(event);
      show('open', `relaying to Stately's inspector (${forwarded} events)`);
    } else {
      buffer.push(event);
      if (buffer.length > MAX_BUFFER) buffer.shift();
      show('connecting', `waiting for Stately's inspector to load… (${buffer.length} events kept)`);
    }
  });
  socket.addEventListener('close', (e) => {
    if (e.code === UNAUTHORIZED_CLOSE && askToken('sosync refused the API token.')) return connect();
    show('closed', `disconnected from sosync — retrying in ${Math.round(retryMs / 1000)} s`);
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 10000);
  });
}

frame.src = INSPECTOR;
connect();
