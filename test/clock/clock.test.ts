/**
 * The clock adapter against NTP stand-ins over real UDP. Offsets are checked within a wide margin:
 * this is about measuring the right thing, not about how precisely loopback can be measured.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { startNtpStandIn, writeNtpTimestamp, type NtpStandIn } from '../../sandbox/ntp/ntpStandIn.ts';
import {
  createClock,
  judgeDrift,
  parseServer,
  NtpServerAddressError,
  type DriftReport,
} from '../../src/adapters/clock/index.ts';
import { silentLogger } from '../../src/log.ts';

const MARGIN_MS = 1000;
/** short, so a silent server costs little; the test timeout is what bounds a hang */
const SHORT_TIMEOUT_MS = 300;
const BOUNDED = { timeout: 15_000 };

const logger = silentLogger();
const at = (standIn: NtpStandIn) => `127.0.0.1:${standIn.port}`;

function assertNear(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= MARGIN_MS, `${what}: ${actual} ms should be ${expected} ± ${MARGIN_MS} ms`);
}

/**
 * A UDP server that answers every request with a reply that a client must not trust; `spoil` changes
 * an otherwise correct server reply.
 */
async function startBadServer(spoil: (reply: Buffer) => void): Promise<{ port: number; close(): void }> {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (request, remote) => {
    const reply = Buffer.alloc(48);
    reply[0] = (4 << 3) | 4;
    reply[1] = 2;
    request.copy(reply, 24, 40, 48);
    writeNtpTimestamp(reply, 32, Date.now());
    writeNtpTimestamp(reply, 40, Date.now());
    spoil(reply);
    socket.send(reply, remote.port, remote.address);
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return { port: socket.address().port, close: () => socket.close() };
}

describe('clock: measureDrift', () => {
  let ntp: NtpStandIn;
  let fso: NtpStandIn;
  let silent: NtpStandIn;

  before(async () => {
    ntp = await startNtpStandIn();
    fso = await startNtpStandIn();
    silent = await startNtpStandIn();
    silent.setSilent(true);
  });
  after(async () => {
    await Promise.all([ntp.close(), fso.close(), silent.close()]);
  });

  for (const offsetMs of [0, 5000, -5000]) {
    it(`measures an NTP server that is ${offsetMs} ms off`, BOUNDED, async () => {
      ntp.setOffsetMs(offsetMs);
      const clock = createClock({ ntpServers: [at(ntp)], timeoutMs: SHORT_TIMEOUT_MS, logger });
      const before = Date.now();
      const report = await clock.measureDrift();
      ntp.setOffsetMs(0);

      assert.ok('offsetMs' in report.ntp, `expected an offset, got ${JSON.stringify(report.ntp)}`);
      assert.equal(report.ntp.server, at(ntp));
      assertNear(report.ntp.offsetMs, offsetMs, 'NTP offset');
      assert.equal(report.fso, undefined, 'no FSO host configured → no FSO measurement');
      assert.ok(report.measuredAt instanceof Date && report.measuredAt.getTime() >= before);
    });
  }

  it('measures FSO separately from the NTP servers', BOUNDED, async () => {
    ntp.setOffsetMs(0);
    fso.setOffsetMs(-5000);
    const clock = createClock({
      ntpServers: [at(ntp)],
      fsoHost: '127.0.0.1',
      fsoNtpPort: fso.port,
      timeoutMs: SHORT_TIMEOUT_MS,
      logger,
    });
    const report = await clock.measureDrift();
    fso.setOffsetMs(0);

    assert.ok('offsetMs' in report.ntp && report.fso !== undefined && 'offsetMs' in report.fso, JSON.stringify(report));
    assertNear(report.ntp.offsetMs, 0, 'NTP offset');
    assertNear(report.fso.offsetMs, -5000, 'FSO offset');
  });

  it('reports "no NTP server answered" naming every server tried, without throwing', BOUNDED, async () => {
    const clock = createClock({ ntpServers: [at(silent), `localhost:${silent.port}`], timeoutMs: SHORT_TIMEOUT_MS, logger });
    const report = await clock.measureDrift();
    assert.deepEqual(report.ntp, { error: `no NTP server answered (tried ${at(silent)}, localhost:${silent.port})` });
  });

  it('takes the first server that answers when an earlier one is silent', BOUNDED, async () => {
    ntp.setOffsetMs(5000);
    const clock = createClock({ ntpServers: [at(silent), at(ntp)], timeoutMs: SHORT_TIMEOUT_MS, logger });
    const report = await clock.measureDrift();
    ntp.setOffsetMs(0);
    assert.ok('offsetMs' in report.ntp, JSON.stringify(report.ntp));
    assert.equal(report.ntp.server, at(ntp));
    assertNear(report.ntp.offsetMs, 5000, 'NTP offset');
  });

  it('stops at the first server that answers', BOUNDED, async () => {
    fso.setOffsetMs(-5000);
    const clock = createClock({ ntpServers: [at(ntp), at(fso)], timeoutMs: SHORT_TIMEOUT_MS, logger });
    const report = await clock.measureDrift();
    fso.setOffsetMs(0);
    assert.ok('offsetMs' in report.ntp, JSON.stringify(report.ntp));
    assert.equal(report.ntp.server, at(ntp));
    assertNear(report.ntp.offsetMs, 0, 'NTP offset');
  });

  it('reports a silent FSO host as an FSO error while NTP still answers', BOUNDED, async () => {
    const clock = createClock({
      ntpServers: [at(ntp)],
      fsoHost: '127.0.0.1',
      fsoNtpPort: silent.port,
      timeoutMs: SHORT_TIMEOUT_MS,
      logger,
    });
    const report = await clock.measureDrift();
    assert.ok('offsetMs' in report.ntp, JSON.stringify(report.ntp));
    assert.ok(report.fso !== undefined && 'error' in report.fso, JSON.stringify(report.fso));
    assert.match(report.fso.error, new RegExp(`127\\.0\\.0\\.1:${silent.port}`));
  });

  it('gives clocks with different servers their own measurements', BOUNDED, async () => {
    const other = await startNtpStandIn();
    other.setOffsetMs(5000);
    try {
      const plain = createClock({ ntpServers: [at(ntp)], timeoutMs: SHORT_TIMEOUT_MS, logger });
      const shifted = createClock({ ntpServers: [at(other)], timeoutMs: SHORT_TIMEOUT_MS, logger });
      const first = await shifted.measureDrift();
      const second = await plain.measureDrift();
      assert.ok('offsetMs' in first.ntp && 'offsetMs' in second.ntp);
      assertNear(first.ntp.offsetMs, 5000, 'shifted clock');
      assertNear(second.ntp.offsetMs, 0, 'plain clock, asked right after');
    } finally {
      await other.close();
    }
  });

  for (const [what, spoil] of [
    ['says its clock is unsynchronised', (reply: Buffer) => { reply[0] |= 3 << 6; }],
    ['sends a kiss-o\'-death (stratum 0)', (reply: Buffer) => { reply[1] = 0; }],
    ['does not echo the request\'s transmit time', (reply: Buffer) => { writeNtpTimestamp(reply, 24, Date.UTC(2001, 0, 1)); }],
    ['answers in client mode', (reply: Buffer) => { reply[0] = (4 << 3) | 3; }],
  ] as const) {
    it(`does not trust a server that ${what}, and goes on to the next`, BOUNDED, async () => {
      const bad = await startBadServer(spoil);
      try {
        const clock = createClock({ ntpServers: [`127.0.0.1:${bad.port}`, at(ntp)], timeoutMs: SHORT_TIMEOUT_MS, logger });
        const report = await clock.measureDrift();
        assert.ok('offsetMs' in report.ntp, JSON.stringify(report.ntp));
        assert.equal(report.ntp.server, at(ntp));
      } finally {
        bad.close();
      }
    });
  }

  it('now() is the local clock', () => {
    const clock = createClock({ ntpServers: ['127.0.0.1'], logger });
    const before = Date.now();
    const now = clock.now();
    const after = Date.now();
    assert.ok(now instanceof Date);
    assert.ok(now.getTime() >= before && now.getTime() <= after);
  });
});

describe('clock: createClock input', () => {
  it('refuses an empty server list', () => {
    assert.throws(() => createClock({ ntpServers: [], logger }), /at least one NTP server/);
  });
  it('refuses a bad server entry, naming it', () => {
    assert.throws(() => createClock({ ntpServers: ['pool.ntp.org', 'time:abc'], logger }), /NTP server "time:abc"/);
  });
  it('refuses a port inside fsoHost', () => {
    assert.throws(() => createClock({ ntpServers: ['127.0.0.1'], fsoHost: 'odoo:8069', logger }), /host name only, without scheme or port/);
  });
  it('refuses a bad fsoNtpPort and timeout', () => {
    assert.throws(() => createClock({ ntpServers: ['127.0.0.1'], fsoHost: 'odoo', fsoNtpPort: 0, logger }), /FSO NTP port/);
    assert.throws(() => createClock({ ntpServers: ['127.0.0.1'], timeoutMs: -1, logger }), /timeout/);
    assert.throws(() => createClock({ ntpServers: ['127.0.0.1'], sampleCount: 0, logger }), /sample count/);
  });
});

describe('parseServer', () => {
  it('reads host and port', () => {
    assert.deepEqual(parseServer('ptbtime1.ptb.de:1123'), { host: 'ptbtime1.ptb.de', port: 1123 });
    assert.deepEqual(parseServer('127.0.0.1:65535'), { host: '127.0.0.1', port: 65535 });
  });
  it('uses port 123 when none is given, or the default passed', () => {
    assert.deepEqual(parseServer('at.pool.ntp.org'), { host: 'at.pool.ntp.org', port: 123 });
    assert.deepEqual(parseServer('odoo.example', 4123), { host: 'odoo.example', port: 4123 });
  });
  it('ignores surrounding blanks (as left by a comma-separated list)', () => {
    assert.deepEqual(parseServer('  bevtime1.metrologie.at:123 '), { host: 'bevtime1.metrologie.at', port: 123 });
  });
  for (const [input, problem] of [
    ['', /is empty/],
    ['   ', /is empty/],
    [':123', /host is missing/],
    ['host:', /port "" is not a number/],
    ['host:12a', /port "12a" is not a number/],
    ['host:-5', /not a number/],
    ['host:0', /outside 1–65535/],
    ['host:65536', /outside 1–65535/],
    ['host:1234567', /not a number/],
    ['my host:123', /is not a host name or address/],
    ['host/path', /is not a host name or address/],
    ['::1', /IPv6/],
    ['[::1]:123', /IPv6/],
  ] as const) {
    it(`refuses ${JSON.stringify(input)}`, () => {
      assert.throws(() => parseServer(input), (err: unknown) => {
        assert.ok(err instanceof NtpServerAddressError);
        assert.match(err.message, problem);
        assert.ok(err.message.includes(JSON.stringify(input).slice(1, -1)), `message names the input: ${err.message}`);
        return true;
      });
    });
  }
});

describe('judgeDrift', () => {
  const measuredAt = new Date('2025-01-01T00:00:00Z');
  const report = (ntp: DriftReport['ntp'], fso?: DriftReport['fso']): DriftReport => ({ ntp, fso, measuredAt });

  it('passes offsets within the tolerance, either sign, the tolerance itself included', () => {
    assert.deepEqual(judgeDrift(report({ server: 'a:123', offsetMs: 12 }), 30), { ok: true });
    assert.deepEqual(judgeDrift(report({ server: 'a:123', offsetMs: -30 }), 30), { ok: true });
    assert.deepEqual(judgeDrift(report({ server: 'a:123', offsetMs: 30 }, { offsetMs: -29.9 }), 30), { ok: true });
  });

  it('fails an NTP offset above the tolerance, naming the server and the offset', () => {
    const judgement = judgeDrift(report({ server: 'ptbtime1.ptb.de:123', offsetMs: 5000 }), 30);
    assert.equal(judgement.ok, false);
    assert.ok(!judgement.ok);
    assert.match(judgement.reason, /ptbtime1\.ptb\.de:123/);
    assert.match(judgement.reason, /\+5000 ms/);
  });

  it('judges absolute values: a clock ahead fails like a clock behind', () => {
    const judgement = judgeDrift(report({ server: 'a:123', offsetMs: -31 }), 30);
    assert.ok(!judgement.ok);
    assert.match(judgement.reason, /-31 ms/);
  });

  it('fails an FSO offset above the tolerance, naming FSO', () => {
    const judgement = judgeDrift(report({ server: 'a:123', offsetMs: 1 }, { offsetMs: -4999.6 }), 30);
    assert.ok(!judgement.ok);
    assert.match(judgement.reason, /FSO/);
    assert.match(judgement.reason, /-4999\.6 ms/);
    assert.doesNotMatch(judgement.reason, /a:123/);
  });

  it('fails when no NTP server answered, with that reason', () => {
    const judgement = judgeDrift(report({ error: 'no NTP server answered (tried a:123, b:123)' }, { offsetMs: 0 }), 30);
    assert.ok(!judgement.ok);
    assert.match(judgement.reason, /no NTP server answered \(tried a:123, b:123\)/);
  });

  it('fails when FSO could not be measured', () => {
    const judgement = judgeDrift(report({ server: 'a:123', offsetMs: 0 }, { error: 'FSO host odoo:123 did not answer NTP' }), 30);
    assert.ok(!judgement.ok);
    assert.match(judgement.reason, /FSO host odoo:123 did not answer/);
  });

  it('names every source that fails', () => {
    const judgement = judgeDrift(report({ server: 'a:123', offsetMs: 100 }, { offsetMs: -100 }), 30);
    assert.ok(!judgement.ok);
    assert.match(judgement.reason, /a:123.*\+100 ms.*FSO.*-100 ms/);
  });

  it('refuses a tolerance that is not a positive number', () => {
    for (const tolerance of [0, -5, Number.NaN, Infinity]) {
      assert.throws(() => judgeDrift(report({ server: 'a:123', offsetMs: 0 }), tolerance), /positive number/);
    }
  });
});
