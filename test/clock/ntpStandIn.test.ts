/**
 * The NTP stand-in on the wire, read with a decoder written here from RFC 5905 so that the
 * stand-in's packets are checked independently of the client library the adapter uses.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log.ts';
import { startNtpStandIn, writeNtpTimestamp, type NtpStandIn } from '../../sandbox/ntp/ntpStandIn.ts';

const NTP_UNIX_EPOCH_DELTA_S = 2_208_988_800;

/** NTP seconds (era 0, i.e. 1900–2036) and fraction → Unix ms */
function readNtpTimestampEra0(buffer: Buffer, offset: number): number {
  const seconds = buffer.readUInt32BE(offset);
  const fraction = buffer.readUInt32BE(offset + 4);
  return (seconds - NTP_UNIX_EPOCH_DELTA_S) * 1000 + (fraction / 2 ** 32) * 1000;
}

function clientRequest(version = 4, transmitUnixMs = Date.now()): Buffer {
  const request = Buffer.alloc(48);
  request[0] = (0 << 6) | (version << 3) | 3;
  request[2] = 6; // poll 2^6 s
  writeNtpTimestamp(request, 40, transmitUnixMs);
  return request;
}

/** A client socket that collects every reply it gets. */
async function openClient(): Promise<{ socket: dgram.Socket; replies: Buffer[]; next(): Promise<Buffer> }> {
  const socket = dgram.createSocket('udp4');
  const replies: Buffer[] = [];
  const waiting: ((reply: Buffer) => void)[] = [];
  socket.on('message', (msg) => {
    const waiter = waiting.shift();
    if (waiter) waiter(msg);
    else replies.push(msg);
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return {
    socket,
    replies,
    next: () => {
      const queued = replies.shift();
      return queued ? Promise.resolve(queued) : new Promise((resolve) => waiting.push(resolve));
    },
  };
}

/** Collects log lines and lets a test wait for one. */
class LogLines extends Writable {
  readonly lines: string[] = [];
  private waiters: { text: string; resolve: () => void }[] = [];
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    const line = chunk.toString();
    this.lines.push(line);
    this.waiters = this.waiters.filter((w) => (line.includes(w.text) ? (w.resolve(), false) : true));
    done();
  }
  waitFor(text: string): Promise<void> {
    if (this.lines.some((line) => line.includes(text))) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ text, resolve }));
  }
}

describe('writeNtpTimestamp', () => {
  const encode = (unixMs: number) => {
    const buffer = Buffer.alloc(8);
    writeNtpTimestamp(buffer, 0, unixMs);
    return [buffer.readUInt32BE(0), buffer.readUInt32BE(4)];
  };

  it('puts the NTP epoch (1900-01-01) at zero', () => {
    assert.deepEqual(encode(Date.UTC(1900, 0, 1)), [0, 0]);
  });

  it('puts the Unix epoch at 2 208 988 800 s', () => {
    assert.deepEqual(encode(0), [NTP_UNIX_EPOCH_DELTA_S, 0]);
  });

  it('writes the fraction of a second in units of 2^-32 s', () => {
    assert.deepEqual(encode(500), [NTP_UNIX_EPOCH_DELTA_S, 2 ** 31]);
    assert.deepEqual(encode(250.0), [NTP_UNIX_EPOCH_DELTA_S, 2 ** 30]);
  });

  it('keeps the fraction positive for times just before a whole second', () => {
    assert.deepEqual(encode(-500), [NTP_UNIX_EPOCH_DELTA_S - 1, 2 ** 31]);
  });

  it('wraps into era 1 at 2036-02-07T06:28:16Z', () => {
    const eraBoundary = Date.UTC(2036, 1, 7, 6, 28, 16);
    assert.deepEqual(encode(eraBoundary - 1000), [0xffff_ffff, 0]);
    assert.deepEqual(encode(eraBoundary), [0, 0]);
    assert.deepEqual(encode(eraBoundary + 1500), [1, 2 ** 31]);
  });
});

describe('NTP stand-in', () => {
  let standIn: NtpStandIn;
  let client: Awaited<ReturnType<typeof openClient>>;
  const standInLog = new LogLines();

  before(async () => {
    standIn = await startNtpStandIn({ logger: createLogger({ level: 'debug', stdout: false, stream: standInLog }) });
    client = await openClient();
  });
  after(async () => {
    client.socket.close();
    await standIn.close();
  });

  const ask = async (request: Buffer): Promise<Buffer> => {
    client.socket.send(request, standIn.port, '127.0.0.1');
    return await client.next();
  };

  it('answers a client request with a stratum 2 server reply that echoes the origin', async () => {
    standIn.setOffsetMs(0);
    const request = clientRequest(4);
    const sentAt = Date.now();
    const reply = await ask(request);
    const receivedAt = Date.now();

    assert.equal(reply.length, 48);
    assert.equal(reply[0] >> 6, 0, 'leap indicator: synchronised');
    assert.equal((reply[0] >> 3) & 7, 4, 'version echoed');
    assert.equal(reply[0] & 7, 4, 'server mode');
    assert.equal(reply[1], 2, 'stratum');
    assert.equal(reply[2], 6, 'poll echoed');
    assert.ok(reply.readInt8(3) < 0, 'precision is a negative power of two');
    assert.deepEqual(reply.subarray(24, 32), request.subarray(40, 48), 'origin = client transmit, bit for bit');

    const receive = readNtpTimestampEra0(reply, 32);
    const transmit = readNtpTimestampEra0(reply, 40);
    const reference = readNtpTimestampEra0(reply, 16);
    assert.ok(receive >= sentAt - 1 && receive <= receivedAt + 1, `receive ${receive} within [${sentAt}, ${receivedAt}]`);
    assert.ok(transmit >= receive, 'transmit is not before receive');
    assert.ok(reference < receive, 'reference time lies in the past');
  });

  it('echoes an NTPv3 client its own version', async () => {
    const reply = await ask(clientRequest(3));
    assert.equal((reply[0] >> 3) & 7, 3);
    assert.equal(reply[0] & 7, 4);
  });

  for (const offsetMs of [5000, -5000]) {
    it(`shifts receive and transmit timestamps by ${offsetMs} ms`, async () => {
      standIn.setOffsetMs(offsetMs);
      const sentAt = Date.now();
      const reply = await ask(clientRequest());
      const receivedAt = Date.now();
      standIn.setOffsetMs(0);
      const receive = readNtpTimestampEra0(reply, 32) - offsetMs;
      const transmit = readNtpTimestampEra0(reply, 40) - offsetMs;
      assert.ok(receive >= sentAt - 1 && receive <= receivedAt + 1, `receive − offset ${receive} within [${sentAt}, ${receivedAt}]`);
      assert.ok(transmit >= sentAt - 1 && transmit <= receivedAt + 1, `transmit − offset ${transmit} within [${sentAt}, ${receivedAt}]`);
    });
  }

  it('ignores malformed datagrams and keeps answering real requests', async () => {
    const notRequests = [
      Buffer.alloc(0),
      Buffer.from('hello, time server'),
      Buffer.alloc(47, 0x23), // one byte short of an NTP header
      Buffer.alloc(48, 0xff), // mode 7 (private), version 7
      (() => { const b = clientRequest(); b[0] = (4 << 3) | 4; return b; })(), // a server reply, not a request
      (() => { const b = clientRequest(); b[0] = (0 << 3) | 3; return b; })(), // version 0
      (() => { const b = clientRequest(); b[0] = (5 << 3) | 3; return b; })(), // version 5
      Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 131 + 7) & 0xff)),
    ];
    for (const datagram of notRequests) client.socket.send(datagram, standIn.port, '127.0.0.1');

    // The stand-in handles datagrams in order, so the reply to this marker request is the first
    // reply after the garbage if, and only if, none of the garbage was answered.
    const marker = clientRequest(4, Date.UTC(2030, 0, 1));
    const reply = await ask(marker);
    assert.deepEqual(reply.subarray(24, 32), marker.subarray(40, 48), 'first reply answers the marker request');
    assert.equal(client.replies.length, 0);
    assert.equal(standInLog.lines.filter((line) => line.includes('ignored datagram')).length, notRequests.length);
  });

  it('accepts requests carrying extension fields beyond the 48-byte header', async () => {
    const request = Buffer.concat([clientRequest(), Buffer.alloc(20, 0xab)]);
    const reply = await ask(request);
    assert.deepEqual(reply.subarray(24, 32), request.subarray(40, 48));
  });

  it('answers nothing while silent, and answers again when no longer silent', async () => {
    const log = new LogLines();
    const quiet = await startNtpStandIn({ logger: createLogger({ level: 'debug', stdout: false, stream: log }) });
    quiet.setSilent(true);
    const unanswered = clientRequest(4, Date.UTC(2031, 0, 1));
    client.socket.send(unanswered, quiet.port, '127.0.0.1');
    // its log tells when the request has been dropped; only then may it speak again
    await log.waitFor('silent, request dropped');
    quiet.setSilent(false);
    const answered = clientRequest(4, Date.UTC(2032, 0, 1));
    client.socket.send(answered, quiet.port, '127.0.0.1');
    const reply = await client.next();
    await quiet.close();
    assert.deepEqual(reply.subarray(24, 32), answered.subarray(40, 48), 'the request sent while silent got no reply');
  });

  it('rejects an offset that is not a finite number', () => {
    assert.throws(() => standIn.setOffsetMs(Number.NaN), /finite number/);
    assert.throws(() => standIn.setOffsetMs(Infinity), /finite number/);
  });

  it('can be closed twice', async () => {
    const extra = await startNtpStandIn();
    await extra.close();
    await extra.close();
  });

  it('refuses an invalid port', async () => {
    await assert.rejects(startNtpStandIn({ port: 70000 }), /port must be an integer/);
  });
});
