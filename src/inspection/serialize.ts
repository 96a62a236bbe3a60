/**
 * The serializer: one captured XState inspection event → one JSON message in Stately's serialized
 * format (`@xstate.actor`, `@xstate.event`, `@xstate.snapshot`), so Stately's own tools can read
 * the stream and our page reads the same messages. Values are made safe first (capped, redacted,
 * never throwing), so inspection can never break a running actor nor leak a secret.
 *
 * The only liberty taken with the format is the `id` field, which it leaves free: it is
 * `<boot>:<sequence>` so a client can tell replayed messages from new ones and a restart from both.
 */
import { createInspector, type StatelyActorEvent, type StatelyEventEvent, type StatelyInspectionEvent, type StatelySnapshotEvent } from '@statelyai/inspect';
import { configure as configureStringify } from 'safe-stable-stringify';
import { Actor, StateMachine, type AnyActorRef, type InspectionEvent } from 'xstate';
import { secretKeys } from '../log.ts';

/** The three kinds of inspection event that are published; the others (actions, microsteps) are not. */
export type PublishedEvent = Extract<InspectionEvent, { type: '@xstate.actor' | '@xstate.event' | '@xstate.snapshot' }>;

/**
 * An event as the stream keeps it until somebody wants to see it: a reference to XState's own
 * (immutable) event plus when it happened and its place in the order. Serializing is deferred to
 * the first viewer that needs the message; the text is then kept so every viewer gets the same.
 */
export interface CapturedEvent {
  sequence: number;
  /** ms since the epoch, taken when the event happened */
  at: number;
  event: PublishedEvent;
  /**
   * For a registration made up for an actor that was already running when the stream started to
   * watch: its state then (XState's own registration comes before the actor has a state).
   */
  snapshot?: unknown;
  text?: string;
}

export interface SerializeOptions {
  boot: string;
  /** a message larger than this drops its context, then its definition, then its event's fields */
  maxMessageBytes: number;
  /** told once per message that stays above the cap after all cuts */
  oversize?: (bytes: number, type: string) => void;
}

/** Limits of one sanitized value: deep, wide or long data is cut, never refused. */
const LIMITS = { depth: 8, keys: 80, items: 50, string: 1000, nodes: 4000 };
const DEFINITION_MAX_CHARS = 200_000;

const secretKeyPattern = new RegExp(`(^(${secretKeys.join('|')})$)|passw|secret|token|api_?key|authori[sz]ation|credential`, 'i');

/**
 * A JSON-safe copy of any value: Dates as ISO strings, Errors as name and message, cycles marked,
 * secret-looking keys redacted, sizes capped. It never throws (a throwing getter or toJSON becomes
 * a marker).
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
      if ('toJSON' in o && typeof o.toJSON === 'function') return walk(o.toJSON(), depth);
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

/** The format version Stately's tools check, as Stately's own inspector stamps it. */
const formatVersion: string = (() => {
  let version = '';
  createInspector({ send: (event) => (version = event._version) }, { autoStart: false }).event('version', { type: 'version' });
  return version;
})();

// a machine's definition is written as Stately's inspector writes it (its depth limit, functions
// by name); it is the same for every actor of a machine, so it is written once per machine
const stringifyDefinition = configureStringify({ maximumDepth: 10 });
const definitions = new WeakMap<object, string | undefined>();

function definitionOf(logic: unknown, name: string): string | undefined {
  if (!(logic instanceof StateMachine)) return stringifyDefinition({ id: name });
  if (!definitions.has(logic)) {
    const text = stringifyDefinition(logic.config, (_key, value: unknown) => (typeof value === 'function' ? { type: value.name } : value));
    definitions.set(logic, text !== undefined && text.length <= DEFINITION_MAX_CHARS ? text : undefined);
  }
  return definitions.get(logic);
}

/** What the stream needs to know of an actor beyond XState's public `ActorRefLike`. */
export interface ActorFacts {
  /** the actor's id (for invoked actors, the invoke id) */
  name: string;
  parentId: string | undefined;
  /** the machine's id (`job`, `supervisor`, `protocol`), or null for a promise or other actor */
  machine: string | null;
  logic: unknown;
}

export function actorFacts(ref: PublishedEvent['actorRef']): ActorFacts {
  if (!(ref instanceof Actor)) return { name: ref.sessionId, parentId: undefined, machine: null, logic: undefined };
  const actor: Actor<any> = ref;
  const machine = actor.logic instanceof StateMachine ? actor.logic.id : null;
  const parent: AnyActorRef | undefined = actor._parent;
  return {
    name: actor.id === actor.sessionId && machine ? machine : actor.id,
    parentId: parent?.sessionId,
    machine,
    logic: actor.logic,
  };
}

function toMessage(captured: CapturedEvent, boot: string): StatelyInspectionEvent {
  const { event } = captured;
  const base = {
    id: `${boot}:${captured.sequence}`,
    sessionId: event.actorRef.sessionId,
    rootId: event.rootId,
    createdAt: String(captured.at),
    _version: formatVersion,
  };
  switch (event.type) {
    case '@xstate.actor': {
      const facts = actorFacts(event.actorRef);
      // an actor registers before it has a state: its initial snapshot (event xstate.init) follows,
      // unless the registration is made up for an actor found running
      const snapshot: StatelyActorEvent['snapshot'] = captured.snapshot === undefined ? { status: 'active' } : toInspectable(captured.snapshot) as StatelyActorEvent['snapshot'];
      const message: StatelyActorEvent = { ...base, type: '@xstate.actor', name: facts.name, parentId: facts.parentId, definition: definitionOf(facts.logic, facts.name), snapshot };
      return message;
    }
    case '@xstate.event': {
      const message: StatelyEventEvent = { ...base, type: '@xstate.event', sourceId: event.sourceRef?.sessionId, event: toInspectable(event.event) as StatelyEventEvent['event'] };
      return message;
    }
    case '@xstate.snapshot': {
      const message: StatelySnapshotEvent = { ...base, type: '@xstate.snapshot', event: toInspectable(event.event) as StatelySnapshotEvent['event'], snapshot: toInspectable(event.snapshot) as StatelySnapshotEvent['snapshot'] };
      return message;
    }
  }
}

/** The message text of a captured event, within the size cap (values are made safe; a machine definition is read as written). */
export function serialize(captured: CapturedEvent, options: SerializeOptions): string {
  const bytes = (text: string) => Buffer.byteLength(text);
  const message = toMessage(captured, options.boot);
  let text = JSON.stringify(message);
  if (bytes(text) > options.maxMessageBytes && 'snapshot' in message && message.snapshot) {
    message.snapshot = { ...message.snapshot, context: { '…': 'context too large to inspect' } };
    text = JSON.stringify(message);
  }
  if (bytes(text) > options.maxMessageBytes && message.type === '@xstate.actor') {
    message.definition = undefined;
    text = JSON.stringify(message);
  }
  if (bytes(text) > options.maxMessageBytes && 'event' in message) {
    message.event = { type: message.event.type };
    text = JSON.stringify(message);
  }
  if (bytes(text) > options.maxMessageBytes) options.oversize?.(bytes(text), message.type);
  return text;
}
