import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, describeConfig, parseCommandLine, parseLogLevel, readConfig } from '../../src/config/index.ts';
import { keyDefinitions } from '../../src/config/keys.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sosync-config-'));
function ini(name: string, body: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, body);
  return file;
}
const realSystems = 'studio_mssql_host = fs.example:1433\nonline_host = https://fso.example\n';

function configError(argv: string[]): ConfigError {
  try {
    readConfig(argv);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected ${argv.join(' ')} to be refused`);
}

describe('configuration', () => {
  test('defaults of SPEC §1 for a minimal real instance', () => {
    const file = ini('min.ini', `[sosync]\ninstance = demo\n${realSystems}`);
    const { config, warnings } = readConfig(['--conf', file]);
    assert.equal(warnings.length, 1, 'only the warning about the open API');
    assert.match(warnings[0], /no api_token is set and sosync listens on 0\.0\.0\.0/);
    assert.equal(config.apiToken, null);
    assert.equal(config.sandbox, false);
    assert.equal(config.port, 5050);
    assert.deepEqual(config.listen, ['0.0.0.0']);
    assert.equal(config.instance, 'demo');
    assert.equal(config.throttleMs, 0);
    assert.equal(config.maxTimeDriftMs, 30);
    assert.equal(config.db, null);
    assert.equal(config.logLevel, 'info');
    assert.equal(config.logFile, undefined);
    assert.equal(config.studio.database, 'mdb_demo');
    assert.equal(config.studio.host, 'fs.example');
    assert.equal(config.studio.port, 1433);
    assert.equal(config.online.database, 'demo');
    assert.deepEqual(config.ntpServers, ['at.pool.ntp.org', 'ptbtime1.ptb.de', 'bevtime1.metrologie.at', '0.europe.pool.ntp.org']);
    assert.match(config.stateDir!, /sosync[/\\]demo$/);
    assert.equal(config.keepFinishedDays, 90);
  });

  test('job_workers: 1 by default; more only on a PostgreSQL sync table, and never 0 or above 64', () => {
    const file = ini('workers.ini', `[sosync]\ninstance = demo\nlisten = 127.0.0.1\n${realSystems}`);
    assert.equal(readConfig(['--conf', file]).config.jobWorkers, 1);
    const onPglite = configError(['--conf', file, '--job_workers', '4']);
    assert.equal(onPglite.key, 'job_workers');
    assert.match(onPglite.message, /4 workers need a PostgreSQL sync table \(set db_host\)/);
    assert.equal(readConfig(['--conf', file, '--job_workers', '4', '--db_host', '127.0.0.1']).config.jobWorkers, 4);
    for (const bad of ['0', '65']) {
      const error = configError(['--conf', file, '--job_workers', bad, '--db_host', '127.0.0.1']);
      assert.equal(error.key, 'job_workers');
      assert.match(error.message, /is not between 1 and 64/);
    }
  });

  test('command line wins over INI, INI over default; both --key value and --key=value', () => {
    const file = ini('prec.ini', `[sosync]\ninstance = demo\nport = 6000\nthrottle_ms = 100\nlog_level = Warning\n${realSystems}`);
    const a = readConfig(['-c', file]).config;
    assert.equal(a.port, 6000);
    assert.equal(a.throttleMs, 100);
    assert.equal(a.logLevel, 'warn');
    const b = readConfig(['-c', file, '--port', '7000', '--throttle_ms=250']).config;
    assert.equal(b.port, 7000);
    assert.equal(b.throttleMs, 250);
    assert.equal(b.logLevel, 'warn', 'INI value kept where the command line is silent');
    const c = readConfig([`--conf=${file}`, '--log_level', 'debug']).config;
    assert.equal(c.logLevel, 'debug');
  });

  test('comments with # and ; are ignored', () => {
    const file = ini('comments.ini', `# a comment\n; another\n[sosync]\ninstance = demo ; trailing\n# port = 1\n${realSystems}`);
    const { config } = readConfig(['-c', file]);
    assert.equal(config.port, 5050);
    assert.equal(config.instance, 'demo');
  });

  test('max_time_drift_ms <= 0 means 30', () => {
    const file = ini('drift.ini', `[sosync]\ninstance = demo\n${realSystems}`);
    assert.equal(readConfig(['-c', file, '--max_time_drift_ms', '0']).config.maxTimeDriftMs, 30);
    assert.equal(readConfig(['-c', file, '--max_time_drift_ms', '-5']).config.maxTimeDriftMs, 30);
    assert.equal(readConfig(['-c', file, '--max_time_drift_ms', '250']).config.maxTimeDriftMs, 250);
  });

  test('.NET and pino level names', () => {
    const expected: Record<string, string> = {
      Trace: 'trace', Debug: 'debug', Information: 'info', Warning: 'warn', Error: 'error', Critical: 'fatal',
      trace: 'trace', debug: 'debug', info: 'info', warn: 'warn', error: 'error', fatal: 'fatal',
    };
    for (const [name, level] of Object.entries(expected)) assert.equal(parseLogLevel(name), level, name);
    assert.equal(parseLogLevel('Verbose'), undefined);
  });

  test('studio_mssql_host accepts host, host,port and host:port', () => {
    const file = ini('hosts.ini', `[sosync]\ninstance = demo\n${realSystems}`);
    const studioAt = (value: string) => readConfig(['-c', file, '--studio_mssql_host', value]).config.studio;
    assert.deepEqual([studioAt('sql.example').host, studioAt('sql.example').port], ['sql.example', 1433]);
    assert.deepEqual([studioAt('sql.example,1444').host, studioAt('sql.example,1444').port], ['sql.example', 1444]);
    assert.deepEqual([studioAt('sql.example:1445').host, studioAt('sql.example:1445').port], ['sql.example', 1445]);
    assert.equal(configError(['-c', file, '--studio_mssql_host', 'sql:abc']).key, 'studio_mssql_host');
  });

  test('db_* keys select PostgreSQL, defaulting name and user to the instance', () => {
    const file = ini('db.ini', `[sosync]\ninstance = demo\ndb_host = 127.0.0.1\ndb_user_pw = s3cret\n${realSystems}`);
    const { config } = readConfig(['-c', file]);
    assert.deepEqual(config.db, { host: '127.0.0.1', port: 5432, database: 'demo', user: 'demo', password: 's3cret', connectTimeoutMs: 10000, statementTimeoutMs: 30000 });
    const shown = JSON.stringify(describeConfig(config));
    assert.ok(!shown.includes('s3cret'), 'describeConfig hides the password');
  });

  test('no --conf means the sandbox', () => {
    const { config } = readConfig([]);
    assert.equal(config.sandbox, true);
    assert.equal(config.instance, 'sandbox');
    assert.equal(config.stateDir, null, 'sandbox keeps nothing on disk unless told');
    assert.equal(config.sandboxOptions.fsoPort, 8069);
    assert.equal(config.sandboxOptions.fsPort, 1433);
    const moved = readConfig(['--port', '5151', '--sandbox_fso_port', '18069', '--sandbox_data_dir', dir]).config;
    assert.equal(moved.port, 5151);
    assert.equal(moved.sandboxOptions.fsoPort, 18069);
    assert.equal(moved.stateDir, dir);
  });

  test('unknown keys are warned about, not fatal', () => {
    const file = ini('unknown.ini', `[sosync]\ninstance = demo\nlisten = 127.0.0.1\ncolour = blue\n${realSystems}`);
    const { warnings } = readConfig(['-c', file, '--shape', 'round']);
    assert.equal(warnings.length, 2);
    assert.match(warnings.join('\n'), /"colour"/);
    assert.match(warnings.join('\n'), /"shape"/);
  });

  describe('API token and file modes', () => {
    const token = 'tok-0123456789abcdef';
    const privateFile = (name: string, body: string, mode: number) => {
      const file = ini(name, body);
      fs.chmodSync(file, mode);
      return file;
    };

    test('api_token from the INI; redacted in describeConfig', () => {
      const file = privateFile('token.ini', `[sosync]\ninstance = demo\napi_token = ${token}\n${realSystems}`, 0o600);
      const { config, warnings } = readConfig(['-c', file]);
      assert.equal(config.apiToken, token);
      assert.deepEqual(warnings, [], 'a token closes the API: no warning about the open listen address');
      assert.ok(!JSON.stringify(describeConfig(config)).includes(token));
    });

    test('api_token_file: first line, only when private to its owner', () => {
      const tokenFile = privateFile('api.token', `${token}\n`, 0o600);
      const file = ini('tokenfile.ini', `[sosync]\ninstance = demo\napi_token_file = ${tokenFile}\n${realSystems}`);
      assert.equal(readConfig(['-c', file]).config.apiToken, token);
      for (const mode of [0o640, 0o604, 0o660]) {
        fs.chmodSync(tokenFile, mode);
        const err = configError(['-c', file]);
        assert.equal(err.key, 'api_token_file');
        assert.match(err.message, new RegExp(`accessible by group or others \\(mode 0${mode.toString(8)}\\); chmod 600`));
      }
      fs.chmodSync(tokenFile, 0o600);
      assert.equal(configError(['-c', file, '--api_token', token]).key, 'api_token_file', 'not both');
      assert.match(configError(['-c', file, '--api_token_file', path.join(dir, 'none.token')]).message, /cannot read .*ENOENT/);
      const empty = privateFile('empty.token', '\n', 0o600);
      assert.match(configError(['-c', file, '--api_token_file', empty]).message, /is empty/);
    });

    test('a short or spaced token is refused', () => {
      const file = ini('short.ini', `[sosync]\ninstance = demo\n${realSystems}`);
      assert.match(configError(['-c', file, '--api_token', 'short']).message, /api_token: is 5 characters long; use at least 16/);
      assert.match(configError(['-c', file, '--api_token', 'has a space in it, long']).message, /api_token: must not contain spaces/);
    });

    test('no warning with loopback addresses only, or in the sandbox', () => {
      const file = ini('loop.ini', `[sosync]\ninstance = demo\nlisten = 127.0.0.1, ::1, 127.0.0.2\n${realSystems}`);
      assert.deepEqual(readConfig(['-c', file]).warnings, []);
      assert.deepEqual(readConfig(['--listen', '0.0.0.0']).warnings, [], 'the sandbox has no real systems to protect');
      const exposed = readConfig(['-c', file, '--listen', '127.0.0.1,10.1.2.3']).warnings;
      assert.equal(exposed.length, 1);
      assert.match(exposed[0], /listens on 10\.1\.2\.3: anyone who reaches port 5050/);
    });

    test('an INI with passwords every user can read gets one warning', () => {
      const body = `[sosync]\ninstance = demo\nlisten = 127.0.0.1\nstudio_sosync_pw = geheim\nonline_sosync_pw = auch\n${realSystems}`;
      const open = privateFile('open.ini', body, 0o644);
      const { warnings } = readConfig(['-c', open]);
      assert.equal(warnings.length, 1);
      assert.match(warnings[0], /holds studio_sosync_pw, online_sosync_pw and every user of this machine can read it \(mode 0644\)/);
      assert.ok(!warnings[0].includes('geheim'));
      assert.deepEqual(readConfig(['-c', privateFile('closed.ini', body, 0o640)]).warnings, []);
      const noSecrets = privateFile('nosecret.ini', `[sosync]\ninstance = demo\nlisten = 127.0.0.1\n${realSystems}`, 0o644);
      assert.deepEqual(readConfig(['-c', noSecrets]).warnings, [], 'nothing to hide, nothing to warn about');
    });
  });

  describe('errors name the key and the problem', () => {
    const base = ini('base.ini', `[sosync]\ninstance = demo\n${realSystems}`);
    const cases: Array<[string, string[], string, RegExp]> = [
      ['non-numeric port', ['-c', base, '--port', 'http'], 'port', /not a port number/],
      ['port out of range', ['-c', base, '--port', '70000'], 'port', /between 1 and 65535/],
      ['unknown log level', ['-c', base, '--log_level', 'Loud'], 'log_level', /not one of/],
      ['unreadable file', ['-c', path.join(dir, 'missing.ini')], 'conf', /cannot read .*ENOENT/],
      ['non-numeric throttle', ['-c', base, '--throttle_ms', 'fast'], 'throttle_ms', /not a whole number/],
      ['negative throttle', ['-c', base, '--throttle_ms', '-1'], 'throttle_ms', /negative/],
      ['negative keep_finished_days', ['-c', base, '--keep_finished_days', '-5'], 'keep_finished_days', /negative \(0 keeps finished jobs forever\)/],
      ['bad boolean', ['-c', base, '--studio_mssql_encrypt', 'maybe'], 'studio_mssql_encrypt', /true or false/],
      ['bad online_host', ['-c', base, '--online_host', 'ftp://x y'], 'online_host', /host\[:port\]/],
      ['bad ntp server', ['-c', base, '--ntp_servers', 'a:b'], 'ntp_servers', /host:port/],
      ['missing value', ['-c', base, '--port'], 'port', /needs a value/],
      ['stray argument', ['-c', base, 'oops'], 'oops', /unexpected argument/],
    ];
    for (const [name, argv, key, problem] of cases) {
      test(name, () => {
        const err = configError(argv);
        assert.equal(err.key, key);
        assert.match(err.message, problem);
        assert.ok(!err.message.includes('\n'), 'one line');
      });
    }

    test('missing instance when a real database or system is configured', () => {
      const file = ini('noinstance.ini', `[sosync]\ndb_host = 127.0.0.1\n`);
      const err = configError(['-c', file]);
      assert.equal(err.key, 'instance');
      assert.match(err.message, /required when db_host is set/);
      const err2 = configError(['-c', ini('noinstance2.ini', `[sosync]\n${realSystems}`)]);
      assert.match(err2.message, /instance: is required when studio_mssql_host, online_host is set/);
    });

    test('missing FS host without sandbox', () => {
      const err = configError(['-c', ini('nofs.ini', '[sosync]\ninstance = demo\nonline_host = fso\n')]);
      assert.equal(err.key, 'studio_mssql_host');
    });

    test('a file without [sosync]', () => {
      const err = configError(['-c', ini('nosection.ini', 'port = 1\n')]);
      assert.match(err.message, /no \[sosync\] section/);
    });
  });

  test('command line parsing keeps --key=value with = in the value', () => {
    const cli = parseCommandLine(['--db_user_pw=a=b', '-c', 'x.ini']);
    assert.equal(cli.values.db_user_pw, 'a=b');
    assert.equal(cli.conf, 'x.ini');
  });

  test('sosync.example.ini and README.md document every key', () => {
    const example = fs.readFileSync(new URL('../../sosync.example.ini', import.meta.url), 'utf8');
    const readme = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    for (const { key } of keyDefinitions) {
      assert.match(example, new RegExp(`^[#;]?\\s*${key}\\s*=`, 'm'), `example INI lacks ${key}`);
      assert.ok(readme.includes(`\`${key}\``), `README lacks ${key}`);
    }
    // and the example itself is a valid configuration, once installed private (git keeps no 0600)
    const installed = ini('installed-example.ini', example);
    fs.chmodSync(installed, 0o600);
    const { warnings } = readConfig(['-c', installed]);
    assert.deepEqual(warnings, []);
  });
});
