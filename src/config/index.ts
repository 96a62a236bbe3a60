/**
 * The one place settings are read: the INI file named by --conf/-c, then every key overridable on
 * the command line (--key value or --key=value). The result is one typed, validated Config.
 * Problems are ConfigErrors naming the key; main prints them as one line and exits 2.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ini from 'ini';
import type { Level } from 'pino';
import type { StudioClientOptions } from '../adapters/studio/index.ts';
import { keyDefinitions, knownKeys, type KeyDefinition } from './keys.ts';

export class ConfigError extends Error {
  constructor(readonly key: string, readonly problem: string) {
    super(`${key}: ${problem}`);
    this.name = 'ConfigError';
  }
}

export interface HostAndPort {
  host: string;
  port?: number;
}

export interface Config {
  /** the INI file read, if any */
  confFile?: string;
  /** run the built-in stand-ins (no --conf, or sandbox = true) */
  sandbox: boolean;
  port: number;
  listen: string[];
  instance: string;
  throttleMs: number;
  maxTimeDriftMs: number;
  /** null → embedded PGlite under stateDir (or in memory when stateDir is null) */
  db: { host: string; port: number; database: string; user: string; password?: string } | null;
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
  protocolBatchSize: number;
  /** live inspection (page and WebSocket); false → no inspect observer on the actors at all */
  inspect: boolean;
  sandboxOptions: {
    fsoPort: number;
    fsPort: number;
    ntpPort: number;
    persons: number;
    dataDir: string | null;
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

/** `host`, `host,port` or `host:port` (SQL Server style and the usual one). */
export function parseHostAndPort(key: string, value: string): HostAndPort {
  const trimmed = value.trim();
  const match = /^(\[[^\]]+\]|[^,:]+)(?:[,:](\d+))?$/.exec(trimmed);
  if (!match) throw new ConfigError(key, `"${value}" is not host, host,port or host:port`);
  const host = match[1].replace(/^\[|\]$/g, '');
  if (match[2] === undefined) return { host };
  return { host, port: parsePortValue(key, match[2]) };
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

function readIniFile(file: string): Record<string, string> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError('conf', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
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
  return values;
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
  const fromIni = cli.conf !== undefined ? readIniFile(cli.conf) : {};
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
  const studioAddress = studioHost ? parseHostAndPort('studio_mssql_host', studioHost) : { host: '127.0.0.1' };
  if (onlineHost && !/^(https?:\/\/)?[^\s/:]+(:\d{1,5})?\/?$/i.test(onlineHost)) {
    throw new ConfigError('online_host', `"${onlineHost}" is not host[:port] with an optional http:// or https://`);
  }

  const ntpServers = parseList(get('ntp_servers')!);
  if (ntpServers.length === 0) throw new ConfigError('ntp_servers', 'needs at least one server');
  for (const server of ntpServers) parseHostAndPort('ntp_servers', server);

  const maxDrift = integer('max_time_drift_ms');
  const throttleMs = integer('throttle_ms');
  if (throttleMs < 0) throw new ConfigError('throttle_ms', `${throttleMs} is negative`);
  for (const key of ['studio_connect_timeout_ms', 'studio_request_timeout_ms', 'online_timeout_ms', 'ntp_timeout_ms', 'protocol_batch_size']) {
    if (integer(key) <= 0) throw new ConfigError(key, `${integer(key)} must be greater than 0`);
  }
  const persons = integer('sandbox_persons');
  if (persons < 0) throw new ConfigError('sandbox_persons', `${persons} is negative`);

  const listen = parseList(get('listen')!);
  if (listen.length === 0) throw new ConfigError('listen', 'needs at least one address');

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
    instance,
    throttleMs,
    maxTimeDriftMs: maxDrift <= 0 ? 30 : maxDrift,
    db: dbHost
      ? {
          host: dbHost,
          port: port('db_port'),
          database: get('db_name') ?? instance,
          user: get('db_user') ?? instance,
          password: get('db_user_pw'),
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
    protocolBatchSize: integer('protocol_batch_size'),
    inspect: bool('inspect'),
    sandboxOptions: {
      fsoPort: port('sandbox_fso_port'),
      fsPort: port('sandbox_fs_port'),
      ntpPort: port('sandbox_ntp_port'),
      persons,
      dataDir: sandboxDataDir ? path.resolve(sandboxDataDir) : null,
    },
  };
  return { config, warnings };
}

/** The config with every secret replaced, for logging and /service/status. */
export function describeConfig(config: Config): Record<string, unknown> {
  return {
    ...config,
    db: config.db ? { ...config.db, password: config.db.password ? '***' : undefined } : null,
    studio: { ...config.studio, password: config.studio.password ? '***' : '' },
    online: { ...config.online, password: config.online.password ? '***' : '' },
  };
}
