/**
 * The clock: sosync's one source of "now", and the measurement the time drift gate (SPEC §4.4) and
 * `/service/drift` rely on — the local clock's offset against the configured NTP servers (the first
 * that answers) and against FSO's host.
 *
 * The NTP exchange itself (request packet, UDP socket, reply timeout, packet parsing) is
 * ntp-time-sync's `getNetworkTime`. Its higher-level `getTime()` is not used, for two reasons:
 * its last result is cached in module-level variables shared by every instance (so two
 * configurations would see each other's offsets), and its offset formula takes absolute values of
 * the two one-way differences, which for a clock that is right reports about half the round trip as
 * offset — enough on a distant server to trip a 30 ms gate. Here each exchange is judged and measured
 * by RFC 5905: offset θ = ((T2 − T1) + (T3 − T4)) / 2, round trip δ = (T4 − T1) − (T3 − T2).
 */
import { systemNow } from './now.ts';
import { NtpTimeSync } from 'ntp-time-sync';
import type { Logger } from '../../log.ts';
import { formatHostPort, HostPortError, parseHostPort } from '../hostPort.ts';

export const DEFAULT_NTP_PORT = 123;
export const DEFAULT_TIMEOUT_MS = 3000;
export const DEFAULT_SAMPLE_COUNT = 4;

export interface NtpServerAddress {
  host: string;
  port: number;
}

export interface ClockOptions {
  /** NTP servers in order of preference, each `host` or `host:port` (IPv4 or a name) */
  ntpServers: readonly string[];
  /** FSO's host name or address; its NTP service is asked on `fsoNtpPort` */
  fsoHost?: string;
  fsoNtpPort?: number;
  /** how long one server may take to answer one request before it counts as not answering */
  timeoutMs?: number;
  /** exchanges with the answering server; the one with the shortest round trip is kept */
  sampleCount?: number;
  logger: Logger;
}

export type NtpDrift = { server: string; offsetMs: number } | { error: string };
export type FsoDrift = { offsetMs: number } | { error: string };

/** Offsets are remote clock minus local clock: positive means the local clock is behind. */
export interface DriftReport {
  ntp: NtpDrift;
  /** undefined when no FSO host is configured */
  fso: FsoDrift | undefined;
  measuredAt: Date;
}

export type DriftJudgement = { ok: true } | { ok: false; reason: string };

export interface Clock {
  /** the time sosync stamps its own records with */
  now(): Date;
  /** asks NTP and FSO's host now; never throws for a server that does not answer */
  measureDrift(): Promise<DriftReport>;
}

/** A bad `host[:port]` NTP server entry. */
export class NtpServerAddressError extends Error {
  constructor(readonly input: string, problem: string) {
    super(`NTP server "${input}" (host or host:port): ${problem}`);
    this.name = 'NtpServerAddressError';
  }
}

/** `host` or `host:port` → address; a missing port means `defaultPort`. The NTP client speaks UDP over IPv4 only. */
export function parseServer(input: string, defaultPort: number = DEFAULT_NTP_PORT): NtpServerAddress {
  try {
    const { host, port } = parseHostPort(input);
    return { host, port: port ?? defaultPort };
  } catch (err) {
    if (!(err instanceof HostPortError)) throw err;
    throw new NtpServerAddressError(String(input), err.message);
  }
}

function formatAddress(address: NtpServerAddress): string {
  return formatHostPort(address.host, address.port);
}

/**
 * Whether a drift report lets synchronisation go on. A source whose absolute offset exceeds
 * `toleranceMs` fails it, and so does a source that could not be measured: without a trusted clock
 * the two systems' timestamps cannot be compared.
 */
export function judgeDrift(report: DriftReport, toleranceMs: number): DriftJudgement {
  if (typeof toleranceMs !== 'number' || !Number.isFinite(toleranceMs) || toleranceMs <= 0) {
    throw new RangeError(`drift tolerance must be a positive number of milliseconds, got ${String(toleranceMs)}`);
  }
  const problems: string[] = [];
  if ('error' in report.ntp) {
    problems.push(`NTP: ${report.ntp.error}`);
  } else if (Math.abs(report.ntp.offsetMs) > toleranceMs) {
    problems.push(`NTP server ${report.ntp.server} is off by ${formatOffset(report.ntp.offsetMs)} (tolerance ${toleranceMs} ms)`);
  }
  if (report.fso !== undefined) {
    if ('error' in report.fso) {
      problems.push(`FSO: ${report.fso.error}`);
    } else if (Math.abs(report.fso.offsetMs) > toleranceMs) {
      problems.push(`FSO host is off by ${formatOffset(report.fso.offsetMs)} (tolerance ${toleranceMs} ms)`);
    }
  }
  return problems.length === 0 ? { ok: true } : { ok: false, reason: problems.join('; ') };
}

function formatOffset(offsetMs: number): string {
  const rounded = Math.round(offsetMs * 10) / 10;
  return `${rounded > 0 ? '+' : ''}${rounded} ms`;
}

interface NtpSample {
  offsetMs: number;
  roundTripMs: number;
}

type NtpReply = Awaited<ReturnType<NtpTimeSync['getNetworkTime']>>;

/** Slack for the client's own origin timestamp, which loses a fraction of a millisecond on the wire. */
const ORIGIN_SLACK_MS = 2;

/** Rejects replies no client should set its clock by (RFC 5905 §8 sanity checks that apply to SNTP). */
function checkReply(reply: NtpReply, askedAtMs: number): string | null {
  if (reply.mode !== 4) return `not a server reply (mode ${reply.mode})`;
  if (reply.version === undefined || reply.version < 1 || reply.version > 4) return `unsupported NTP version ${reply.version}`;
  if (reply.stratum === 0) return `refused the request (kiss-o'-death "${reply.referenceId}")`;
  if (reply.leapIndicator === 3 || reply.stratum === undefined || reply.stratum >= 16) return 'server clock is not synchronised';
  const origin = reply.originTimestamp?.getTime();
  const destination = reply.destinationTimestamp.getTime();
  // The origin echoes our own transmit time: anything else is not an answer to this request.
  if (origin === undefined || origin < askedAtMs - ORIGIN_SLACK_MS || origin > destination + ORIGIN_SLACK_MS) {
    return 'reply does not answer this request (origin timestamp mismatch)';
  }
  if (reply.receiveTimestamp === undefined || reply.transmitTimestamp === undefined) return 'reply lacks timestamps';
  return null;
}

function measureSample(reply: NtpReply): NtpSample {
  const t1 = reply.originTimestamp!.getTime();
  const t2 = reply.receiveTimestamp!.getTime();
  const t3 = reply.transmitTimestamp!.getTime();
  const t4 = reply.destinationTimestamp.getTime();
  return { offsetMs: (t2 - t1 + (t3 - t4)) / 2, roundTripMs: t4 - t1 - (t3 - t2) };
}

export function createClock(options: ClockOptions): Clock {
  const logger = options.logger;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const sampleCount = options.sampleCount ?? DEFAULT_SAMPLE_COUNT;
  const fsoNtpPort = options.fsoNtpPort ?? DEFAULT_NTP_PORT;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new RangeError(`NTP timeout must be a positive number of milliseconds, got ${String(timeoutMs)}`);
  }
  if (!Number.isInteger(sampleCount) || sampleCount < 1) {
    throw new RangeError(`NTP sample count must be a whole number ≥ 1, got ${String(sampleCount)}`);
  }
  if (!Array.isArray(options.ntpServers) || options.ntpServers.length === 0) {
    throw new NtpServerAddressError('', 'at least one NTP server is needed');
  }
  const ntpServers = options.ntpServers.map((server) => parseServer(server));
  if (!Number.isInteger(fsoNtpPort) || fsoNtpPort < 1 || fsoNtpPort > 65535) {
    throw new RangeError(`FSO NTP port must be 1–65535, got ${String(fsoNtpPort)}`);
  }
  if (typeof options.fsoHost === 'string' && options.fsoHost.includes(':')) {
    throw new NtpServerAddressError(options.fsoHost, "give FSO's host name only, without scheme or port (its NTP port is fsoNtpPort)");
  }
  const fsoServer = options.fsoHost === undefined ? undefined : parseServer(options.fsoHost, fsoNtpPort);

  // A private instance (never getInstance's shared singleton); only its wire exchange is used, which
  // reads nothing but replyTimeout from the options, so one instance serves every server.
  const ntpClient = new NtpTimeSync({ replyTimeout: timeoutMs });

  async function exchange(server: NtpServerAddress): Promise<NtpSample> {
    const askedAtMs = Date.now();
    const reply = await ntpClient.getNetworkTime(server.host, server.port);
    const problem = checkReply(reply, askedAtMs);
    if (problem !== null) throw new Error(problem);
    return measureSample(reply);
  }

  /**
   * Up to `sampleCount` exchanges; the first must succeed for the server to count as answering.
   * The sample with the shortest round trip is the least disturbed by queueing on the way.
   */
  async function measureServer(server: NtpServerAddress): Promise<NtpSample> {
    let best = await exchange(server);
    for (let i = 1; i < sampleCount; i++) {
      try {
        const sample = await exchange(server);
        if (sample.roundTripMs < best.roundTripMs) best = sample;
      } catch (err) {
        logger.debug({ server: formatAddress(server), err: (err as Error).message }, 'NTP sample lost');
        break;
      }
    }
    return best;
  }

  async function measureNtp(): Promise<NtpDrift> {
    for (const server of ntpServers) {
      const name = formatAddress(server);
      try {
        const sample = await measureServer(server);
        logger.debug({ server: name, offsetMs: sample.offsetMs, roundTripMs: sample.roundTripMs }, 'NTP offset measured');
        return { server: name, offsetMs: sample.offsetMs };
      } catch (err) {
        // detail only: the caller reports the outcome once (the drift gate's log line, /service/drift)
        logger.debug({ server: name, err: (err as Error).message }, 'NTP server gave no usable answer');
      }
    }
    const error = `no NTP server answered (tried ${ntpServers.map(formatAddress).join(', ')})`;
    logger.debug(error);
    return { error };
  }

  async function measureFso(server: NtpServerAddress): Promise<FsoDrift> {
    try {
      const sample = await measureServer(server);
      logger.debug({ server: formatAddress(server), offsetMs: sample.offsetMs }, 'FSO host offset measured');
      return { offsetMs: sample.offsetMs };
    } catch (err) {
      const error = `FSO host ${formatAddress(server)} did not answer NTP: ${(err as Error).message}`;
      logger.debug(error);
      return { error };
    }
  }

  return {
    now: systemNow,
    async measureDrift() {
      const [ntp, fso] = await Promise.all([
        measureNtp(),
        fsoServer === undefined ? Promise.resolve(undefined) : measureFso(fsoServer),
      ]);
      return { ntp, fso, measuredAt: systemNow() };
    },
  };
}
