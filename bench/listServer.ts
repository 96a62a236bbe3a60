/**
 * A process of its own that serves a listing of sync_table on 127.0.0.1, so that the listing
 * benchmark (bench/listing.ts) can read its memory apart from the client's. Prints
 * `listening <port>` when ready; SIGTERM ends it.
 *   BENCH_LIST_MODE=sosync: sosync's HTTP app (createApp over the real store), /job/list.
 *   BENCH_LIST_MODE=cursor: the baseline — a bare node:http server streaming one
 *     `SELECT * FROM sync_table ORDER BY job_id DESC [LIMIT n]` through a server-side cursor
 *     (FETCH 500 at a time) as JSON, the least any streamed listing has to do.
 * BENCH_LIST_DB: the connection (JSON: host, port, user, database).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { openSyncTable } from '../src/adapters/syncTable/index.ts';
import { benchApp } from './benchService.ts';

const config = JSON.parse(process.env.BENCH_LIST_DB ?? '{}') as { host: string; port: number; user: string; database: string };
const BATCH = 500;

async function write(res: http.ServerResponse, chunk: string): Promise<void> {
  if (!res.write(chunk)) await new Promise<void>((resolve) => res.once('drain', resolve));
}

async function cursorServer(): Promise<http.Server> {
  const client = new pg.Client(config);
  await client.connect();
  return http.createServer((req, res) => {
    const limit = Number(new URL(req.url ?? '/', 'http://127.0.0.1').searchParams.get('limit') ?? 0);
    void (async () => {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      await client.query('BEGIN');
      await client.query(`DECLARE listing NO SCROLL CURSOR FOR SELECT * FROM sync_table ORDER BY job_id DESC${limit > 0 ? ` LIMIT ${Math.floor(limit)}` : ''}`);
      await write(res, '{"jobs":[');
      let count = 0;
      for (;;) {
        const { rows } = await client.query('FETCH 500 FROM listing');
        for (const row of rows) await write(res, `${count++ ? ',' : ''}\n${JSON.stringify(row)}`);
        if (rows.length < BATCH) break;
      }
      await client.query('COMMIT');
      res.end(`\n],"count":${count}}\n`);
    })().catch((err: Error) => res.destroy(err));
  });
}

const mode = process.env.BENCH_LIST_MODE;
let server: http.Server;
let close: () => Promise<void>;
if (mode === 'sosync') {
  const table = await openSyncTable({ kind: 'postgres', ...config });
  server = http.createServer(benchApp(table));
  close = () => table.db.close();
} else if (mode === 'cursor') {
  server = await cursorServer();
  close = async () => undefined;
} else {
  throw new Error(`BENCH_LIST_MODE must be sosync or cursor, not ${mode}`);
}
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
process.once('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => void close().finally(() => process.exit(0)));
});
