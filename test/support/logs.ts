/** A logger whose JSON lines a test can read back. */
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log.ts';

export function logCapture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, logger: createLogger({ level: 'debug', stdout: false, stream }) };
}
