/**
 * The one place settings are read: the INI file named by --conf/-c, then every key overridable on
 * the command line (--key value or --key=value). The result is one typed, validated Config.
 * Problems are ConfigErrors naming the key; main prints them as one line and exits 2.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import ini from 'ini';
import type { Level } from 'pino';
import { parseServer } from '../adapters/clock/index.ts';
import { parseOnlineHost } from '../adapters/online/index.ts';
import { parseStudioHost, type StudioClientOptions } from '../adapters/studio/index.ts';
import { keyDefinitions, knownKeys, secretKeyNames, type KeyDefinition } from './keys.ts';

export class ConfigError extends Error {
  constructor(readonly key: string, readonly problem: string) {
    super(`${key}: ${problem}`);
    this.name = 'ConfigError';
  }
}

export interface Config {
  /** the INI file read, if any */
  confFile?: string;
  /** run the built-in stand-ins (no --conf, or sandbox = true) */
  sandbox: boolean;
  port: number;
  listen: string[];
  /** the bearer token every route but /service/health requires; null = open API */
  apiToken: string | null;
  instance: string;
  throttleMs: number;
  /** jobs run at once; more than one only on a PostgreSQL sync table */
  jobWorkers: number;
  maxTimeDriftMs: number;
  /** null → embedded PGlite under stateDir (or in memory when stateDir is null) */
  db: { host: string; port: number; database: string; user: string; password?: string; connectTimeoutMs: number; statementTimeoutMs: number } | null;
  /** null → keep nothing on disk (sandbox without a data directory) */
  stateDir: string | null;
  logFile?: string;
  logLevel: Level;
  /** exactly what the FS client takes */
  studio: StudioClientOptions;
  online: {
    /** as configured; the online adapter turns it into a URL */
    host: string;
    database: string;
    user: string;
    password: string;
    timeoutMs: number;
    ntpPort: number;
  };
  ntpServers: string[];
  ntpTimeoutMs: number;
  /** transient job failures: error_retry with backoff (machines/retry.ts) */
  retry: { baseMs: number; maxMs: number; maxAttempts: number };
  outageProbeIntervalMs: number;
  protocolBatchSize: number;
  /** finished root jobs older than this are removed; 0 = never */
  keepFinishedDays: number;
  /** live inspection (page and WebSocket); false → no inspect observer on the actors at all */
  inspect: boolean;
  sandboxOptions: {
    fsoPort: number;
    fsPort: number;
    ntpPort: number;
    persons: number;
    dataDir: string | null;
    /** delay per FS request / per FSO call the stand-ins add before answering */
    fsLatencyMs: number;
    fsoLatencyMs: number;
  };
}

export interface ReadResult {
  config: Config;
  /** non-fatal findings (unknown keys); main logs them */
  warnings: string[];
}

const levelNames: Record<string, Level> = {
  trace: 'trace', debug: 'debug', information: 'info', info: 'info', warning: 'warn', warn: 'warn',
  error: 'error', critical: 'fatal', fatal: 'fatal',
};

/** .NET level names (Trace … Critical) and pino's (trace … fatal), case-insensitive. */
export function parseLogLevel(value: string): Level | undefined {
  return levelNames[value.trim().toLowerCase()];
}

/**
 * A setting whose value an adapter's own parser reads (host and port forms): its error becomes a
 * ConfigError naming the key, so the one parser of each form also checks the configuration.
 */
function parsedBy<T>(key: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new ConfigError(key, (err as Error).message.replace(`${key}: `, ''));
  }
}

function parsePortValue(key: string, raw: string): number {
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(key, `"${raw}" is not a port number`);
  const n = Number(raw);
  if (n < 1 || n > 65535) throw new ConfigError(key, `${n} is not a port between 1 and 65535`);
  return n;
}

function parseInteger(key: string, raw: string): number {
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(key, `"${raw}" is not a whole number`);
  return Number(raw);
}

function parseBoolean(key: string, raw: string): boolean {
  const v = raw.trim().toLowerCase();
  if (['true', 'yes', '1', 'on'].includes(v)) return true;
  if (['false', 'no', '0', 'off'].includes(v)) return false;
  throw new ConfigError(key, `"${raw}" is not true or false`);
}

function parseList(raw: string): string[] {
  return raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

export interface CommandLine {
  conf?: string;
  values: Record<string, string>;
  help: boolean;
  version: boolean;
}

/** Splits argv into --conf and key overrides. Unknown keys are kept (warned about later). */
export function parseCommandLine(argv: readonly string[]): CommandLine {
  const values: Record<string, string> = {};
  let conf: string | undefined;
  let help = false;
  let version = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') { help = true; continue; }
    if (arg === '-V' || arg === '--version') { version = true; continue; }
    let key: string;
    let value: string | undefined;
    if (arg === '-c') {
      key = 'conf';
    } else if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      key = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      if (eq !== -1) value = arg.slice(eq + 1);
    } else {
      throw new ConfigError(arg, 'unexpected argument (options are --key value or --key=value)');
    }
    key = key.replace(/-/g, '_');
    if (key === '') throw new ConfigError(arg, 'empty option name');
    if (value === undefined) {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('-') && next.length > 1 && !/^-\d/.test(next))) {
        throw new ConfigError(key, 'needs a value');
      }
      value = next;
      i++;
    }
    if (key === 'conf') conf = value;
    else values[key] = value;
  }
  return { conf, values, help, version };
}

/** Mode bits as `chmod` shows them, for messages. */
function octal(mode: number): string {
  return (mode & 0o777).toString(8).padStart(4, '0');
}

const MIN_TOKEN_LENGTH = 16;
/** parallel job workers: each holds a claim session on the sync table's server */
export const MAX_JOB_WORKERS = 64;

function checkToken(key: string, token: string): string {
  if (/\s/.test(token)) throw new ConfigError(key, 'must not contain spaces or line breaks');
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new ConfigError(key, `is ${token.length} characters long; use at least ${MIN_TOKEN_LENGTH} (e.g. openssl rand -hex 32)`);
  }
  return token;
}

/**
 * The token file must be private to the service user: a token others can read protects nothing,
 * so this is an error rather than a warning. systemd's LoadCredential= gives such a file.
 */
function readTokenFile(file: string): string {
  let stat: fs.Stats;
  let text: string;
  try {
    stat = fs.statSync(file);
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError('api_token_file', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if ((stat.mode & 0o077) !== 0) {
    throw new ConfigError('api_token_file', `${file} is accessible by group or others (mode ${octal(stat.mode)}); chmod 600 it`);
  }
  const token = text.split(/\r?\n/)[0].trim();
  if (token === '') throw new ConfigError('api_token_file', `${file} is empty`);
  return checkToken('api_token_file', token);
}

/** 127.0.0.0/8, ::1 and localhost: only this machine reaches them. */
export function isLoopback(address: string): boolean {
  if (address === 'localhost' || address === '::1') return true;
  return net.isIPv4(address) && address.startsWith('127.');
}

function readIniFile(file: string): { values: Record<string, string>; mode: number } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError('conf', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let mode = 0;
  try {
    mode = fs.statSync(file).mode;
  } catch {
    // read above; a vanished file only loses this check
  }
  const parsed = ini.parse(text) as Record<string, unknown>;
  const section = parsed.sosync;
  if (section === undefined || typeof section !== 'object' || section === null) {
    throw new ConfigError('conf', `${file} has no [sosync] section`);
  }
  const values: Record<string, string> = {};
  for (const [k, v] of Object.entries(section as Record<string, unknown>)) {
    if (typeof v === 'object' && v !== null) continue;
    values[k] = v === true ? 'true' : String(v ?? '');
  }
  return { values, mode };
}

/** systemd's StateDirectory= (already per instance), else ~/.local/state/sosync/<instance>. */
function defaultStateDir(instance: string): string {
  const fromSystemd = process.env.STATE_DIRECTORY?.split(':')[0];
  if (fromSystemd) return fromSystemd;
  return path.join(os.homedir(), '.local', 'state', 'sosync', instance);
}

/** Reads argv (without node and script) into a validated Config. Throws ConfigError. */
export function readConfig(argv: readonly string[]): ReadResult {
  const cli = parseCommandLine(argv);
  const warnings: string[] = [];
  const iniFile = cli.conf !== undefined ? readIniFile(cli.conf) : null;
  const fromIni = iniFile?.values ?? {};
  const secretsInIni = secretKeyNames.filter((k) => (fromIni[k] ?? '').trim() !== '');
  if (iniFile && secretsInIni.length > 0 && (iniFile.mode & 0o004) !== 0) {
    warnings.push(`${cli.conf} holds ${secretsInIni.join(', ')} and every user of this machine can read it (mode ${octal(iniFile.mode)}); chmod 640 or 600 it`);
  }
  const raw: Record<string, string> = { ...fromIni, ...cli.values };
  for (const key of Object.keys(raw)) {
    if (!knownKeys.has(key)) {
      const where = key in cli.values ? 'command line' : cli.conf;
      warnings.push(`unknown configuration key "${key}" (${where}) ignored`);
      delete raw[key];
    }
  }

  const value = (def: KeyDefinition): string | undefined => {
    const v = raw[def.key];
    return v === undefined || v.trim() === '' ? def.default : v.trim();
  };
  const get = (key: string): string | undefined => {
    const def = keyDefinitions.find((d) => d.key === key);
    if (!def) throw new Error(`configuration key ${key} is not defined`);
    return value(def);
  };
  const integer = (key: string): number => parseInteger(key, get(key)!);
  const port = (key: string): number => parsePortValue(key, get(key)!);
  const bool = (key: string): boolean => parseBoolean(key, get(key)!);

  const sandbox = cli.conf === undefined || bool('sandbox');
  const level = parseLogLevel(get('log_level')!);
  if (!level) {
    throw new ConfigError('log_level', `"${get('log_level')}" is not one of Trace, Debug, Information, Warning, Error, Critical (or trace, debug, info, warn, error, fatal)`);
  }

  const dbHost = get('db_host');
  const studioHost = get('studio_mssql_host');
  const onlineHost = get('online_host');
  let instance = get('instance');
  if (instance === undefined) {
    const needs = [dbHost && 'db_host', studioHost && 'studio_mssql_host', onlineHost && 'online_host'].filter(Boolean);
    if (needs.length > 0) throw new ConfigError('instance', `is required when ${needs.join(', ')} is set`);
    if (!sandbox) throw new ConfigError('instance', 'is required');
    instance = 'sandbox';
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(instance)) {
    throw new ConfigError('instance', `"${instance}" may only contain letters, digits, "_", "-" and "."`);
  }

  if (!sandbox) {
    if (!studioHost) throw new ConfigError('studio_mssql_host', 'is required (or set sandbox = true)');
    if (!onlineHost) throw new ConfigError('online_host', 'is required (or set sandbox = true)');
  }
  const studioAddress: { host: string; port?: number } = studioHost ? parsedBy('studio_mssql_host', () => parseStudioHost(studioHost)) : { host: '127.0.0.1' };
  if (onlineHost) {
    const online = parsedBy('online_host', () => parseOnlineHost(onlineHost));
    // the drift check asks FSO's host over NTP, which speaks IPv4 only; a path prefix is not offered here
    if (online.hostname.includes(':') || online.basePath !== '') {
      throw new ConfigError('online_host', `"${onlineHost}" is not host[:port] with an optional http:// or https://`);
    }
  }

  const ntpServers = parseList(get('ntp_servers')!);
  if (ntpServers.length === 0) throw new ConfigError('ntp_servers', 'needs at least one server');
  for (const server of ntpServers) parsedBy('ntp_servers', () => parseServer(server));

  const maxDrift = integer('max_time_drift_ms');
  const throttleMs = integer('throttle_ms');
  if (throttleMs < 0) throw new ConfigError('throttle_ms', `${throttleMs} is negative`);
  const jobWorkers = integer('job_workers');
  if (jobWorkers < 1 || jobWorkers > MAX_JOB_WORKERS) throw new ConfigError('job_workers', `${jobWorkers} is not between 1 and ${MAX_JOB_WORKERS}`);
  if (jobWorkers > 1 && !dbHost) {
    throw new ConfigError('job_workers', `${jobWorkers} workers need a PostgreSQL sync table (set db_host); the embedded one has a single connection, so it runs 1`);
  }
  for (const key of ['studio_connect_timeout_ms', 'studio_request_timeout_ms', 'online_timeout_ms', 'ntp_timeout_ms', 'protocol_batch_size',
    'db_connect_timeout_ms', 'db_statement_timeout_ms', 'retry_base_ms', 'retry_max_ms', 'retry_max_attempts', 'outage_probe_interval_ms']) {
    if (integer(key) <= 0) throw new ConfigError(key, `${integer(key)} must be greater than 0`);
  }
  const keepFinishedDays = integer('keep_finished_days');
  if (keepFinishedDays < 0) throw new ConfigError('keep_finished_days', `${keepFinishedDays} is negative (0 keeps finished jobs forever)`);
  if (integer('retry_max_ms') < integer('retry_base_ms')) {
    throw new ConfigError('retry_max_ms', `${integer('retry_max_ms')} is less than retry_base_ms (${integer('retry_base_ms')})`);
  }
  const persons = integer('sandbox_persons');
  if (persons < 0) throw new ConfigError('sandbox_persons', `${persons} is negative`);
  const nonNegative = (key: string): number => {
    const n = integer(key);
    if (n < 0) throw new ConfigError(key, `${n} is negative`);
    return n;
  };

  const listen = parseList(get('listen')!);
  if (listen.length === 0) throw new ConfigError('listen', 'needs at least one address');

  const tokenText = get('api_token');
  const tokenFile = get('api_token_file');
  if (tokenText !== undefined && tokenFile !== undefined) {
    throw new ConfigError('api_token_file', 'cannot be used together with api_token; set one of them');
  }
  const apiToken = tokenFile !== undefined ? readTokenFile(tokenFile) : tokenText !== undefined ? checkToken('api_token', tokenText) : null;
  const exposed = listen.filter((a) => !isLoopback(a));
  if (!sandbox && apiToken === null && exposed.length > 0) {
    warnings.push(`no api_token is set and sosync listens on ${exposed.join(', ')}: anyone who reaches port ${port('port')} can read every job and start the workers; set api_token (or api_token_file) or listen = 127.0.0.1`);
  }

  const sandboxDataDir = get('sandbox_data_dir') ?? null;
  const stateDir = get('state_dir')
    ? path.resolve(get('state_dir')!)
    : sandbox
      ? (sandboxDataDir ? path.resolve(sandboxDataDir) : null)
      : defaultStateDir(instance);

  const config: Config = {
    confFile: cli.conf,
    sandbox,
    port: port('port'),
    listen,
    apiToken,
    instance,
    throttleMs,
    jobWorkers,
    maxTimeDriftMs: maxDrift <= 0 ? 30 : maxDrift,
    db: dbHost
      ? {
          host: dbHost,
          port: port('db_port'),
          database: get('db_name') ?? instance,
          user: get('db_user') ?? instance,
          password: get('db_user_pw'),
          connectTimeoutMs: integer('db_connect_timeout_ms'),
          statementTimeoutMs: integer('db_statement_timeout_ms'),
        }
      : null,
    stateDir,
    logFile: get('log_file'),
    logLevel: level,
    studio: {
      host: studioAddress.host,
      port: studioAddress.port,
      database: get('studio_mssql_db') ?? `mdb_${instance}`,
      user: get('studio_sosync_user') ?? '',
      password: get('studio_sosync_pw') ?? '',
      encrypt: bool('studio_mssql_encrypt'),
      trustServerCertificate: bool('studio_mssql_trust_server_certificate'),
      connectTimeoutMs: integer('studio_connect_timeout_ms'),
      requestTimeoutMs: integer('studio_request_timeout_ms'),
    },
    online: {
      host: onlineHost ?? '127.0.0.1',
      database: instance,
      user: get('online_sosync_user') ?? '',
      password: get('online_sosync_pw') ?? '',
      timeoutMs: integer('online_timeout_ms'),
      ntpPort: port('online_ntp_port'),
    },
    ntpServers,
    ntpTimeoutMs: integer('ntp_timeout_ms'),
    retry: { baseMs: integer('retry_base_ms'), maxMs: integer('retry_max_ms'), maxAttempts: integer('retry_max_attempts') },
    outageProbeIntervalMs: integer('outage_probe_interval_ms'),
    protocolBatchSize: integer('protocol_batch_size'),
    keepFinishedDays,
    inspect: bool('inspect'),
    sandboxOptions: {
      fsoPort: port('sandbox_fso_port'),
      fsPort: port('sandbox_fs_port'),
      ntpPort: port('sandbox_ntp_port'),
      persons,
      dataDir: sandboxDataDir ? path.resolve(sandboxDataDir) : null,
      fsLatencyMs: nonNegative('sandbox_fs_latency_ms'),
      fsoLatencyMs: nonNegative('sandbox_fso_latency_ms'),
    },
  };
  return { config, warnings };
}

/** The config with every secret replaced, for logging and /service/status. */
export function describeConfig(config: Config): Record<string, unknown> {
  return {
    ...config,
    apiToken: config.apiToken ? '***' : null,
    db: config.db ? { ...config.db, password: config.db.password ? '***' : undefined } : null,
    studio: { ...config.studio, password: config.studio.password ? '***' : '' },
    online: { ...config.online, password: config.online.password ? '***' : '' },
  };
}
