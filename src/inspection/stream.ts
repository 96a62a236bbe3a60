/**
 * The live stream (SPEC §8): the actor system's inspection events, fanned out to subscribers (the
 * WebSocket clients) and kept in a bounded replay buffer, plus the list of live actors.
 *
 * Inspection costs nothing when nobody watches. An actor system handed to `attach` is inspected
 * only while somebody is subscribed: without a subscriber XState is not asked for inspection
 * events at all (with an observer registered it builds one for every event, snapshot, action and
 * microstep of every actor). What a client connecting later needs is read from the actors
 * themselves: the live actors are the running roots and the children their snapshots hold, each
 * sent as a registration carrying its current state. While somebody watches, events are captured
 * by reference (XState's events and snapshots are immutable), kept in the replay buffer and
 * serialized once, so every client sees the same message under the same id; when the last
 * subscriber leaves, the buffer is let go.
 *
 * `observer`, passed as `inspect` to createActor, is for a system that is inspected anyway (a test
 * harness with an observer of its own): XState then builds every event, and the stream drops them
 * at once while nobody watches.
 */
import { randomBytes } from 'node:crypto';
import { Actor, isMachineSnapshot, type ActorSystem, type AnyActorRef, type InspectionEvent, type Observer, type Subscription } from 'xstate';
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
  /** inspects the system of this actor (any actor of it) while somebody is subscribed */
  attach(actor: AnyActorRef): void;
  /** passed as `inspect` to createActor, for a system inspected anyway (see above) */
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
  clear(): void {
    this.events.length = 0;
    this.next = 0;
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

/** The actor at the top of this actor's tree. */
function rootOf(ref: AnyActorRef): AnyActorRef {
  let root = ref;
  while (root._parent) root = root._parent;
  return root;
}

/** The running actors of a tree, each parent before its children. */
function runningTree(ref: AnyActorRef, into: AnyActorRef[] = []): AnyActorRef[] {
  const snapshot: unknown = ref.getSnapshot();
  if ((snapshot as { status?: unknown } | undefined)?.status !== 'active') return into;
  into.push(ref);
  if (!isMachineSnapshot(snapshot)) return into;
  const children: Record<string, unknown> = snapshot.children;
  for (const child of Object.values(children)) if (child instanceof Actor) runningTree(child, into);
  return into;
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
  /** the actors seen while somebody watches, with the messages that describe them */
  const live = new Map<string, ActorRecord>();
  const listeners = new Set<(message: string) => void>();
  /** the root actors whose trees are inspected */
  const roots = new Set<AnyActorRef>();
  /** systems that send their events to `observer` anyway, and those subscribed while somebody watches */
  const observedAnyway = new WeakSet<ActorSystem<any>>();
  const subscriptions = new Map<ActorSystem<any>, Subscription>();
  /** the made-up registration of an actor found running, kept while its state is the same */
  const foundRunning = new WeakMap<AnyActorRef, CapturedEvent>();
  // the live list is swept of actors that ended without a final snapshot when it has grown this far
  let sweepAt = 64;
  let endGonePending = false;
  const watched = () => listeners.size > 0;

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
        if (watched()) endGone();
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
    if (!watched()) return;
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
      // an end that went unnoticed (no parent snapshot after it) is caught by an occasional sweep
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
    const held = heldChildren(event.snapshot);
    if (held) {
      const dropped = [...live.values()].some((r) => r.parentId === record.ref.sessionId && !held.has(r.ref.sessionId));
      // XState emits a child's own final snapshot just after its parent's next one: look once the step is through
      if (dropped) endGoneLater();
    }
  }

  /** One event of an inspected system, while somebody watches. */
  function receive(event: InspectionEvent): void {
    if (!watched() || !isPublished(event)) return;
    try {
      const captured = capture(event);
      track(captured);
      publish(captured);
    } catch (err) {
      logger.warn({ err }, 'inspection event dropped');
    }
  }

  const systemObserver: Observer<InspectionEvent> = { next: receive };

  function subscribeTo(root: AnyActorRef): void {
    if (observedAnyway.has(root.system) || subscriptions.has(root.system)) return;
    subscriptions.set(root.system, root.system.inspect(systemObserver));
  }

  function startWatching(): void {
    for (const root of roots) subscribeTo(root);
    current();
  }

  function stopWatching(): void {
    for (const subscription of subscriptions.values()) subscription.unsubscribe();
    subscriptions.clear();
    history.clear();
    live.clear();
  }

  /** A registration for an actor that was running before the stream watched it, with its state now. */
  function registrationOf(ref: AnyActorRef): CapturedEvent {
    const snapshot: unknown = ref.getSnapshot();
    const known = foundRunning.get(ref);
    if (known && known.snapshot === snapshot) return known;
    const captured: CapturedEvent = { sequence: ++sequence, at: Date.now(), event: { type: '@xstate.actor', actorRef: ref, rootId: rootOf(ref).sessionId }, snapshot };
    foundRunning.set(ref, captured);
    return captured;
  }

  /**
   * The live actors now, each parent before its children: read from the running trees. While
   * somebody watches, actors gone since the last look are ended in the stream first, and those
   * found running are tracked from here on.
   */
  function current(): ActorRecord[] {
    if (watched()) endGone();
    const records: ActorRecord[] = [];
    for (const root of [...roots]) {
      if (root.getSnapshot()?.status !== 'active') {
        roots.delete(root);
        subscriptions.get(root.system)?.unsubscribe();
        subscriptions.delete(root.system);
        continue;
      }
      for (const ref of runningTree(root)) {
        let record = live.get(ref.sessionId);
        if (!record) {
          record = { ref, parentId: ref._parent?.sessionId, registration: registrationOf(ref), latest: null };
          if (watched()) live.set(ref.sessionId, record);
        }
        records.push(record);
      }
    }
    return records;
  }

  return {
    attach(actor) {
      const root = rootOf(actor);
      roots.add(root);
      if (watched()) subscribeTo(root);
    },
    observer: {
      next(event) {
        // a root registering: its system is inspected through this observer, watched or not
        const ref = event.actorRef;
        if (event.type === '@xstate.actor' && ref instanceof Actor && !ref._parent) {
          roots.add(ref);
          observedAnyway.add(ref.system);
        }
        receive(event);
      },
    },
    subscribe(listener) {
      listeners.add(listener);
      if (listeners.size === 1) startWatching();
      return () => {
        if (listeners.delete(listener) && listeners.size === 0) stopWatching();
      };
    },
    replay() {
      const messages: string[] = [];
      const add = (captured: CapturedEvent) => {
        try {
          messages.push(textOf(captured));
        } catch (err) {
          logger.warn({ err }, 'inspection event dropped');
        }
      };
      const actors = current();
      for (const captured of history.list()) add(captured);
      for (const record of actors) {
        add(record.registration);
        if (record.latest) add(record.latest);
      }
      return messages;
    },
    liveActors() {
      return current().map((record) => {
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
