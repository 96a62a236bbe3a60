/**
 * A recording of an inspection stream: every message a watching client would have been sent,
 * one JSON message per line (JSONL). The page replays such a file as an animation (its "replay a
 * recording" file input, or `?replay=<url>` of a file served by the same origin), so a failing
 * test can be looked at step by step.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { InspectionEvent, Observer } from 'xstate';
import { silentLogger, type Logger } from '../log.ts';
import { createInspection, type InspectionOptions } from './stream.ts';

/** A recording stops growing here; a test run long enough to reach it records its start. */
const MAX_RECORDED_MESSAGES = 200_000;

export interface InspectionRecorder {
  /** passed as `inspect` to createActor (or a harness's `inspect` option) */
  observer: Observer<InspectionEvent>;
  /** the messages recorded so far, as sent (JSON strings) */
  messages(): string[];
  /** writes the recording to `file` as JSONL (creating its directory); returns the file's path */
  save(file: string): string;
}

export function recordInspection(options: InspectionOptions & { logger?: Logger } = {}): InspectionRecorder {
  const inspection = createInspection(options.logger ?? silentLogger(), options);
  const messages: string[] = [];
  inspection.subscribe((message) => {
    if (messages.length < MAX_RECORDED_MESSAGES) messages.push(message);
  });
  return {
    observer: inspection.observer,
    messages: () => [...messages],
    save(file) {
      const target = path.resolve(file);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, messages.map((m) => `${m}\n`).join(''));
      return target;
    },
  };
}

