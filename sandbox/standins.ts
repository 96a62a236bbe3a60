#!/usr/bin/env node
/**
 * `npm run standins`: the sandbox's stand-ins for FS (TDS), FSO (XML-RPC) and NTP in a process of
 * their own, without sosync — so sosync can be killed and restarted (or run twice) while "its
 * systems" keep what they acknowledged. Takes the sandbox's keys (sandbox_fs_port, sandbox_fso_port,
 * sandbox_ntp_port, sandbox_persons, sandbox_data_dir, instance, and port: where sosync's API will
 * be, for the stand-ins' job announcements). Prints where they listen and an INI for
 * `sosync --conf`; with a data directory it also writes that INI there as sosync.ini.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, readConfig, type Config } from '../src/config/index.ts';
import { createLogger } from '../src/log.ts';
import { startSandbox, standInsIni, STANDINS_INI_FILE } from './start.ts';

async function main(argv: string[]): Promise<void> {
  let config: Config;
  try {
    const { config: read, warnings } = readConfig(argv);
    for (const w of warnings) process.stderr.write(`standins: ${w}\n`);
    config = read;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`standins: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel, file: config.logFile });
  let sandbox: Awaited<ReturnType<typeof startSandbox>>;
  try {
    sandbox = await startSandbox(config, logger);
  } catch (err) {
    process.stderr.write(`standins: could not start: ${(err as Error).message}\n`);
    process.exit(1);
  }
  sandbox.attach(`http://127.0.0.1:${config.port}/job/create`);
  const ini = standInsIni(config, sandbox.endpoints);
  const dataDir = config.sandboxOptions.dataDir;
  const iniFile = dataDir ? path.join(dataDir, STANDINS_INI_FILE) : null;
  if (iniFile) fs.writeFileSync(iniFile, ini);
  const out = [
    'sosync stand-ins — FS, FSO and NTP without sosync (stop with Ctrl-C)',
    ...sandbox.standInLines,
    `  announces to   http://127.0.0.1:${config.port}/job/create`,
    iniFile ? `INI for sosync written to ${iniFile}; run: sosync --conf ${iniFile}` : 'INI for sosync (save it and run: sosync --conf FILE):',
    ...(iniFile ? [] : [ini]),
    // one line a script can wait for
    `standins ready pid=${process.pid}`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await sandbox.close();
    process.exit(0);
  };
  // a benchmark asks how many round trips the stand-ins have answered (bench/mix.ts)
  process.on('SIGUSR2', () => {
    const { fs: fsRequests, fso } = sandbox.roundTrips();
    process.stdout.write(`standins round trips fs=${fsRequests} fso=${fso}\n`);
  });
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

await main(process.argv.slice(2));
