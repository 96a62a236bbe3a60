/**
 * tedious 19 parses each TDS answer in a stream that has no 'error' listener: a token type it does
 * not know ("Unknown type: 90") becomes an uncaught exception — it would end sosync — and the
 * request waits for ever. This guard gives that stream a listener that drops the connection, so
 * the request fails like any lost connection (ESOCKET → StudioUnavailableError) and the pool opens
 * a fresh one. Installed once; skipped (with a warning) if tedious no longer has the method.
 */
import { createRequire } from 'node:module';
import type { Logger } from '../../log.ts';

interface TediousConnection {
  socket?: { destroy(error?: Error): void };
  createTokenStreamParser(message: unknown, handler: unknown): { parser?: { on(event: 'error', listener: (err: Error) => void): void } };
}

let installed = false;

export function guardTokenStreams(logger: Logger): void {
  if (installed) return;
  installed = true;
  const require = createRequire(import.meta.url);
  const { Connection } = require('tedious') as { Connection: { prototype: TediousConnection } };
  const original = Connection.prototype.createTokenStreamParser;
  if (typeof original !== 'function') {
    logger.warn('tedious has no createTokenStreamParser: a malformed FS answer may end the process');
    return;
  }
  Connection.prototype.createTokenStreamParser = function guarded(this: TediousConnection, message, handler) {
    const parser = original.call(this, message, handler);
    parser.parser?.on('error', (err) => {
      logger.warn({ err: err.message }, 'FS sent an answer that cannot be parsed; dropping the connection');
      this.socket?.destroy(new Error(`malformed TDS answer: ${err.message}`));
    });
    return parser;
  };
}
