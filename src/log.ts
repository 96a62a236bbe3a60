/**
 * The one logger. pino, JSON lines to stdout and (optionally) to a log file.
 * Secrets are redacted by key name wherever they appear in a logged object.
 */
import fs from 'node:fs';
import path from 'node:path';
import pino, { type Logger, type Level } from 'pino';

export type { Logger };

/** Keys whose values never reach a log line, at any depth we log. */
export const secretKeys = [
  'password', 'pw', 'db_user_pw', 'studio_sosync_pw', 'online_sosync_pw', 'api_token',
];
const redactPaths = secretKeys.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);

export interface LogOptions {
  level: Level;
  file?: string;
  /** extra destination (tests capture log lines through it) */
  stream?: NodeJS.WritableStream;
  /** write to stdout; default true */
  stdout?: boolean;
}

export class LogFileError extends Error {
  constructor(readonly file: string, cause: unknown) {
    super(`log_file: cannot write to ${file}: ${(cause as Error).message}`);
  }
}

export function createLogger(options: LogOptions): Logger {
  const streams: pino.StreamEntry[] = [];
  if (options.stdout !== false) streams.push({ level: options.level, stream: process.stdout });
  if (options.file) {
    // Node's recursive mkdir never returns on these virtual file systems
    if (/^\/(proc|sys)(\/|$)/.test(path.resolve(options.file))) {
      throw new LogFileError(options.file, new Error('a virtual file system (/proc, /sys) cannot hold a log file'));
    }
    try {
      fs.mkdirSync(path.dirname(options.file), { recursive: true });
      fs.appendFileSync(options.file, '');
    } catch (err) {
      throw new LogFileError(options.file, err);
    }
    streams.push({ level: options.level, stream: pino.destination({ dest: options.file, sync: true }) });
  }
  if (options.stream) streams.push({ level: options.level, stream: options.stream });
  return pino(
    {
      level: options.level,
      base: { service: 'sosync' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: redactPaths, censor: '***' },
    },
    pino.multistream(streams),
  );
}

/** A logger that writes nothing (for tests that do not look at logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
