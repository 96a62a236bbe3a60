/**
 * The HTTP app over a real sync table and the real worker system (in-memory flows), listening on a
 * free port, for API tests.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from '../../src/server/app.ts';
import { commitId } from '../../src/version.ts';
import { FlowRegistry } from '../../src/flows/registry.ts';
import { startHarness, type Harness, type StoreKind } from './engine.ts';
import type { WorkerSystemOptions } from '../../src/machines/system.ts';
import type { Logger } from '../../src/log.ts';

export interface ApiHarness extends Harness {
  base: string;
  get(path: string, headers?: Record<string, string>): Promise<{ status: number; type: string; text: string; json: any }>;
  post(path: string, body: string, type: string, headers?: Record<string, string>): Promise<{ status: number; type: string; text: string; json: any }>;
}

export async function startApi(kind: StoreKind): Promise<ApiHarness> {
  return startApiWith(kind, {});
}

export async function startApiWith(kind: StoreKind, options: Partial<WorkerSystemOptions> & { toleranceMs?: number; logger?: Logger }): Promise<ApiHarness> {
  const h = await startHarness(kind, options);
  const flows = new FlowRegistry([h.flow]);
  const app = createApp({ store: h.table.store, hasFlow: flows.hasFlow, flows, workers: h.workers.control, logger: h.logger, commitId });
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const answer = async (res: Response) => {
    const text = await res.text();
    let json: any;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: res.status, type: res.headers.get('content-type') ?? '', text, json };
  };
  return {
    ...h,
    base,
    get: async (path, headers = {}) => answer(await fetch(base + path, { headers })),
    post: async (path, body, type, headers = {}) => answer(await fetch(base + path, { method: 'POST', body, headers: { 'content-type': type, ...headers } })),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await h.close();
    },
  };
}
