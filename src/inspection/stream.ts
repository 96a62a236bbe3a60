/**
 * The live stream (SPEC §8): the actor system's inspection events, kept in a bounded replay
 * buffer and fanned out to subscribers (the WebSocket clients), plus the list of live actors.
 *
 * Inspection costs nothing when nobody watches. While there is no subscriber, an event is only
 * captured by reference (XState's events and snapshots are immutable) with its time and number;
 * nothing is copied or serialized. A message is serialized the first time somebody needs it — at
 * once while a subscriber listens, or when a client connects and is sent the replay — and its text
 * is kept with it, so every client sees the same message under the same id. The buffer thus holds
 * references to at most `historySize` recent events (and the snapshots they carry) and the texts
 * of those that were already sent.
 */
import { randomBytes } from 'node:crypto';
import { Actor, isMachineSnapshot, type InspectionEvent, type Observer } from 'xstate';
import type { Logger } from '../log.ts';
import { actorFacts, serialize, toInspectable, type CapturedEvent, type PublishedEvent } from './serialize.ts';

export interface InspectionOptions {
  /** how many recent messages a newly connected client is sent first (default 500) */
  historySize?: number;
  /** a message larger than this drops its context, then its definition (default 256 KiB) */
  maxMessageBytes?: number;
}

/** An actor that is running now. */
export interface LiveActor {
  sessionId: string;
  parentId: string | undefined;
  /** the actor's id (for invoked actors, the invoke id) */
  name: string;
  /** the machine's id (`job`, `supervisor`, `protocol`) or null for a promise actor */
  machine: string | null;
  status: string;
  /** the state value of a machine actor */
  value: unknown;
  /** for job actors: the sync_table job_id */
  jobId: number | null;
}

export interface Inspection {
  /** passed as `inspect` to createActor */
  observer: Observer<InspectionEvent>;
  /** every published message (a JSON string) from now on; returns the unsubscribe */
  subscribe(listener: (message: string) => void): () => void;
  /** what a client connecting now is sent first: recent history, then each live actor's registration and latest snapshot */
  replay(): string[];
  liveActors(): LiveActor[];
}

interface ActorRecord {
  ref: PublishedEvent['actorRef'];
  parentId: string | undefined;
  registration: CapturedEvent;
  latest: CapturedEvent | null;
}

/** A ring of the most recent captured events. */
class History {
  private readonly events: CapturedEvent[] = [];
  private next = 0;
  constructor(private readonly size: number) {}
  push(event: CapturedEvent): void {
    if (this.size <= 0) return;
    this.events[this.next] = event;
    this.next = (this.next + 1) % this.size;
  }
  /** oldest first */
  list(): CapturedEvent[] {
    return [...this.events.slice(this.next), ...this.events.slice(0, this.next)];
  }
}

/** The session ids of the children a machine snapshot holds; null for other snapshots. */
function heldChildren(snapshot: unknown): Set<string> | null {
  if (!isMachineSnapshot(snapshot)) return null;
  const children: Record<string, unknown> = snapshot.children;
  return new Set(Object.values(children).flatMap((child) => (child instanceof Actor ? [child.sessionId] : [])));
}

const isPublished = (event: InspectionEvent): event is PublishedEvent =>
  event.type === '@xstate.actor' || event.type === '@xstate.event' || event.type === '@xstate.snapshot';

export function createInspection(logger: Logger, options: InspectionOptions = {}): Inspection {
  const serializeOptions = {
    boot: randomBytes(4).toString('hex'),
    maxMessageBytes: options.maxMessageBytes ?? 256 * 1024,
    oversize: (bytes: number, type: string) => {
      if (warnedOversize) return;
      warnedOversize = true;
      logger.warn({ bytes, type }, 'inspection message stays above the size cap');
    },
  };
  let warnedOversize = false;
  let sequence = 0;
  const history = new History(options.historySize ?? 500);
  const live = new Map<string, ActorRecord>();
  const listeners = new Set<(message: string) => void>();
  // the live list is swept of actors that ended without a final snapshot when it has grown this far
  let sweepAt = 64;
  let endGonePending = false;

  function textOf(captured: CapturedEvent): string {
    captured.text ??= serialize(captured, serializeOptions);
    return captured.text;
  }

  /** An actor is live while its own snapshot says so and its parent still holds it. */
  function isLive(record: ActorRecord): boolean {
    if (record.ref.getSnapshot()?.status !== 'active') return false;
    if (record.parentId === undefined) return true;
    const parent = live.get(record.parentId);
    if (!parent || !isLive(parent)) return false;
    const held = heldChildren(parent.ref.getSnapshot());
    return held === null || held.has(record.ref.sessionId);
  }

  /**
   * Ends the actors that are gone without a final snapshot of their own: a child that ended by an
   * error thrown in its transition, or was stopped before it started, only shows as missing from
   * its parent's `children`. Each gets a `stopped` snapshot in the stream, so no client keeps a
   * ghost. Runs only between XState's steps (a child created in the current step is not yet in
   * its parent's snapshot).
   */
  function endGone(): void {
    for (const record of [...live.values()]) {
      if (isLive(record)) continue;
      live.delete(record.ref.sessionId);
      const last = record.ref.getSnapshot();
      publish(capture({
        type: '@xstate.snapshot',
        actorRef: record.ref,
        rootId: record.registration.event.rootId,
        event: { type: 'xstate.stop' },
        snapshot: last?.status === 'active' ? { ...last, status: 'stopped' } : last,
      }));
    }
  }

  function endGoneLater(): void {
    if (endGonePending) return;
    endGonePending = true;
    setTimeout(() => {
      endGonePending = false;
      try {
        endGone();
      } catch (err) {
        logger.warn({ err }, 'inspection event dropped');
      }
      sweepAt = Math.max(64, 2 * live.size);
    }, 0);
  }

  function capture(event: PublishedEvent): CapturedEvent {
    const captured: CapturedEvent = { sequence: ++sequence, at: Date.now(), event };
    history.push(captured);
    return captured;
  }

  function publish(captured: CapturedEvent): void {
    if (!listeners.size) return;
    let text: string;
    try {
      text = textOf(captured);
    } catch (err) {
      logger.warn({ err }, 'inspection event dropped');
      return;
    }
    for (const listener of listeners) {
      try {
        listener(text);
      } catch (err) {
        logger.warn({ err }, 'inspection subscriber failed');
      }
    }
  }

  function track(captured: CapturedEvent): void {
    const { event } = captured;
    if (event.type === '@xstate.actor') {
      live.set(event.actorRef.sessionId, { ref: event.actorRef, parentId: actorFacts(event.actorRef).parentId, registration: captured, latest: null });
      // without a watching client nobody looks at each parent's children; an occasional sweep keeps the list bounded
      if (live.size >= sweepAt) endGoneLater();
      return;
    }
    if (event.type !== '@xstate.snapshot') return;
    const record = live.get(event.actorRef.sessionId);
    if (!record) return;
    if (event.snapshot.status !== 'active') {
      live.delete(record.ref.sessionId);
      return;
    }
    record.latest = captured;
    const held = listeners.size ? heldChildren(event.snapshot) : null;
    if (held) {
      const dropped = [...live.values()].some((r) => r.parentId === record.ref.sessionId && !held.has(r.ref.sessionId));
      // XState emits a child's own final snapshot just after its parent's next one: look once the step is through
      if (dropped) endGoneLater();
    }
  }

  const observer: Observer<InspectionEvent> = {
    next(event) {
      if (!isPublished(event)) return;
      try {
        const captured = capture(event);
        track(captured);
        publish(captured);
      } catch (err) {
        logger.warn({ err }, 'inspection event dropped');
      }
    },
  };

  return {
    observer,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    replay() {
      endGone();
      const messages: string[] = [];
      const add = (captured: CapturedEvent) => {
        try {
          messages.push(textOf(captured));
        } catch (err) {
          logger.warn({ err }, 'inspection event dropped');
        }
      };
      for (const captured of history.list()) add(captured);
      for (const record of live.values()) {
        add(record.registration);
        if (record.latest) add(record.latest);
      }
      return messages;
    },
    liveActors() {
      endGone();
      return [...live.values()].map((record) => {
        const facts = actorFacts(record.ref);
        const snapshot = record.ref.getSnapshot();
        const machine = isMachineSnapshot(snapshot) ? snapshot : null;
        const jobId: unknown = machine?.context?.job?.job_id;
        return {
          sessionId: record.ref.sessionId,
          parentId: record.parentId,
          name: facts.name,
          machine: facts.machine,
          status: String(snapshot?.status ?? 'active'),
          value: machine ? toInspectable(machine.value) : undefined,
          jobId: typeof jobId === 'number' ? jobId : null,
        };
      });
    },
  };
}
