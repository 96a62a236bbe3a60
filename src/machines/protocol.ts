/**
 * The protocol worker (SPEC §5): copies finished job rows to FSO's `sosync.job`, batch after
 * batch until none is pending. START (/service/processprotocol) always starts a pass, asking for
 * another one when running. WAKE (a job ended or was announced) starts one after `gatherMs`
 * (gathering), so that the jobs that end meanwhile go in the same batch: jobs ending one after the
 * other cost a search and a create per few of them instead of per job; a WAKE during a batch asks
 * for another gathering after it. WAKE does nothing while FSO is failing — then the retry timer
 * decides — or lacks `sosync.job`, which only START clears. A failed batch leaves its rows for the
 * next pass and shows in the status.
 *
 *   idle ──WAKE──▶ gathering ──(gatherMs)──▶ running ──▶ batchDone ─┬─ more pending / START ─▶ running
 *     ▲ └────────────START──────────────────────▲                   ├─ WAKE ─▶ gathering
 *     └─────────────────────────────────────────────────────────────┴─ else ─▶ idle
 */
import { assign, fromPromise, setup } from 'xstate';
import type { BatchResult } from '../adapters/online/index.ts';

export type { BatchResult };

/** How long a WAKE waits for more jobs to end before the batch starts. */
export const PROTOCOL_GATHER_MS = 250;

export interface ProtocolContext {
  restartRequested: boolean;
  /** a job ended during the batch: gather again after it */
  wakeRequested: boolean;
  stopRequested: boolean;
  retryMs: number;
  gatherMs: number;
  copied: number;
  lastError: string | null;
  lastBatch: BatchResult | null;
}

export type ProtocolEvent = { type: 'START' } | { type: 'WAKE' } | { type: 'STOP' };

export const protocolMachine = setup({
  types: {
    context: {} as ProtocolContext,
    events: {} as ProtocolEvent,
    input: {} as { retryMs?: number; gatherMs?: number },
  },
  actors: {
    copyBatch: fromPromise<BatchResult>(async () => {
      throw new Error('copyBatch not provided');
    }),
  },
  actions: {
    reportBatch: (_, _params: { batch: BatchResult }) => {},
    reportFault: (_, _params: { error: string }) => {},
    reportModelMissing: (_, _params: { error: string }) => {},
  },
  guards: {
    modelMissing: (_, params: { batch: BatchResult }) => params.batch.modelMissing === true,
    nothingCopied: (_, params: { batch: BatchResult }) => params.batch.failed > 0 && params.batch.copied === 0,
    stopRequested: ({ context }) => context.stopRequested,
    morePending: ({ context }) => context.lastBatch !== null && context.lastBatch.copied > 0 && context.lastBatch.remaining > 0,
    restartRequested: ({ context }) => context.restartRequested,
    wakeRequested: ({ context }) => context.wakeRequested,
  },
  delays: { retry: ({ context }) => context.retryMs, gather: ({ context }) => context.gatherMs },
}).createMachine({
  id: 'protocol',
  context: ({ input }) => ({
    restartRequested: false,
    wakeRequested: false,
    stopRequested: false,
    retryMs: input.retryMs ?? 30_000,
    gatherMs: input.gatherMs ?? PROTOCOL_GATHER_MS,
    copied: 0,
    lastError: null,
    lastBatch: null,
  }),
  initial: 'idle',
  on: { STOP: { target: '.stopped' } },
  states: {
    idle: { on: { START: 'running', WAKE: 'gathering' } },
    /** a job ended: the jobs that end in the next gatherMs go in the same batch */
    gathering: {
      after: { gather: 'running' },
      on: { START: 'running' },
    },
    running: {
      entry: assign({ restartRequested: false, wakeRequested: false }),
      on: {
        START: { actions: assign({ restartRequested: true }) },
        WAKE: { actions: assign({ wakeRequested: true }) },
        STOP: { actions: assign({ stopRequested: true }) },
      },
      invoke: {
        src: 'copyBatch',
        onDone: [
          {
            guard: { type: 'modelMissing', params: ({ event }) => ({ batch: event.output }) },
            target: 'modelMissing',
            actions: assign({ lastBatch: ({ event }) => event.output, lastError: ({ event }) => event.output.lastError ?? 'sosync.job missing' }),
          },
          {
            guard: { type: 'nothingCopied', params: ({ event }) => ({ batch: event.output }) },
            target: 'faulted',
            actions: [
              assign({ lastBatch: ({ event }) => event.output, lastError: ({ event }) => event.output.lastError ?? 'copy failed' }),
              { type: 'reportBatch', params: ({ event }) => ({ batch: event.output }) },
            ],
          },
          {
            target: 'batchDone',
            actions: [
              assign({
                lastBatch: ({ event }) => event.output,
                copied: ({ context, event }) => context.copied + event.output.copied,
                lastError: ({ event }) => event.output.lastError ?? null,
              }),
              { type: 'reportBatch', params: ({ event }) => ({ batch: event.output }) },
            ],
          },
        ],
        onError: { target: 'faulted', actions: assign({ lastError: ({ event }) => (event.error instanceof Error ? event.error.message : String(event.error)) }) },
      },
    },
    batchDone: {
      always: [
        { guard: 'stopRequested', target: 'stopped' },
        { guard: 'morePending', target: 'running', reenter: true },
        { guard: 'restartRequested', target: 'running', reenter: true },
        { guard: 'wakeRequested', target: 'gathering' },
        { target: 'idle' },
      ],
    },
    /** FSO unreachable or refusing: rows stay pending; try again later or on START */
    faulted: {
      entry: { type: 'reportFault', params: ({ context }) => ({ error: context.lastError ?? 'unknown' }) },
      after: { retry: 'running' },
      on: { START: 'running' },
    },
    /** FSO has no sosync.job: said once, then nothing until START */
    modelMissing: {
      entry: { type: 'reportModelMissing', params: ({ context }) => ({ error: context.lastError ?? 'sosync.job missing' }) },
      on: { START: 'running' },
    },
    stopped: { type: 'final' },
  },
});
