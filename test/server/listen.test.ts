/**
 * `listen` honoured: the service binds exactly the configured addresses. Only loopback addresses
 * (127.0.0.0/8) are used, so no traffic leaves the machine.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { readConfig } from '../../src/config/index.ts';
import { silentLogger } from '../../src/log.ts';
import { startService, type RunningService } from '../../src/service.ts';
import { freePort } from '../support/ports.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sosync-listen-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

async function start(listen: string): Promise<RunningService> {
  // FS and FSO point at a closed port: nothing here needs them
  const unused = await freePort();
  const file = path.join(dir, `${listen.replace(/\W/g, '_')}.ini`);
  fs.writeFileSync(file, [
    '[sosync]', 'instance = listen_test', `listen = ${listen}`, `port = ${await freePort()}`,
    `studio_mssql_host = 127.0.0.1,${unused}`, `online_host = http://127.0.0.1:${unused}`, `ntp_servers = 127.0.0.1:${unused}`,
  ].join('\n'), { mode: 0o600 });
  const { config } = readConfig(['--conf', file]);
  return startService({ ...config, stateDir: null }, silentLogger());
}

/** One request on a fresh connection (no pooled socket from before a close). */
function answers(address: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: address, port, path: '/service/health', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') resolve(false);
      else reject(err);
    });
  });
}

function socketOpens(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://${address}:${port}/inspect`);
    ws.once('open', () => { ws.terminate(); resolve(true); });
    ws.once('error', () => resolve(false));
  });
}

describe('listen', () => {
  test('bound to 127.0.0.2: answers there, not on 127.0.0.1', async () => {
    const service = await start('127.0.0.2');
    try {
      assert.deepEqual(service.urls, [`http://127.0.0.2:${service.port}`]);
      assert.equal(await answers('127.0.0.2', service.port), true);
      assert.equal(await socketOpens('127.0.0.2', service.port), true, 'the inspection socket too');
      assert.equal(await answers('127.0.0.1', service.port), false);
      assert.equal(await socketOpens('127.0.0.1', service.port), false);
    } finally {
      await service.close();
    }
  });

  test('a list binds each address, on the same port', async () => {
    const service = await start('127.0.0.2, 127.0.0.3');
    try {
      assert.equal(await answers('127.0.0.2', service.port), true);
      assert.equal(await answers('127.0.0.3', service.port), true);
      assert.equal(await answers('127.0.0.1', service.port), false);
      assert.equal(await answers('127.0.0.4', service.port), false);
    } finally {
      await service.close();
    }
    assert.equal(await answers('127.0.0.2', service.port), false, 'closed with the service');
  });
});
