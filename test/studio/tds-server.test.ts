/**
 * The FS stand-in's TDS server, driven by the real `mssql` driver (tedious underneath) and, for
 * what no well-behaved client sends, by raw sockets. The SQL side is a small in-memory engine
 * defined here, so these tests are about the wire only.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import sql from 'mssql';
import { createTdsServer, type TdsServer } from '../../sandbox/studio/tds/server.ts';
import {
  SqlServerError, type ColumnInfo, type SqlEngine, type SqlParameter, type SqlSession, type StatementResult,
} from '../../sandbox/studio/engine.ts';
import { createLogger } from '../../src/log.ts';
import { decodeCp1252, encodeCp1252, resolveColumns } from '../../sandbox/studio/tds/values.ts';
import { parseParamsDeclaration } from '../../sandbox/studio/tds/requests.ts';
import { isSessionHousekeeping } from '../../sandbox/studio/tds/connection.ts';

// ------------------------------------------------------------------ in-memory engine

const typedColumns: ColumnInfo[] = [
  { name: 'id', type: 'int', nullable: false },
  { name: 'big', type: 'bigint' },
  { name: 'small', type: 'smallint' },
  { name: 'tiny', type: 'tinyint' },
  { name: 'flag', type: 'bit' },
  { name: 'name', type: 'nvarchar', length: 100 },
  { name: 'street', type: 'varchar', length: 100 },
  { name: 'memo', type: 'nvarchar' },
  { name: 'born', type: 'date' },
  { name: 'created', type: 'datetime' },
  { name: 'changed', type: 'datetime2' },
  { name: 'amount', type: 'decimal', precision: 18, scale: 4 },
];
const longMemo = 'Größe '.repeat(2000);
const typedRows: unknown[][] = [
  [1, 9007199254740993n, -32768, 255, true, 'Jürgen Größ äöüß ÄÖÜ', 'Straße äöü ß', longMemo,
    new Date('1980-05-17T00:00:00Z'), new Date('2024-03-01T10:20:30.790Z'), new Date('2024-03-01T10:20:30.456Z'), '12345.6789'],
  [2, null, null, null, false, null, null, null, null, null, null, null],
];

class Barrier {
  private waiting: Array<() => void> = [];
  constructor(private readonly size: number) {}
  async arrive(): Promise<void> {
    const arrived = new Promise<void>((resolve) => this.waiting.push(resolve));
    if (this.waiting.length >= this.size) for (const release of this.waiting.splice(0)) release();
    await arrived;
  }
}

class MemoryEngine implements SqlEngine {
  readonly committedLog: string[] = [];
  readonly events: string[] = [];
  readonly executed: Array<{ sql: string; parameters: SqlParameter[] }> = [];
  openSessions = 0;
  barrier = new Barrier(3);
  blocked: Blocker | undefined;

  authenticate(user: string, password: string, database: string): { ok: true } | { ok: false; reason: string } {
    if (database !== 'mdb_test') return { ok: false, reason: `unknown database ${database}` };
    return user === 'sosync' && password === 'geheim' ? { ok: true } : { ok: false, reason: 'wrong user or password' };
  }

  async openSession(database: string, user: string): Promise<SqlSession> {
    this.openSessions++;
    this.events.push(`open ${user}@${database}`);
    return new MemorySession(this);
  }

  /** Makes the next `block` statement wait until released; `started` resolves once it runs. */
  armBlock(): Blocker {
    let markStarted!: () => void;
    let release!: () => void;
    const started = new Promise<void>((resolve) => { markStarted = resolve; });
    const gate = new Promise<void>((resolve) => { release = resolve; });
    this.blocked = { started, markStarted, gate, release };
    return this.blocked;
  }
}

interface Blocker {
  started: Promise<void>;
  markStarted: () => void;
  gate: Promise<void>;
  release: () => void;
}

class MemorySession implements SqlSession {
  private pending: string[] | undefined;
  readonly xactAbort = false;
  constructor(private readonly engine: MemoryEngine) {}

  get inTransaction(): boolean {
    return this.pending !== undefined;
  }

  async execute(text: string, parameters: SqlParameter[]): Promise<StatementResult[]> {
    this.engine.executed.push({ sql: text, parameters });
    const results: StatementResult[] = [];
    for (const statement of text.split(/[;\n]/).map((s) => s.trim()).filter(Boolean)) {
      const result = await this.statement(statement, parameters);
      if (result) results.push(result);
    }
    return results;
  }

  private async statement(statement: string, parameters: SqlParameter[]): Promise<StatementResult | undefined> {
    const param = (name: string) => parameters.find((p) => p.name === name)?.value;
    if (/^set\s/i.test(statement)) return undefined;
    if (/^select 1$/i.test(statement)) return { columns: [{ name: '', type: 'int' }], rows: [[1]], rowCount: 1 };
    if (statement === 'select typed') return { columns: typedColumns, rows: typedRows, rowCount: null };
    if (statement === 'select echo') {
      return {
        columns: parameters.map((p) => ({ name: p.name, type: p.type })),
        rows: [parameters.map((p) => p.value)],
        rowCount: null,
      };
    }
    if (statement === 'select one') return { columns: [{ name: 'n', type: 'int' }], rows: [[1]], rowCount: null };
    if (statement === 'select two') return { columns: [{ name: 's', type: 'nvarchar', length: 10 }], rows: [['a'], ['b']], rowCount: null };
    if (statement === 'touch') return { rowCount: 3 };
    if (statement === 'insert log') {
      const value = String(param('value'));
      if (this.pending) this.pending.push(value);
      else this.engine.committedLog.push(value);
      return { rowCount: 1 };
    }
    if (statement === 'select log') {
      return { columns: [{ name: 'value', type: 'nvarchar', length: 50 }], rows: this.engine.committedLog.map((v) => [v]), rowCount: null };
    }
    if (statement === 'wait together') {
      await this.engine.barrier.arrive();
      return { columns: [{ name: 'ok', type: 'bit' }], rows: [[true]], rowCount: null };
    }
    if (statement === 'block') {
      const blocked = this.engine.blocked!;
      blocked.markStarted();
      await blocked.gate;
      return { columns: [{ name: 'late', type: 'int' }], rows: [[1]], rowCount: null };
    }
    if (statement === 'bad value') return { columns: [{ name: 'n', type: 'int' }], rows: [['not a number']], rowCount: null };
    if (statement === 'begin tran') return void (await this.beginTransaction());
    if (statement === 'commit tran') return void (await this.commitTransaction());
    if (statement === 'rollback tran') return void (await this.rollbackTransaction());
    if (statement === 'raise') throw new SqlServerError('Der Datensatz ist gesperrt (äöü).', 50001, 16, 3, 7);
    throw new SqlServerError(`Invalid object name '${statement}'.`, 208);
  }

  async beginTransaction(name?: string): Promise<void> {
    this.engine.events.push(`begin ${name ?? ''}`.trim());
    if (this.pending) throw new SqlServerError('nested transactions are not supported here', 50000);
    this.pending = [];
  }

  async commitTransaction(): Promise<void> {
    this.engine.events.push('commit');
    this.engine.committedLog.push(...(this.pending ?? []));
    this.pending = undefined;
  }

  async rollbackTransaction(): Promise<void> {
    this.engine.events.push('rollback');
    this.pending = undefined;
  }

  async close(): Promise<void> {
    this.pending = undefined;
    this.engine.openSessions--;
  }
}

// ------------------------------------------------------------------ helpers

function poolConfig(port: number, overrides: Partial<sql.config> = {}): sql.config {
  return {
    server: '127.0.0.1',
    port,
    user: 'sosync',
    password: 'geheim',
    database: 'mdb_test',
    options: { encrypt: false, trustServerCertificate: true },
    pool: { min: 0, max: 3 },
    connectionTimeout: 5000,
    requestTimeout: 10000,
    ...overrides,
  };
}

async function connect(port: number, overrides: Partial<sql.config> = {}): Promise<sql.ConnectionPool> {
  const pool = new sql.ConnectionPool(poolConfig(port, overrides));
  pool.on('error', () => undefined);
  return pool.connect();
}

// ------------------------------------------------------------------ tests

describe('TDS server with the mssql driver', () => {
  let engine: MemoryEngine;
  let server: TdsServer;
  let port: number;
  let pool: sql.ConnectionPool;

  const logLines: string[] = [];
  let onLogLine: ((line: string) => void) | undefined;
  const logStream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const line = chunk.toString();
      logLines.push(line);
      onLogLine?.(line);
      done();
    },
  });
  /** Resolves when the server logs a line containing `text` (from now on). */
  const logged = (text: string) => new Promise<void>((resolve) => {
    onLogLine = (line) => { if (line.includes(text)) resolve(); };
  });

  before(async () => {
    engine = new MemoryEngine();
    const logger = createLogger({ level: 'debug', stdout: false, stream: logStream });
    server = createTdsServer({ engine, serverName: 'fs-test', logger });
    port = await server.listen(0);
    pool = await connect(port);
  });

  after(async () => {
    await pool?.close();
    await server?.close();
  });

  test('login opens an engine session and tedious sends its SET batch', async () => {
    const result = await pool.request().query('select one');
    assert.deepEqual(result.recordset, [{ n: 1 }]);
    assert.ok(engine.events.includes('open sosync@mdb_test'));
    const setBatch = engine.executed.find((e) => e.sql.startsWith('set '));
    assert.ok(setBatch, 'the SET batch reached the engine');
    assert.match(setBatch.sql, /set ansi_nulls on/);
    assert.match(setBatch.sql, /set transaction isolation level read committed/);
    assert.match(setBatch.sql, /set xact_abort off/);
  });

  test('a wrong password is refused with error 18456 and the SQL Server message', async () => {
    const numbers: number[] = [];
    const bad = new sql.ConnectionPool({
      ...poolConfig(port, { password: 'falsch' }),
      beforeConnect: (connection) => {
        connection.on('errorMessage', (token: { number: number }) => numbers.push(token.number));
      },
    });
    bad.on('error', () => undefined);
    await assert.rejects(bad.connect(), (err: Error & { code?: string }) => {
      assert.equal(err.message, "Login failed for user 'sosync'.");
      assert.equal(err.code, 'ELOGIN');
      return true;
    });
    assert.deepEqual(numbers, [18456]);
    await bad.close().catch(() => undefined);
  });

  test('an unknown database is refused too', async () => {
    await assert.rejects(connect(port, { database: 'mdb_other' }), /Login failed for user 'sosync'\./);
  });

  test('a client that demands encryption gets a clear refusal', async () => {
    await assert.rejects(
      connect(port, { options: { encrypt: true, trustServerCertificate: true } }),
      /does not support encryption; connect with encrypt: false/,
    );
  });

  const expectTypedRows = (rows: Array<Record<string, unknown>>) => {
    assert.equal(rows.length, 2);
    const [full, empty] = rows;
    assert.deepEqual(full, {
      id: 1,
      big: '9007199254740993', // tedious hands bigint out as text
      small: -32768,
      tiny: 255,
      flag: true,
      name: 'Jürgen Größ äöüß ÄÖÜ',
      street: 'Straße äöü ß',
      memo: longMemo,
      born: new Date('1980-05-17T00:00:00Z'),
      created: new Date('2024-03-01T10:20:30.790Z'),
      changed: new Date('2024-03-01T10:20:30.456Z'),
      amount: 12345.6789,
    });
    assert.deepEqual(empty, {
      id: 2, big: null, small: null, tiny: null, flag: false, name: null, street: null, memo: null,
      born: null, created: null, changed: null, amount: null,
    });
  };

  test('a SQL batch returns every column type, NULLs and umlauts intact', async () => {
    const result = await pool.request().batch('select typed');
    expectTypedRows(result.recordset);
    const columns = result.recordset.columns;
    assert.equal(columns.name.type, sql.NVarChar);
    assert.equal(columns.name.length, 200); // mssql reports the wire length: bytes, two per character
    assert.equal(columns.street.type, sql.VarChar);
    assert.equal(columns.amount.precision, 18);
    assert.equal(columns.amount.scale, 4);
    assert.equal(columns.id.nullable, false);
  });

  test('the same rows come back through sp_executesql (request.query)', async () => {
    const result = await pool.request().query('select typed');
    expectTypedRows(result.recordset);
    assert.deepEqual(result.rowsAffected, [2]);
  });

  test('parameters of every type reach the engine typed and round-trip', async () => {
    const longText = 'Ärger über Öl '.repeat(8000); // > 100 KB: several packets each way
    const request = pool.request()
      .input('i', sql.Int, -123456)
      .input('big', sql.BigInt, '9007199254740993')
      .input('small', sql.SmallInt, 32000)
      .input('tiny', sql.TinyInt, 7)
      .input('flag', sql.Bit, true)
      .input('name', sql.NVarChar(50), 'Jürgen Größ')
      .input('street', sql.VarChar(50), 'Straße äöü ß €')
      .input('memo', sql.NVarChar(sql.MAX), longText)
      .input('note', sql.VarChar(sql.MAX), 'Fuß')
      .input('born', sql.Date, new Date('1980-05-17T00:00:00Z'))
      .input('created', sql.DateTime, new Date('2024-02-29T12:34:56.790Z'))
      .input('changed', sql.DateTime2(7), new Date('2024-02-29T23:59:59.999Z'))
      .input('amount', sql.Decimal(18, 4), 1234.5678)
      .input('ratio', 3.25)
      .input('nothing', sql.Int, null)
      .input('noText', sql.NVarChar(20), null)
      .input('noDate', sql.DateTime2, null);
    const result = await request.query('select echo');

    const received = engine.executed.at(-1)!;
    assert.equal(received.sql, 'select echo');
    const byName = Object.fromEntries(received.parameters.map((p) => [p.name, p]));
    assert.deepEqual(
      Object.fromEntries(received.parameters.map((p) => [p.name, p.type])),
      {
        i: 'int', big: 'bigint', small: 'smallint', tiny: 'tinyint', flag: 'bit', name: 'nvarchar', street: 'varchar',
        memo: 'nvarchar', note: 'varchar', born: 'date', created: 'datetime', changed: 'datetime2', amount: 'decimal',
        ratio: 'decimal', nothing: 'int', noText: 'nvarchar', noDate: 'datetime2',
      },
    );
    assert.equal(byName.i.value, -123456);
    assert.equal(byName.big.value, 9007199254740993n);
    assert.equal(byName.street.value, 'Straße äöü ß €');
    assert.equal(byName.memo.value, longText);
    assert.deepEqual(byName.born.value, new Date('1980-05-17T00:00:00Z'));
    assert.deepEqual(byName.created.value, new Date('2024-02-29T12:34:56.790Z'));
    assert.deepEqual(byName.changed.value, new Date('2024-02-29T23:59:59.999Z'));
    assert.equal(byName.amount.value, 1234.5678);
    assert.equal(byName.ratio.value, 3.25);
    assert.equal(byName.nothing.value, null);

    assert.deepEqual(result.recordset[0], {
      i: -123456, big: '9007199254740993', small: 32000, tiny: 7, flag: true, name: 'Jürgen Größ',
      street: 'Straße äöü ß €', memo: longText, note: 'Fuß', born: new Date('1980-05-17T00:00:00Z'),
      created: new Date('2024-02-29T12:34:56.790Z'), changed: new Date('2024-02-29T23:59:59.999Z'),
      amount: 1234.5678, ratio: 3.25, nothing: null, noText: null, noDate: null,
    });
  });

  test('several statements give several result sets and row counts', async () => {
    const result = await pool.request().query('select one; touch; select two');
    const sets = result.recordsets as sql.IRecordSet<Record<string, unknown>>[];
    assert.equal(sets.length, 2);
    assert.deepEqual(sets[0], [{ n: 1 }]);
    assert.deepEqual(sets[1], [{ s: 'a' }, { s: 'b' }]);
    assert.deepEqual(result.rowsAffected, [1, 3, 2]);

    const batch = await pool.request().batch('select one\nselect two');
    const batchSets = batch.recordsets as sql.IRecordSet<Record<string, unknown>>[];
    assert.equal(batchSets.length, 2);
    assert.deepEqual(batchSets[1], [{ s: 'a' }, { s: 'b' }]);
  });

  test('transactions begin, commit and roll back in the engine', async () => {
    engine.events.length = 0;
    const kept = new sql.Transaction(pool);
    await kept.begin();
    await new sql.Request(kept).input('value', sql.NVarChar(50), 'behalten').query('insert log');
    assert.deepEqual(engine.committedLog, [], 'not visible before commit');
    await kept.commit();

    const dropped = new sql.Transaction(pool);
    await dropped.begin();
    await new sql.Request(dropped).input('value', sql.NVarChar(50), 'verworfen').query('insert log');
    await dropped.rollback();

    const log = await pool.request().query('select log');
    assert.deepEqual(log.recordset, [{ value: 'behalten' }]);
    assert.deepEqual(engine.events.filter((e) => !e.startsWith('open')).map((e) => e.split(' ')[0]), ['begin', 'commit', 'begin', 'rollback']);
  });

  test('an engine error surfaces as a RequestError with number, state, class and line', async () => {
    await assert.rejects(pool.request().query('raise'), (err: sql.RequestError) => {
      assert.ok(err instanceof sql.RequestError);
      assert.equal(err.message, 'Der Datensatz ist gesperrt (äöü).');
      assert.equal(err.number, 50001);
      assert.equal(Number(err.state), 3);
      assert.equal(Number(err.class), 16);
      assert.equal(err.lineNumber, 7);
      assert.equal(err.serverName, 'fs-test');
      return true;
    });
    await assert.rejects(pool.request().batch('no such thing'), { message: "Invalid object name 'no such thing'.", number: 208 });
    // the connection is still good
    assert.deepEqual((await pool.request().query('select one')).recordset, [{ n: 1 }]);
  });

  test('a value that does not fit its column becomes an error, not a broken stream', async () => {
    await assert.rejects(pool.request().query('bad value'), /cannot send string "not a number" as an integer/);
    assert.deepEqual((await pool.request().query('select one')).recordset, [{ n: 1 }]);
  });

  test('an unsupported parameter type is answered with an error', async () => {
    await assert.rejects(
      pool.request().input('blob', sql.VarBinary(10), Buffer.from([1, 2])).query('select echo'),
      /data type 0xa5 is not supported/,
    );
    assert.deepEqual((await pool.request().query('select one')).recordset, [{ n: 1 }]);
  });

  test('several connections run statements at the same time', { timeout: 20000 }, async () => {
    engine.barrier = new Barrier(3);
    // Each statement waits until three are running at once; a server that served one connection
    // at a time would never get there.
    const results = await Promise.all([1, 2, 3].map(() => pool.request().query('wait together')));
    assert.deepEqual(results.map((r) => r.recordset[0].ok), [true, true, true]);
    assert.ok(server.connectionCount >= 3);
  });

  test('a cancelled request is acknowledged and the connection keeps working', { timeout: 20000 }, async () => {
    const single = await connect(port, { pool: { min: 0, max: 1 } });
    try {
      const blocked = engine.armBlock();
      const request = single.request();
      const running = request.query('block');
      await blocked.started;
      const attentionSeen = logged('tds: attention received');
      request.cancel();
      // release the statement only once the cancel reached the server, so the answer must carry the ack
      await attentionSeen;
      blocked.release();
      await assert.rejects(running, (err: Error & { code?: string }) => err.code === 'ECANCEL');
      assert.deepEqual((await single.request().query('select one')).recordset, [{ n: 1 }]);
    } finally {
      await single.close();
    }
  });

  test('failStatements answers every statement with the error, and lifts again', async () => {
    server.failStatements('FS is having a bad day');
    try {
      await assert.rejects(pool.request().query('select one'), (err: sql.RequestError) => {
        assert.ok(err instanceof sql.RequestError);
        assert.equal(err.message, 'FS is having a bad day');
        return true;
      });
      await assert.rejects(pool.request().batch('select one'), /FS is having a bad day/);
      // new connections still log in (their housekeeping is let through); their statements fail
      const fresh = await connect(port);
      await assert.rejects(fresh.request().query('select one'), /FS is having a bad day/);
      await fresh.close();
    } finally {
      server.failStatements(null);
    }
    assert.deepEqual((await pool.request().query('select one')).recordset, [{ n: 1 }]);
  });

  test('logins are logged without passwords', () => {
    const text = logLines.join('');
    assert.match(text, /tds: login/);
    assert.match(text, /tds: login refused/);
    assert.doesNotMatch(text, /geheim|falsch/);
  });

  test('refuseConnections drops connections until switched off', { timeout: 20000 }, async () => {
    const victim = await connect(port);
    // an idle pooled connection that the switch has to take down as well
    assert.deepEqual((await victim.request().query('select one')).recordset, [{ n: 1 }]);
    server.refuseConnections(true);
    try {
      await assert.rejects(connect(port));
      await assert.rejects(victim.request().query('select one'));
    } finally {
      server.refuseConnections(false);
      await victim.close().catch(() => undefined);
    }
    const again = await connect(port);
    assert.deepEqual((await again.request().query('select one')).recordset, [{ n: 1 }]);
    await again.close();
  });
});

// ------------------------------------------------------------------ raw sockets

/** A bare TDS client: enough framing to send chosen bytes and read whole answers. */
class RawClient {
  private buffered = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      this.wake();
    });
    socket.on('close', () => { this.closed = true; this.wake(); });
    socket.on('error', () => undefined);
  }

  static async open(port: number): Promise<RawClient> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
    return new RawClient(socket);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  send(type: number, payload: Buffer, status = 0x01): void {
    const header = Buffer.alloc(8);
    header[0] = type;
    header[1] = status;
    header.writeUInt16BE(payload.length + 8, 2);
    header[6] = 1;
    this.write(Buffer.concat([header, payload]));
  }

  /** Resolves with the next whole message, or null once the server closed the connection. */
  async readMessage(): Promise<Buffer | null> {
    const parts: Buffer[] = [];
    for (;;) {
      while (this.buffered.length >= 8 && this.buffered.length >= this.buffered.readUInt16BE(2)) {
        const length = this.buffered.readUInt16BE(2);
        const status = this.buffered[1];
        parts.push(this.buffered.subarray(8, length));
        this.buffered = this.buffered.subarray(length);
        if (status & 0x01) return Buffer.concat(parts);
      }
      if (this.closed) return null;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  async closedByServer(): Promise<boolean> {
    while (!this.closed) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return true;
  }

  end(): void {
    this.socket.destroy();
  }
}

/** Token kinds and error texts in a response (only the tokens the raw tests provoke). */
function scanTokens(payload: Buffer): { tokens: number[]; errors: string[]; doneStatus: number[]; envChanges: number[] } {
  const tokens: number[] = [];
  const errors: string[] = [];
  const doneStatus: number[] = [];
  const envChanges: number[] = [];
  let at = 0;
  while (at < payload.length) {
    const token = payload[at++];
    tokens.push(token);
    if (token === 0xfd || token === 0xfe || token === 0xff) {
      doneStatus.push(payload.readUInt16LE(at));
      at += 12;
    } else if (token === 0x79) {
      at += 4;
    } else if ([0xaa, 0xab, 0xad, 0xe3].includes(token)) {
      const length = payload.readUInt16LE(at);
      const body = payload.subarray(at + 2, at + 2 + length);
      if (token === 0xaa) errors.push(body.toString('utf16le', 8, 8 + body.readUInt16LE(6) * 2));
      if (token === 0xe3) envChanges.push(body[0]);
      at += 2 + length;
    } else {
      throw new Error(`unexpected token 0x${token.toString(16)}`);
    }
  }
  return { tokens, errors, doneStatus, envChanges };
}

const PRELOGIN = Buffer.from([
  0x00, 0x00, 0x0b, 0x00, 0x06, // VERSION at 11, 6 bytes
  0x01, 0x00, 0x11, 0x00, 0x01, // ENCRYPTION at 17, 1 byte
  0xff,
  0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, // version
  0x02, // ENCRYPT_NOT_SUP
]);

function login7(user: string, password: string, database: string): Buffer {
  const fields = ['rawhost', user, password, 'raw-test', '127.0.0.1', '', 'raw', '', database];
  const fixed = Buffer.alloc(94);
  const data: Buffer[] = [];
  let offset = 94;
  const slots = [36, 40, 44, 48, 52, 56, 60, 64, 68];
  fields.forEach((text, i) => {
    let bytes = Buffer.from(text, 'utf16le');
    if (i === 2) bytes = Buffer.from(bytes.map((b) => (((b << 4) & 0xf0) | (b >> 4)) ^ 0xa5));
    fixed.writeUInt16LE(offset, slots[i]);
    fixed.writeUInt16LE(i === 5 ? 0 : text.length, slots[i] + 2);
    data.push(bytes);
    offset += bytes.length;
  });
  fixed.writeUInt32LE(0x74000004, 4);
  fixed.writeUInt32LE(4096, 8);
  const all = Buffer.concat([fixed, ...data]);
  all.writeUInt32LE(all.length, 0);
  return all;
}

function allHeaders(descriptor: Buffer = Buffer.alloc(8)): Buffer {
  const b = Buffer.alloc(22);
  b.writeUInt32LE(22, 0);
  b.writeUInt32LE(18, 4);
  b.writeUInt16LE(2, 8);
  descriptor.copy(b, 10);
  b.writeUInt32LE(1, 18);
  return b;
}

function transactionRequest(type: number, extra: Buffer, descriptor?: Buffer): Buffer {
  const t = Buffer.alloc(2);
  t.writeUInt16LE(type);
  return Buffer.concat([allHeaders(descriptor), t, extra]);
}

describe('TDS server against raw sockets', () => {
  let engine: MemoryEngine;
  let server: TdsServer;
  let port: number;

  before(async () => {
    engine = new MemoryEngine();
    server = createTdsServer({ engine });
    port = await server.listen(0);
  });

  after(async () => {
    await server?.close();
  });

  async function stillServes(): Promise<void> {
    const pool = await connect(port);
    try {
      assert.deepEqual((await pool.request().query('select one')).recordset, [{ n: 1 }]);
    } finally {
      await pool.close();
    }
  }

  async function loggedIn(): Promise<RawClient> {
    const client = await RawClient.open(port);
    client.send(0x12, PRELOGIN);
    assert.ok(await client.readMessage());
    client.send(0x10, login7('sosync', 'geheim', 'mdb_test'));
    const answer = await client.readMessage();
    assert.ok(answer);
    assert.ok(scanTokens(answer).tokens.includes(0xad), 'LOGINACK');
    return client;
  }

  test('garbage bytes close the connection and the server keeps serving', async () => {
    const client = await RawClient.open(port);
    client.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    assert.equal(await client.closedByServer(), true);
    await stillServes();
  });

  test('a packet whose length is shorter than its header closes the connection', async () => {
    const client = await RawClient.open(port);
    client.write(Buffer.from([0x12, 0x01, 0x00, 0x04, 0, 0, 1, 0]));
    assert.equal(await client.closedByServer(), true);
    await stillServes();
  });

  test('a truncated packet followed by a hang-up leaves the server up', async () => {
    const client = await RawClient.open(port);
    const header = Buffer.from([0x12, 0x01, 0x00, 0x40, 0, 0, 1, 0]); // claims 64 bytes
    client.write(Buffer.concat([header, PRELOGIN.subarray(0, 10)]));
    client.end();
    await stillServes();
  });

  test('a PRELOGIN with options pointing outside the payload closes the connection', async () => {
    const client = await RawClient.open(port);
    client.send(0x12, Buffer.from([0x00, 0x7f, 0xff, 0x00, 0x06, 0xff]));
    assert.equal(await client.closedByServer(), true);
    await stillServes();
  });

  test('a truncated LOGIN7 closes the connection', async () => {
    const client = await RawClient.open(port);
    client.send(0x12, PRELOGIN);
    assert.ok(await client.readMessage());
    client.send(0x10, login7('sosync', 'geheim', 'mdb_test').subarray(0, 60));
    assert.equal(await client.closedByServer(), true);
    await stillServes();
  });

  test('a SQL batch before login closes the connection', async () => {
    const client = await RawClient.open(port);
    client.send(0x01, Buffer.concat([allHeaders(), Buffer.from('select one', 'utf16le')]));
    assert.equal(await client.closedByServer(), true);
  });

  test('a wrong password over a raw login gets ERROR 18456 and a closed socket', async () => {
    const client = await RawClient.open(port);
    client.send(0x12, PRELOGIN);
    assert.ok(await client.readMessage());
    client.send(0x10, login7('sosync', 'nope', 'mdb_test'));
    const answer = await client.readMessage();
    assert.ok(answer);
    const { errors, doneStatus } = scanTokens(answer);
    assert.deepEqual(errors, ["Login failed for user 'sosync'."]);
    assert.equal(doneStatus[0] & 0x02, 0x02);
    assert.equal(await client.closedByServer(), true);
  });

  test('malformed requests after login get ERROR tokens and the session lives on', async () => {
    const client = await loggedIn();
    try {
      // RPC whose parameter claims more bytes than were sent
      const rpc = Buffer.concat([
        allHeaders(), Buffer.from([0xff, 0xff, 0x0a, 0x00, 0x00, 0x00]),
        Buffer.from([0x00, 0x00, 0xe7, 0x40, 0x1f, 0, 0, 0, 0, 0, 0x00, 0x10]),
      ]);
      client.send(0x03, rpc);
      const rpcAnswer = scanTokens((await client.readMessage())!);
      assert.equal(rpcAnswer.errors.length, 1);
      assert.match(rpcAnswer.errors[0], /truncated payload/);

      // an RPC to some other procedure
      const name = Buffer.from('sp_who', 'utf16le');
      const other = Buffer.concat([allHeaders(), Buffer.from([6, 0]), name, Buffer.from([0, 0])]);
      client.send(0x03, other);
      assert.deepEqual(scanTokens((await client.readMessage())!).errors, ["Could not find stored procedure 'sp_who'."]);

      // a batch without ALL_HEADERS
      client.send(0x01, Buffer.from('x', 'utf16le'));
      assert.equal(scanTokens((await client.readMessage())!).errors.length, 1);

      // a bulk load request, which this server does not take
      client.send(0x07, Buffer.from([1, 2, 3]));
      assert.match(scanTokens((await client.readMessage())!).errors[0], /does not support request type 0x7/);

      // still alive: a proper batch answers normally
      client.send(0x01, Buffer.concat([allHeaders(), Buffer.from('touch', 'utf16le')]));
      const ok = scanTokens((await client.readMessage())!);
      assert.deepEqual(ok.errors, []);
      assert.deepEqual(ok.doneStatus, [0x10]);
    } finally {
      client.end();
    }
  });

  test('transaction manager: begin, commit with a new transaction, rollback, and misuse', async () => {
    const client = await loggedIn();
    engine.events.length = 0;
    try {
      const name = Buffer.from('t1', 'utf16le');
      client.send(0x0e, transactionRequest(5, Buffer.concat([Buffer.from([2, name.length]), name])));
      let answer = scanTokens((await client.readMessage())!);
      assert.deepEqual(answer.envChanges, [8]);

      // commit that begins the next transaction right away (fBeginXact = 1)
      client.send(0x0e, transactionRequest(7, Buffer.from([0, 1, 2, 0])));
      answer = scanTokens((await client.readMessage())!);
      assert.deepEqual(answer.envChanges, [9, 8]);

      client.send(0x0e, transactionRequest(8, Buffer.from([0, 0])));
      answer = scanTokens((await client.readMessage())!);
      assert.deepEqual(answer.envChanges, [10]);

      client.send(0x0e, transactionRequest(7, Buffer.from([0, 0])));
      answer = scanTokens((await client.readMessage())!);
      assert.deepEqual(answer.errors, ['The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION.']);

      client.send(0x0e, transactionRequest(9, Buffer.from([0])));
      answer = scanTokens((await client.readMessage())!);
      assert.match(answer.errors[0], /savepoints/);

      assert.deepEqual(engine.events, ['begin t1', 'commit', 'begin', 'rollback']);
    } finally {
      client.end();
    }
  });

  test('transactions begun and ended by SQL text are announced with ENVCHANGE', async () => {
    const client = await loggedIn();
    const batch = (text: string) => Buffer.concat([allHeaders(), Buffer.from(text, 'utf16le')]);
    try {
      client.send(0x01, batch('begin tran'));
      assert.deepEqual(scanTokens((await client.readMessage())!).envChanges, [8]);
      client.send(0x01, batch('commit tran'));
      assert.deepEqual(scanTokens((await client.readMessage())!).envChanges, [9]);
      client.send(0x01, batch('begin tran'));
      assert.deepEqual(scanTokens((await client.readMessage())!).envChanges, [8]);
      client.send(0x01, batch('rollback tran'));
      assert.deepEqual(scanTokens((await client.readMessage())!).envChanges, [10]);
    } finally {
      client.end();
    }
  });

  test('a request flagged RESETCONNECTION rolls back and is acknowledged', async () => {
    const client = await loggedIn();
    engine.events.length = 0;
    try {
      client.send(0x0e, transactionRequest(5, Buffer.from([2, 0])));
      assert.deepEqual(scanTokens((await client.readMessage())!).envChanges, [8]);
      // status EOM | RESETCONNECTION
      client.send(0x01, Buffer.concat([allHeaders(), Buffer.from('touch', 'utf16le')]), 0x09);
      const answer = scanTokens((await client.readMessage())!);
      assert.deepEqual(answer.envChanges, [18]);
      assert.deepEqual(answer.errors, []);
      assert.deepEqual(engine.events, ['begin', 'rollback']);
    } finally {
      client.end();
    }
  });

  test('a message split over several packets is reassembled', async () => {
    const client = await loggedIn();
    try {
      const payload = Buffer.concat([allHeaders(), Buffer.from('touch', 'utf16le')]);
      const packet = (part: Buffer, last: boolean) => {
        const header = Buffer.from([0x01, last ? 0x01 : 0x00, 0, 0, 0, 0, 1, 0]);
        header.writeUInt16BE(part.length + 8, 2);
        return Buffer.concat([header, part]);
      };
      // three packets, the middle one delivered a byte at a time
      const middle = packet(payload.subarray(10, 20), false);
      client.write(packet(payload.subarray(0, 10), false));
      for (const byte of middle) client.write(Buffer.from([byte]));
      client.write(packet(payload.subarray(20), true));
      const answer = scanTokens((await client.readMessage())!);
      assert.deepEqual(answer.errors, []);
      assert.deepEqual(answer.doneStatus, [0x10]);
      assert.equal(engine.executed.at(-1)!.sql, 'touch');
    } finally {
      client.end();
    }
  });

  test('an attention with nothing running is acknowledged', async () => {
    const client = await loggedIn();
    try {
      client.send(0x06, Buffer.alloc(0));
      const answer = scanTokens((await client.readMessage())!);
      assert.deepEqual(answer.doneStatus, [0x20]);
    } finally {
      client.end();
    }
  });

  test('closing the server ends every session in the engine', async () => {
    const a = await loggedIn();
    const b = await loggedIn();
    assert.ok(engine.openSessions >= 2);
    await server.close();
    assert.equal(engine.openSessions, 0);
    assert.equal(await a.closedByServer(), true);
    assert.equal(await b.closedByServer(), true);
    // a fresh server for after(), which closes it again
    server = createTdsServer({ engine });
    port = await server.listen(0);
  });
});

describe('TDS codec pieces', () => {
  test('code page 1252 round-trips German text and maps the rest to ?', () => {
    const text = 'Größe äöü ÄÖÜ ß € „Zitat“';
    assert.equal(decodeCp1252(encodeCp1252(text)), text);
    assert.deepEqual([...encodeCp1252('ä€')], [0xe4, 0x80]);
    assert.equal(decodeCp1252(encodeCp1252('日本')), '??');
  });

  test('sp_executesql declarations split at top-level commas', () => {
    assert.deepEqual(parseParamsDeclaration('@a int, @b decimal(18, 4) OUTPUT, @c nvarchar(max)'), [
      { name: 'a', declaration: 'int', output: false },
      { name: 'b', declaration: 'decimal(18, 4)', output: true },
      { name: 'c', declaration: 'nvarchar(max)', output: false },
    ]);
    assert.deepEqual(parseParamsDeclaration(''), []);
  });

  test('decimal columns without a scale take the scale their values need', () => {
    const [column] = resolveColumns([{ name: 'amount', type: 'decimal' }], [[0.1], [12.25], ['7.500'], [null]]);
    assert.equal(column.scale, 2);
    assert.equal(column.precision, 38);
  });

  test('only SET batches and the pool probe count as session housekeeping', () => {
    assert.equal(isSessionHousekeeping('set ansi_nulls on\nset xact_abort off'), true);
    assert.equal(isSessionHousekeeping('SELECT 1;'), true);
    assert.equal(isSessionHousekeeping('set nocount on; select * from dbo.Person'), false);
    assert.equal(isSessionHousekeeping('select 2'), false);
  });
});
