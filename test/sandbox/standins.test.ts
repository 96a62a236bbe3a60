/**
 * `npm run standins` as its own process: it prints where the stand-ins listen and writes an INI,
 * and every write it acknowledged — over XML-RPC to FSO and over TDS to FS — is still there after
 * a SIGKILL of the process and a restart on the same data directory.
 */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sql from 'mssql';
import ini from 'ini';
import { createOnlineClient } from '../../src/adapters/online/index.ts';
import { silentLogger } from '../../src/log.ts';
import { freePort } from '../support/ports.ts';
import { until } from '../support/wait.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sosync-standins-'));
const logger = silentLogger();

interface StandIns {
  child: ChildProcess;
  output: () => string;
  exited: Promise<void>;
}

function startStandIns(ports: { fs: number; fso: number; ntp: number }): StandIns {
  const child = spawn(process.execPath, [
    '--import', 'tsx', path.join(root, 'sandbox/standins.ts'),
    '--sandbox_data_dir', dataDir, '--sandbox_persons', '5',
    '--sandbox_fs_port', String(ports.fs), '--sandbox_fso_port', String(ports.fso), '--sandbox_ntp_port', String(ports.ntp),
    '--port', '1', '--log_level', 'warn',
  ], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return { child, output: () => out, exited };
}

async function ready(s: StandIns): Promise<void> {
  await until(() => s.output().includes('standins ready') || s.child.exitCode !== null, 'stand-ins ready', 120_000);
  assert.match(s.output(), /standins ready/, s.output());
}

const running: StandIns[] = [];
after(async () => {
  for (const s of running) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('stand-ins in their own process', () => {
  test('print their endpoints and an INI; acknowledged writes survive SIGKILL', async () => {
    const ports = { fs: await freePort(), fso: await freePort(), ntp: await freePort() };
    const first = startStandIns(ports);
    running.push(first);
    await ready(first);
    assert.match(first.output(), new RegExp(`FS stand-in .*127\\.0\\.0\\.1,${ports.fs}`));
    assert.match(first.output(), new RegExp(`FSO stand-in .*http://127\\.0\\.0\\.1:${ports.fso}/`));

    const conf = ini.parse(fs.readFileSync(path.join(dataDir, 'sosync.ini'), 'utf8')).sosync as Record<string, string>;
    assert.equal(conf.studio_mssql_host, `127.0.0.1,${ports.fs}`);
    assert.equal(conf.online_host, `http://127.0.0.1:${ports.fso}`);
    assert.equal(conf.ntp_servers, `127.0.0.1:${ports.ntp}`);

    const online = createOnlineClient({
      host: conf.online_host, database: conf.instance, user: conf.online_sosync_user, password: conf.online_sosync_pw, timeoutMs: 10_000,
    }, logger);
    const fsConfig: sql.config = {
      server: '127.0.0.1', port: ports.fs, database: conf.studio_mssql_db, user: conf.studio_sosync_user, password: conf.studio_sosync_pw,
      options: { encrypt: false, trustServerCertificate: true },
    };

    // writes, each acknowledged, then the process is killed at once
    const partnerId = await online.create('res.partner', { firstname: 'Durable', lastname: 'Partnerin', sosync_fs_id: 990001 });
    const partners = await online.search('res.partner', [['sosync_fs_id', '>', 0]], { context: { active_test: false } });
    const someOther = partners.find((id) => id !== partnerId)!;
    await online.write('res.partner', someOther, { lastname: 'Umbenannt' });
    const pool = await new sql.ConnectionPool(fsConfig).connect();
    const inserted = await pool.request().query("INSERT INTO dbo.Person (Vorname, Name) VALUES (N'Durable', N'Person'); SELECT CAST(SCOPE_IDENTITY() AS int) AS PersonID");
    const personId = inserted.recordset[0].PersonID as number;
    const tx = new sql.Transaction(pool);
    await tx.begin();
    await new sql.Request(tx).input('id', sql.Int, personId).query("UPDATE dbo.Person SET Name = N'Committed' WHERE PersonID = @id");
    await tx.commit();
    first.child.kill('SIGKILL');
    await first.exited;
    await pool.close().catch(() => undefined);
    await online.close();

    const second = startStandIns(ports);
    running.push(second);
    await ready(second);
    assert.match(second.output(), /restored: \d+ FSO partners \(\d+ journalled changes replayed\)/);
    const again = createOnlineClient({
      host: conf.online_host, database: conf.instance, user: conf.online_sosync_user, password: conf.online_sosync_pw, timeoutMs: 10_000,
    }, logger);
    const [created] = await again.read('res.partner', partnerId, ['firstname', 'lastname', 'sosync_fs_id']);
    assert.equal(created.lastname, 'Partnerin');
    assert.equal(created.sosync_fs_id, 990001);
    const [renamed] = await again.read('res.partner', someOther, ['lastname']);
    assert.equal(renamed.lastname, 'Umbenannt');
    const pool2 = await new sql.ConnectionPool(fsConfig).connect();
    const row = await pool2.request().input('id', sql.Int, personId).query('SELECT Name FROM dbo.Person WHERE PersonID = @id');
    assert.equal(row.recordset[0]?.Name, 'Committed');
    await pool2.close();
    await again.close();
    second.child.kill('SIGTERM');
    await second.exited;
  });
});
