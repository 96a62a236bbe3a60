/**
 * Test helpers for the FSO client: a wire tap (an HTTP relay that records the bytes between the
 * client and the stand-in) and a tiny sosync `/job/create` stand-in that records announcements.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TappedExchange {
  path: string;
  request: string;
  response: string;
  methodName: string;
}

export interface WireTap {
  url: string;
  exchanges: TappedExchange[];
  close(): Promise<void>;
}

/** Relays every request to `target` and keeps the raw bodies both ways. */
export async function startWireTap(target: string): Promise<WireTap> {
  const exchanges: TappedExchange[] = [];
  const targetUrl = new URL(target);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const request = Buffer.concat(chunks);
      const upstream = http.request({
        hostname: targetUrl.hostname, port: targetUrl.port, path: req.url, method: req.method,
        headers: { 'content-type': req.headers['content-type'] ?? 'text/xml', 'content-length': request.length },
      }, (up) => {
        const back: Buffer[] = [];
        up.on('data', (c: Buffer) => back.push(c));
        up.on('end', () => {
          const response = Buffer.concat(back);
          const requestText = request.toString('utf8');
          exchanges.push({
            path: req.url ?? '',
            request: requestText,
            response: response.toString('utf8'),
            methodName: /<methodName>([^<]*)<\/methodName>/.exec(requestText)?.[1] ?? '',
          });
          res.writeHead(up.statusCode ?? 502, { 'content-type': up.headers['content-type'] ?? 'text/xml', date: up.headers.date ?? new Date().toUTCString() });
          res.end(response);
        });
      });
      upstream.on('error', () => res.writeHead(502).end());
      upstream.end(request);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    exchanges,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

export interface ReceivedAnnouncement {
  contentType: string;
  params: Record<string, string>;
}

export interface AnnouncementSink {
  url: string;
  received: ReceivedAnnouncement[];
  /** answer the next n requests with HTTP 503 */
  failNext(n: number): void;
  close(): Promise<void>;
}

/** Plays sosync's `/job/create`: records form or JSON bodies. */
export async function startAnnouncementSink(): Promise<AnnouncementSink> {
  const received: ReceivedAnnouncement[] = [];
  let failing = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (failing > 0) {
        failing--;
        res.writeHead(503).end();
        return;
      }
      const body = Buffer.concat(chunks).toString('utf8');
      const contentType = req.headers['content-type'] ?? '';
      const params = contentType.includes('json')
        ? JSON.parse(body) as Record<string, string>
        : Object.fromEntries(new URLSearchParams(body));
      received.push({ contentType, params });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ job_id: received.length, error_code: 0, error_text: 'None', error_detail: {} }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/job/create`,
    received,
    failNext(n) { failing = n; },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
