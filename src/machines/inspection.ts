/**
 * Live inspection (SPEC §8): the actor system's inspection events, converted by Stately's
 * `createInspector` into its serialized format, made safe to publish (capped, redacted, never
 * throwing), kept in a bounded replay buffer and fanned out to subscribers (the WebSocket).
 *
 * Each published message is one JSON-encoded Stately inspection event (`@xstate.actor`,
 * `@xstate.event`, `@xstate.snapshot`), so Stately's own tools can read the stream; our page reads
 * the same messages. The only liberty taken is the `id` field, which the format leaves free: it is
 * `<boot>:<sequence>` so a client can tell replayed messages from new ones and a restart from both.
 */
import { randomBytes } from 'node:crypto';
import { createInspector, type StatelyInspectionEvent } from '@statelyai/inspect';
import type { AnyActorRef, AnyStateMachine, InspectionEvent, Observer } from 'xstate';
import { secretKeys, type Logger } from '../log.ts';

export interface InspectionOptions {
  /** how many recent messages a newly connected client is sent first (default 500) */
  historySize?: number;
  /** a message larger than this drops its context, then its definition (default 256 KiB) */
  maxMessageBytes?: number;
}

/** An actor that is running now, as the inspection stream last showed it. */
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

/** Limits of one sanitized value: deep, wide or long data is cut, never refused. */
const LIMITS = { depth: 8, keys: 80, items: 50, string: 1000, nodes: 4000 };
const DEFINITION_MAX_CHARS = 200_000;

const secretKeyPattern = new RegExp(`(^(${secretKeys.join('|')})$)|passw|secret|token|api_?key|authori[sz]ation|credential`, 'i');

/**
 * A JSON-safe copy of any value: Dates as ISO strings, Errors as name and message, cycles marked,
 * secret-looking keys redacted, sizes capped. It never throws (a throwing getter or toJSON becomes
 * a marker), so inspection can never break a running actor.
 */
export function toInspectable(value: unknown): unknown {
  let budget = LIMITS.nodes;
  const ancestors = new Set<object>();

  function walk(v: unknown, depth: number): unknown {
    if (--budget < 0) return '[…]';
    switch (typeof v) {
      case 'string':
        return v.length > LIMITS.string ? `${v.slice(0, LIMITS.string)}… (${v.length} chars)` : v;
      case 'number':
        return Number.isFinite(v) ? v : String(v);
      case 'boolean':
        return v;
      case 'bigint':
        return v.toString();
      case 'symbol':
        return v.toString();
      case 'function':
        return { type: v.name || 'function' };
      case 'undefined':
        return undefined;
    }
    if (v === null) return null;
    const o = v as object;
    if (o instanceof Date) return Number.isNaN(o.getTime()) ? 'Invalid Date' : o.toISOString();
    if (o instanceof Error) return { name: o.name, message: walk(o.message, depth + 1) };
    if (ArrayBuffer.isView(o)) return `[${o.byteLength} bytes]`;
    if (ancestors.has(o)) return '[Circular]';
    if (depth >= LIMITS.depth) return Array.isArray(o) ? '[Array]' : '[Object]';
    ancestors.add(o);
    try {
      if (typeof (o as { toJSON?: unknown }).toJSON === 'function') {
        return walk((o as { toJSON(): unknown }).toJSON(), depth);
      }
      if (Array.isArray(o)) {
        const out = o.slice(0, LIMITS.items).map((item) => walk(item, depth + 1) ?? null);
        if (o.length > LIMITS.items) out.push(`… ${o.length - LIMITS.items} more`);
        return out;
      }
      if (o instanceof Map) return walk(Object.fromEntries(o), depth);
      if (o instanceof Set) return walk([...o], depth);
      const out: Record<string, unknown> = {};
      const keys = Object.keys(o);
      for (const key of keys.slice(0, LIMITS.keys)) {
        if (secretKeyPattern.test(key)) {
          out[key] = '[redacted]';
          continue;
        }
        let item: unknown;
        try {
          item = (o as Record<string, unknown>)[key];
        } catch {
          item = '[unreadable]';
        }
        const walked = walk(item, depth + 1);
        if (walked !== undefined) out[key] = walked;
      }
      if (keys.length > LIMITS.keys) out['…'] = `${keys.length - LIMITS.keys} more keys`;
      return out;
    } catch {
      return '[unreadable]';
    } finally {
      ancestors.delete(o);
    }
  }

  return walk(value, 0);
}

interface InspectedSnapshot {
  status?: string;
  value?: unknown;
  context?: unknown;
  children?: unknown;
  [field: string]: unknown;
}

/** The fields of a Stately inspection event this module reads or rewrites (loosely typed on purpose). */
interface Message {
  type: StatelyInspectionEvent['type'];
  id: string;
  sessionId: string;
  rootId?: string;
  parentId?: string;
  name?: string;
  definition?: string;
  snapshot?: InspectedSnapshot;
  event?: { type: string; [field: string]: unknown };
  _version: string;
  createdAt: string;
}

interface ActorRecord {
  sessionId: string;
  parentId: string | undefined;
  name: string;
  rootId: string | undefined;
  machine: string | null;
  registration: string;
  snapshot: InspectedSnapshot | undefined;
  latest: string | null;
}

function isFinished(status: unknown): boolean {
  return status !== undefined && status !== 'active';
}

function machineIdOf(definition: string | undefined): string | null {
  if (!definition) return null;
  try {
    const parsed = JSON.parse(definition) as { id?: unknown; states?: unknown };
    return parsed.states && typeof parsed.id === 'string' ? parsed.id : null;
  } catch {
    return null;
  }
}

function jobIdOf(snapshot: unknown): number | null {
  const id = (snapshot as { context?: { job?: { job_id?: unknown } } } | undefined)?.context?.job?.job_id;
  return typeof id === 'number' ? id : null;
}

export function createInspection(logger: Logger, options: InspectionOptions = {}): Inspection {
  const historySize = options.historySize ?? 500;
  const maxMessageBytes = options.maxMessageBytes ?? 256 * 1024;
  const boot = randomBytes(4).toString('hex');
  let sequence = 0;
  const history: string[] = [];
  const live = new Map<string, ActorRecord>();
  const listeners = new Set<(message: string) => void>();
  let warnedOversize = false;
  let formatVersion = '';

  /** Sanitizes and numbers one event; returns it encoded, within the size cap. */
  function encode(event: StatelyInspectionEvent | Message): { message: Message; text: string } {
    const message = { ...event, id: `${boot}:${++sequence}` } as Message;
    // snapshots and events were made safe before Stately's conversion (see observer); the
    // registration's snapshot is read by the conversion itself
    if (message.type === '@xstate.actor') message.snapshot = toInspectable(message.snapshot) as InspectedSnapshot;
    if (message.type === '@xstate.actor' && message.definition && message.definition.length > DEFINITION_MAX_CHARS) {
      message.definition = undefined;
    }
    let text = JSON.stringify(message);
    if (Buffer.byteLength(text) > maxMessageBytes && 'snapshot' in message && message.snapshot) {
      message.snapshot = { ...message.snapshot, context: { '…': 'context too large to inspect' } };
      text = JSON.stringify(message);
    }
    if (Buffer.byteLength(text) > maxMessageBytes && message.type === '@xstate.actor') {
      message.definition = undefined;
      text = JSON.stringify(message);
    }
    if (Buffer.byteLength(text) > maxMessageBytes && message.event) {
      message.event = { type: message.event.type };
      text = JSON.stringify(message);
    }
    if (Buffer.byteLength(text) > maxMessageBytes && !warnedOversize) {
      warnedOversize = true;
      logger.warn({ bytes: Buffer.byteLength(text), type: message.type }, 'inspection message stays above the size cap');
    }
    return { message, text };
  }

  function publish(text: string): void {
    history.push(text);
    if (history.length > historySize) history.splice(0, history.length - historySize);
    for (const listener of listeners) {
      try {
        listener(text);
      } catch (err) {
        logger.warn({ err }, 'inspection subscriber failed');
      }
    }
  }

  /** An actor that is gone leaves the live list, and so do its descendants. */
  function forget(sessionId: string): void {
    live.delete(sessionId);
    for (const record of [...live.values()]) {
      if (record.parentId === sessionId) forget(record.sessionId);
    }
  }

  /**
   * A child that ended by an error thrown in its transition, or was stopped without a final
   * snapshot, only shows as missing from its parent's `children`; announce its end so no client
   * keeps it as live. XState emits a child's own final snapshot just after its parent's next one,
   * so the check waits for the conversions already queued (Stately's inspector converts each event
   * on its own timer, in order) before deciding the child is gone without a word.
   */
  function pruneChildrenLater(parent: ActorRecord, children: unknown): void {
    if (!children || typeof children !== 'object') return;
    const present = new Set(Object.keys(children));
    const missing = [...live.values()].filter((r) => r.parentId === parent.sessionId && !present.has(r.name));
    if (!missing.length) return;
    setTimeout(() => {
      for (const record of missing) {
        if (!live.has(record.sessionId)) continue;
        try {
          forget(record.sessionId);
          publish(encode({
            type: '@xstate.snapshot',
            sessionId: record.sessionId,
            rootId: record.rootId,
            createdAt: Date.now().toString(),
            _version: formatVersion,
            id: '',
            event: { type: 'xstate.stop' },
            snapshot: { ...(record.snapshot ?? {}), status: 'stopped' },
          }).text);
        } catch (err) {
          logger.warn({ err }, 'inspection event dropped');
        }
      }
    }, 0);
  }

  function track(message: Message, text: string): void {
    if (message.type === '@xstate.actor') {
      if (isFinished(message.snapshot?.status)) return;
      live.set(message.sessionId, {
        sessionId: message.sessionId,
        parentId: message.parentId,
        name: message.name ?? message.sessionId,
        rootId: message.rootId,
        machine: machineIdOf(message.definition),
        registration: text,
        snapshot: message.snapshot,
        latest: null,
      });
      return;
    }
    if (message.type !== '@xstate.snapshot') return;
    const record = live.get(message.sessionId);
    if (!record) return;
    if (isFinished(message.snapshot?.status)) {
      forget(record.sessionId);
      return;
    }
    record.snapshot = message.snapshot;
    record.latest = text;
    pruneChildrenLater(record, message.snapshot?.children);
  }

  const adapter = {
    send(event: StatelyInspectionEvent) {
      // runs in a timer of Stately's inspector: a throw here would end the process
      try {
        formatVersion = event._version;
        const { message, text } = encode(event);
        track(message, text);
        publish(text);
      } catch (err) {
        logger.warn({ err }, 'inspection event dropped');
      }
    },
  };
  const inspector = createInspector(adapter, { autoStart: true });

  /**
   * Snapshots and events are made safe here, synchronously, before Stately's conversion reads
   * them on its timer: the raw values may change or be huge by then, and its serializer would turn
   * an Error into `{}`. Actions and microsteps are not published, so they stop here.
   */
  const observer: Observer<InspectionEvent> = {
    next(event) {
      try {
        if (event.type === '@xstate.snapshot') {
          inspector.inspect.next?.({ ...event, snapshot: toInspectable(event.snapshot) as typeof event.snapshot, event: toInspectable(event.event) as typeof event.event });
        } else if (event.type === '@xstate.event') {
          inspector.inspect.next?.({ ...event, event: toInspectable(event.event) as typeof event.event });
        } else if (event.type === '@xstate.actor') {
          // The conversion reads the actor's snapshot on its timer, by when the actor may have moved
          // on (an actor registers before it has a snapshot). Registering as just `active` keeps the
          // stream in order: the actor's initial snapshot (event xstate.init) follows.
          const ref = event.actorRef as AnyActorRef & { _parent?: AnyActorRef; logic?: unknown };
          const registering = {
            id: ref.id,
            sessionId: ref.sessionId,
            _parent: ref._parent,
            logic: ref.logic,
            getSnapshot: () => ({ status: 'active' }),
          } as unknown as AnyActorRef;
          inspector.inspect.next?.({ ...event, actorRef: registering });
        }
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
      const catchUp: string[] = [];
      for (const record of live.values()) {
        catchUp.push(record.registration);
        if (record.latest) catchUp.push(record.latest);
      }
      return [...history, ...catchUp];
    },
    liveActors() {
      return [...live.values()].map((r) => ({
        sessionId: r.sessionId,
        parentId: r.parentId,
        name: r.name,
        machine: r.machine,
        status: String(r.snapshot?.status ?? 'active'),
        value: r.snapshot?.value,
        jobId: jobIdOf(r.snapshot),
      }));
    },
  };
}

/** One state of a machine, as the page draws it. */
export interface StateShape {
  /** dotted path below the machine root, e.g. `direction.reading` ('' for the root) */
  path: string;
  key: string;
  parent: string | null;
  type: string;
  /** key of the initial child of a compound state */
  initial: string | null;
  /** what the state invokes: the invoke id and its source name */
  invokes: Array<{ id: string; src: string }>;
}

export interface TransitionShape {
  source: string;
  targets: string[];
  /** the event type as the machine sees it */
  event: string;
  kind: 'event' | 'done' | 'error' | 'always' | 'after';
  /** a short label: the event, the invoked source or the delay ('' for an eventless transition) */
  label: string;
  /** the guard's name; `condition` for an inline one */
  guard: string | null;
}

export interface MachineShape {
  id: string;
  states: StateShape[];
  transitions: TransitionShape[];
}

interface NodeLike {
  key: string;
  path: string[];
  type: string;
  parent?: NodeLike;
  config: { initial?: unknown };
  states: Record<string, NodeLike>;
  invoke: Array<{ id: string; src: unknown }>;
  transitions: Map<string, TransitionLike[]>;
  always?: TransitionLike[];
}

interface TransitionLike {
  target?: NodeLike[];
  guard?: unknown;
  delay?: unknown;
  eventType: string;
}

function guardName(guard: unknown): string | null {
  if (guard === undefined || guard === null) return null;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'object' && typeof (guard as { type?: unknown }).type === 'string') return (guard as { type: string }).type;
  // an inline guard is named after the config key it was written under, which says nothing
  const name = typeof guard === 'function' ? guard.name : '';
  return name && name !== 'guard' ? name : 'condition';
}

function srcName(src: unknown): string {
  if (typeof src === 'string') return src;
  const id = (src as { id?: unknown; config?: { id?: unknown } } | null)?.config?.id ?? (src as { id?: unknown } | null)?.id;
  return typeof id === 'string' ? id : 'actor';
}

/**
 * The shape of a machine for drawing: its states and the transitions between them, taken from the
 * machine's resolved state nodes (so `#job.failed` style targets and invoke ids are already resolved).
 */
export function describeMachine(machine: AnyStateMachine): MachineShape {
  const states: StateShape[] = [];
  const transitions: TransitionShape[] = [];
  const pathOf = (node: NodeLike) => node.path.join('.');

  function visit(node: NodeLike): void {
    const path = pathOf(node);
    const invokes = node.invoke.map((i) => ({ id: i.id, src: srcName(i.src) }));
    const initial = typeof node.config.initial === 'string' ? node.config.initial : null;
    states.push({ path, key: node.path.length ? node.key : machine.id, parent: node.parent ? pathOf(node.parent) : null, type: node.type, initial, invokes });

    const add = (t: TransitionLike, kind: TransitionShape['kind'], label: string) => {
      const guard = guardName(t.guard);
      transitions.push({
        source: path,
        targets: (t.target ?? []).map(pathOf),
        event: t.eventType,
        kind,
        label,
        guard,
      });
    };
    for (const [eventType, list] of node.transitions) {
      for (const t of list) {
        const invoke = invokes.find((i) => eventType === `xstate.done.actor.${i.id}` || eventType === `xstate.error.actor.${i.id}`);
        if (invoke) add(t, eventType.startsWith('xstate.done.') ? 'done' : 'error', eventType.startsWith('xstate.done.') ? invoke.src : `${invoke.src} failed`);
        else if (t.delay !== undefined) add(t, 'after', `after ${typeof t.delay === 'string' ? t.delay : `${String(t.delay)} ms`}`);
        else add(t, 'event', eventType);
      }
    }
    for (const t of node.always ?? []) add(t, 'always', '');
    for (const child of Object.values(node.states)) visit(child);
  }

  visit(machine.root as unknown as NodeLike);
  return { id: machine.id, states, transitions };
}
