/**
 * The inspection page and its stream (SPEC §8): `GET /visualizer/` serves the bundled page,
 * `GET /inspect/machines` the shapes of the machines it draws, and a WebSocket on `/inspect`
 * sends each client the replay buffer and then every inspection message as it happens. The
 * stream is subscribed to only while a client is connected, so nothing is serialized for nobody.
 * With `inspect = false` none of this exists and the routes say that inspection is off.
 */
import fs from 'node:fs';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { WebSocketServer, WebSocket } from 'ws';
import type { Logger } from '../log.ts';
import type { TokenCheck } from './auth.ts';
import { send } from './negotiate.ts';
import { describeMachine, type Inspection, type MachineShape } from '../inspection/index.ts';
import { jobMachine } from '../machines/job.ts';
import { supervisorMachine } from '../machines/supervisor.ts';
import { protocolMachine } from '../machines/protocol.ts';

export const INSPECT_PATH = '/inspect';
export const VISUALIZER_PATH = '/visualizer';
/** the page's static files (and the redirect to them): no data, served without the token */
export const PAGE_PATHS = ['/', VISUALIZER_PATH] as const;

/** How long a client without an Authorization header has to send the token as its first message. */
const TOKEN_WAIT_MS = 5_000;
/** Close code telling the page that the token is missing or wrong (4000–4999: application codes). */
export const UNAUTHORIZED_CLOSE = 4401;
/** where visualizer/stately.html relays the stream to, when it is reachable */
const STATELY_INSPECTOR_ORIGIN = 'https://stately.ai';

/** A client this far behind is dropped; it reconnects and gets the replay instead of a backlog. */
const MAX_CLIENT_BACKLOG_BYTES = 8 * 1024 * 1024;

/** The page's folder: beside src/ in a checkout, beside dist/ in a build. */
function visualizerDir(): string {
  const candidates = ['../../visualizer/', '../../../visualizer/'].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));
  const found = candidates.find((dir) => fs.existsSync(`${dir}index.html`));
  if (!found) throw new Error(`the inspection page is missing: looked in ${candidates.join(' and ')}`);
  return found;
}

let shapes: Record<string, MachineShape> | null = null;
function machineShapes(): Record<string, MachineShape> {
  shapes ??= Object.fromEntries([jobMachine, supervisorMachine, protocolMachine].map((m) => [m.id, describeMachine(m)]));
  return shapes;
}

export function mountVisualizer(app: express.Express, inspection: Inspection): void {
  const dir = visualizerDir();
  const page = express.static(dir, { index: 'index.html', redirect: true, maxAge: 0 });

  app.get('/', (_req, res) => res.redirect(302, `${VISUALIZER_PATH}/`));
  app.use(VISUALIZER_PATH, (req, res, next) => {
    // the page loads nothing from elsewhere and talks only to this service; the Stately bridge
    // may also frame Stately's hosted inspector
    const frames = req.path === '/stately.html' ? `; frame-src ${STATELY_INSPECTOR_ORIGIN}` : '';
    res.set('Content-Security-Policy', `default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'${frames}`);
    res.set('X-Content-Type-Options', 'nosniff');
    next();
  }, page);
  app.get(`${INSPECT_PATH}/machines`, (_req, res) => {
    res.json({ machines: machineShapes() });
  });
  app.get(`${INSPECT_PATH}/actors`, (_req, res) => {
    res.json({ actors: inspection.liveActors() });
  });
}

/** With `inspect = false`: the page and the inspection routes answer 404 saying why; no WebSocket is attached. */
export function mountInspectionOff(app: express.Express): void {
  app.get('/', (_req, res) => res.redirect(302, `${VISUALIZER_PATH}/`));
  app.use([VISUALIZER_PATH, INSPECT_PATH], (req, res) => {
    send(req, res, 404, 'error', { error: 'inspection is off', detail: 'this service runs with inspect = false in its configuration: no live page, no inspection stream', path: req.originalUrl });
  });
}

/**
 * Browsers let any site open a WebSocket anywhere; only pages of this service may read the stream.
 * Clients that are not browsers send no Origin and are let in, like the rest of the HTTP API.
 */
function sameOrigin(req: http.IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (!origin) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

function refuseUpgrade(socket: Duplex, status: string): void {
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/**
 * The token as a client's first message: `{"token": "..."}`. Never in the URL, which ends up in
 * proxies' and browsers' logs.
 */
function tokenOfMessage(data: unknown): string | undefined {
  try {
    const parsed: unknown = JSON.parse(String(data));
    const token = parsed !== null && typeof parsed === 'object' ? (parsed as { token?: unknown }).token : undefined;
    return typeof token === 'string' ? token : undefined;
  } catch {
    return undefined;
  }
}

/**
 * With `tokens`, a client must present the API token: in an Authorization header on the upgrade,
 * or as its first message within TOKEN_WAIT_MS. Until then it receives nothing.
 */
export function attachInspectionSocket(server: http.Server, inspection: Inspection, logger: Logger, tokens: TokenCheck | null = null): void {
  // clients only send the token; big frames are refused
  const wss = new WebSocketServer({ noServer: true, maxPayload: 4096, perMessageDeflate: false });
  const log = logger.child({ component: 'inspection' });
  const admitted = new WeakSet<WebSocket>();

  const deliver = (ws: WebSocket, message: string) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    if (ws.bufferedAmount > MAX_CLIENT_BACKLOG_BYTES) {
      log.info('inspection client too slow; dropped (it reconnects and gets the replay)');
      ws.terminate();
      return;
    }
    ws.send(message);
  };

  // subscribed only while somebody watches: without a subscriber the stream serializes nothing
  let unsubscribe: (() => void) | null = null;
  const watch = () => {
    unsubscribe ??= inspection.subscribe((message) => {
      for (const ws of wss.clients) if (admitted.has(ws)) deliver(ws, message);
    });
  };
  const unwatch = () => {
    unsubscribe?.();
    unsubscribe = null;
  };

  const admit = (ws: WebSocket) => {
    admitted.add(ws);
    for (const message of inspection.replay()) deliver(ws, message);
    watch();
  };

  wss.on('connection', (ws, req) => {
    log.debug({ remote: req.socket.remoteAddress, clients: wss.clients.size }, 'inspection client connected');
    ws.on('error', (err) => log.debug({ err }, 'inspection client error'));
    ws.on('close', () => {
      if (wss.clients.size === 0) unwatch();
    });
    if (!tokens || req.headers.authorization !== undefined) {
      // a header was checked before the upgrade
      ws.on('message', () => {});
      admit(ws);
      return;
    }
    const timer = setTimeout(() => ws.close(UNAUTHORIZED_CLOSE, 'send {"token": "<api_token>"} first'), TOKEN_WAIT_MS);
    ws.on('close', () => clearTimeout(timer));
    ws.once('message', (data) => {
      clearTimeout(timer);
      ws.on('message', () => {});
      if (tokens.matches(tokenOfMessage(data))) {
        admit(ws);
      } else {
        log.info({ remote: req.socket.remoteAddress }, 'inspection client refused: wrong or missing token');
        ws.close(UNAUTHORIZED_CLOSE, 'wrong api_token');
      }
    });
  });

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    let pathname: string;
    try {
      pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    } catch {
      refuseUpgrade(socket, '400 Bad Request');
      return;
    }
    if (pathname !== INSPECT_PATH) {
      // another upgrade handler may own this path; when none does, answer rather than hang
      if (server.listenerCount('upgrade') === 1) refuseUpgrade(socket, '404 Not Found');
      return;
    }
    if (!sameOrigin(req)) {
      log.info({ origin: req.headers.origin }, 'inspection socket refused: page of another site');
      refuseUpgrade(socket, '403 Forbidden');
      return;
    }
    if (tokens && req.headers.authorization !== undefined && !tokens.matches(tokens.fromHeader(req.headers.authorization))) {
      log.info({ remote: req.socket.remoteAddress }, 'inspection socket refused: wrong token in the Authorization header');
      refuseUpgrade(socket, '401 Unauthorized');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  // http.Server.close waits for every socket, upgraded ones included: end the inspection clients
  // first, or the service could not shut down while a page is open
  const close = server.close.bind(server);
  server.close = ((callback?: (err?: Error) => void) => {
    unwatch();
    for (const ws of wss.clients) ws.terminate();
    wss.close();
    return close(callback);
  }) as typeof server.close;
}
