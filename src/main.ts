#!/usr/bin/env node
/**
 * sosync's entry point: read the configuration, start the sandbox when there is no real system
 * to talk to, start the service, and stop cleanly on SIGTERM/SIGINT.
 */
import { ConfigError, describeConfig, readConfig, type Config } from './config/index.ts';
import { createLogger, LogFileError, type Logger } from './log.ts';
import { startService } from './service.ts';
import { StateDirectoryInUseError } from './adapters/syncTable/index.ts';
import { commitId } from './version.ts';

const usage = `usage: sosync [--conf FILE | -c FILE] [--key value | --key=value ...]

Without --conf, sosync runs a self-contained sandbox (stand-ins for FS, FSO and NTP with demo data).
Every key of the [sosync] INI section can be given on the command line; see README.md and
sosync.example.ini. --help prints this text, --version the commit id of this build.`;

/** How long SIGTERM/SIGINT may take before the process exits anyway. */
const SHUTDOWN_LIMIT_MS = 9_000;

type Sandbox = import('../sandbox/start.ts').Sandbox;

async function startSandbox(config: Config, logger: Logger): Promise<Sandbox> {
  // only the sandbox path loads the stand-ins
  const { startSandbox: start } = await import('../sandbox/start.ts');
  return start(config, logger);
}

async function main(argv: string[]): Promise<void> {
  let config: Config;
  let warnings: string[];
  try {
    const cli = argv.includes('--help') || argv.includes('-h');
    if (cli) {
      process.stdout.write(`${usage}\n`);
      return;
    }
    if (argv.includes('--version') || argv.includes('-V')) {
      process.stdout.write(`${commitId() ?? 'unknown'}\n`);
      return;
    }
    ({ config, warnings } = readConfig(argv));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`sosync: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }

  let logger: Logger;
  try {
    logger = createLogger({ level: config.logLevel, file: config.logFile });
  } catch (err) {
    if (err instanceof LogFileError) {
      process.stderr.write(`sosync: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  for (const warning of warnings) logger.warn(warning);

  let sandbox: Sandbox | null = null;
  let service: Awaited<ReturnType<typeof startService>> | null = null;
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping: no new jobs; the current job finishes');
    const force = setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(0);
    }, SHUTDOWN_LIMIT_MS);
    force.unref();
    await service?.close();
    await sandbox?.close();
    logger.info('stopped');
    logger.flush?.();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  try {
    if (config.sandbox) {
      sandbox = await startSandbox(config, logger);
      for (const line of sandbox.banner) process.stdout.write(`${line}\n`);
    }
    // in the sandbox, the stand-ins' endpoints replace the configured systems: log what is used
    const effective: Config = sandbox ? { ...config, ...sandbox.endpoints } : config;
    logger.info({ config: describeConfig(effective), commit: commitId() }, 'sosync starting');
    // the sandbox's one PGlite holds the sync table too, unless the configuration puts it elsewhere
    service = await startService(config, logger, sandbox?.endpoints ?? config, sandbox?.syncTable ? { syncTable: sandbox.syncTable } : {});
    sandbox?.attach(`http://127.0.0.1:${service.port}/job/create`, config.apiToken ? { authorization: `Bearer ${config.apiToken}` } : {});
    if (stopping) await service.close();
  } catch (err) {
    logger.fatal({ error: (err as Error).message }, 'sosync could not start');
    process.stderr.write(`sosync: could not start: ${(err as Error).message}\n`);
    await sandbox?.close().catch(() => undefined);
    // another process owns the embedded database: a setup mistake, like a configuration error
    process.exit(err instanceof StateDirectoryInUseError ? 2 : 1);
  }
}

await main(process.argv.slice(2));
