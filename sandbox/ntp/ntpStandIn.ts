/**
 * A local NTP server for the sandbox and the tests: answers SNTP/NTPv4 client requests (RFC 4330,
 * RFC 5905) with a server reply whose clock can be shifted on purpose, or stays silent, so the time
 * drift gate can be exercised without reaching a real time server.
 */
import dgram from 'node:dgram';
import type { Logger } from '../../src/log.ts';

export interface NtpStandInOptions {
  /** UDP port; 0 picks a free one */
  port?: number;
  host?: string;
  logger?: Logger;
}

export interface NtpStandIn {
  readonly port: number;
  readonly host: string;
  close(): Promise<void>;
  /** shift the clock this server reports, relative to the local clock */
  setOffsetMs(ms: number): void;
  /** when on, requests get no answer at all (a server that is down or filtered) */
  setSilent(on: boolean): void;
}

const PACKET_LENGTH = 48;
const MODE_CLIENT = 3;
const MODE_SERVER = 4;
const STRATUM = 2;
/** 2^-20 s ≈ 1 µs: what the reply claims as this clock's precision (a signed power of two) */
const PRECISION_LOG2 = -20;
/** seconds between the NTP epoch (1900-01-01) and the Unix epoch (1970-01-01) */
const NTP_UNIX_EPOCH_DELTA_S = 2_208_988_800n;
const TWO_POW_32 = 1n << 32n;

/**
 * Writes a Unix time in milliseconds as a 64-bit NTP timestamp at `offset`. The 32-bit seconds field
 * wraps every 136 years (era 1 begins 2036-02-07), so seconds are taken modulo 2^32; BigInt keeps the
 * fraction exact for negative shifts and across the wrap.
 */
export function writeNtpTimestamp(buffer: Buffer, offset: number, unixMs: number): void {
  const wholeMs = Math.floor(unixMs);
  const subMs = unixMs - wholeMs;
  const ms = BigInt(wholeMs) + NTP_UNIX_EPOCH_DELTA_S * 1000n;
  const seconds = ms / 1000n - (ms % 1000n < 0n ? 1n : 0n);
  const remainderMs = Number(ms - seconds * 1000n) + subMs;
  const fraction = BigInt(Math.floor((remainderMs / 1000) * 2 ** 32));
  const eraSeconds = ((seconds % TWO_POW_32) + TWO_POW_32) % TWO_POW_32;
  buffer.writeUInt32BE(Number(eraSeconds), offset);
  buffer.writeUInt32BE(Number(fraction < TWO_POW_32 ? fraction : TWO_POW_32 - 1n), offset + 4);
}

/** Validates a request and returns its version, or null when the datagram is not one to answer. */
function clientRequestVersion(datagram: Buffer): number | null {
  if (datagram.length < PACKET_LENGTH) return null;
  const mode = datagram[0] & 0b111;
  const version = (datagram[0] >> 3) & 0b111;
  if (mode !== MODE_CLIENT) return null;
  if (version < 1 || version > 4) return null;
  return version;
}

function buildServerReply(request: Buffer, version: number, receivedAtMs: number, transmitAtMs: number): Buffer {
  const reply = Buffer.alloc(PACKET_LENGTH);
  // leap indicator 0 (no warning, i.e. synchronised), the client's version, server mode
  reply[0] = (0 << 6) | (version << 3) | MODE_SERVER;
  reply[1] = STRATUM;
  reply[2] = request[2]; // poll: echo the client's interval
  reply.writeInt8(PRECISION_LOG2, 3);
  // root delay and dispersion of a well-synchronised upstream: 1/64 s each in 16.16 fixed point
  reply.writeUInt32BE(0x0000_0400, 4);
  reply.writeUInt32BE(0x0000_0400, 8);
  // reference id for stratum ≥ 2 is the upstream's IPv4 address; a loopback address marks it as local
  reply.writeUInt32BE(0x7f00_0001, 12);
  // the last time this server's clock was set: a while before now
  writeNtpTimestamp(reply, 16, receivedAtMs - 64_000);
  // origin = the client's transmit timestamp, copied bit for bit so the client can match the reply
  request.copy(reply, 24, 40, 48);
  writeNtpTimestamp(reply, 32, receivedAtMs);
  writeNtpTimestamp(reply, 40, transmitAtMs);
  return reply;
}

/** Sub-millisecond wall clock, so a reply does not lose precision to Date.now()'s whole milliseconds. */
function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

export async function startNtpStandIn(options: NtpStandInOptions = {}): Promise<NtpStandIn> {
  const host = options.host ?? '127.0.0.1';
  const requestedPort = options.port ?? 0;
  const logger = options.logger;
  if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65535) {
    throw new RangeError(`NTP stand-in: port must be an integer 0–65535, got ${String(requestedPort)}`);
  }

  let offsetMs = 0;
  let silent = false;
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');

  socket.on('message', (datagram, remote) => {
    const receivedAtMs = wallClockMs() + offsetMs;
    if (silent) {
      logger?.debug({ from: `${remote.address}:${remote.port}` }, 'NTP stand-in: silent, request dropped');
      return;
    }
    const version = clientRequestVersion(datagram);
    if (version === null) {
      logger?.debug({ from: `${remote.address}:${remote.port}`, bytes: datagram.length }, 'NTP stand-in: ignored datagram');
      return;
    }
    const reply = buildServerReply(datagram, version, receivedAtMs, wallClockMs() + offsetMs);
    socket.send(reply, remote.port, remote.address, (err) => {
      if (err) logger?.warn({ err, to: `${remote.address}:${remote.port}` }, 'NTP stand-in: reply not sent');
    });
  });
  // A send or receive error for one peer must not take the server down.
  socket.on('error', (err) => logger?.warn({ err }, 'NTP stand-in: socket error'));

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    socket.once('error', onError);
    socket.bind(requestedPort, host, () => {
      socket.off('error', onError);
      resolve();
    });
  });
  const port = socket.address().port;
  logger?.info({ host, port }, 'NTP stand-in listening');

  let closed: Promise<void> | undefined;
  return {
    port,
    host,
    close() {
      closed ??= new Promise<void>((resolve) => socket.close(() => resolve()));
      return closed;
    },
    setOffsetMs(ms: number) {
      if (typeof ms !== 'number' || !Number.isFinite(ms)) {
        throw new RangeError(`NTP stand-in: offset must be a finite number of milliseconds, got ${String(ms)}`);
      }
      offsetMs = ms;
    },
    setSilent(on: boolean) {
      silent = on;
    },
  };
}
