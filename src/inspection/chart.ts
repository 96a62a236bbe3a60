/**
 * The chart shape of a machine for the page (GET /inspect/machines): its states and the
 * transitions between them, read from the machine's resolved state nodes through XState's public
 * API (`machine.root`, a StateNode's `states`, `invoke`, `transitions`, `always`, `after`), so
 * `#job.failed` style targets and invoke ids arrive resolved, and a renamed or new state, event or
 * guard shows without a change here.
 */
import type { AnyStateMachine, AnyStateNode, AnyTransitionDefinition } from 'xstate';

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
  /**
   * the guard as written in `setup()`: its name (`runCountExceeded`), higher-order guards spelled
   * out (`!childIsOpen`, `a && b`), `(inline)` for an unnamed function; null when unguarded
   */
  guard: string | null;
}

export interface MachineShape {
  id: string;
  states: StateShape[];
  transitions: TransitionShape[];
}

export const INLINE_GUARD = '(inline)';

/**
 * The guard's name. XState's higher-order guards (`not`, `and`, `or`) are functions that keep
 * their operands on `guards`, and `stateIn` its state on `stateValue`; an inline guard is a
 * function named after the config key it was written under (`guard`), which says nothing.
 */
export function guardName(guard: unknown): string | null {
  if (guard === undefined || guard === null) return null;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'object') return 'type' in guard && typeof guard.type === 'string' ? guard.type : INLINE_GUARD;
  if (typeof guard !== 'function') return INLINE_GUARD;
  const operands: unknown[] | null = 'guards' in guard && Array.isArray(guard.guards) ? guard.guards : null;
  const operand = (g: unknown): string => {
    const name = guardName(g) ?? '';
    return /\s/.test(name) ? `(${name})` : name;
  };
  if (operands && guard.name === 'not') return `!${operand(operands[0])}`;
  if (operands && (guard.name === 'and' || guard.name === 'or')) return operands.map(operand).join(guard.name === 'and' ? ' && ' : ' || ');
  if (guard.name === 'stateIn' && 'stateValue' in guard) return `in ${JSON.stringify(guard.stateValue)}`;
  return guard.name && guard.name !== 'guard' ? guard.name : INLINE_GUARD;
}

function srcName(src: unknown): string {
  if (typeof src === 'string') return src;
  const id = src && typeof src === 'object' && 'id' in src ? src.id : undefined;
  return typeof id === 'string' ? id : 'actor';
}

const pathOf = (node: AnyStateNode) => node.path.join('.');

export function describeMachine(machine: AnyStateMachine): MachineShape {
  const states: StateShape[] = [];
  const transitions: TransitionShape[] = [];

  function visit(node: AnyStateNode): void {
    const path = pathOf(node);
    const invokes = node.invoke.map((i) => ({ id: i.id, src: srcName(i.src) }));
    const delays = new Map(node.after.map((t) => [t.eventType, t.delay]));
    const initial: AnyStateNode | undefined = node.initial?.target[0];
    states.push({
      path,
      key: node.path.length ? node.key : machine.id,
      parent: node.parent ? pathOf(node.parent) : null,
      type: node.type,
      initial: initial && initial.parent === node ? initial.key : null,
      invokes,
    });

    const add = (t: AnyTransitionDefinition, kind: TransitionShape['kind'], label: string) => {
      transitions.push({
        source: path,
        targets: (t.target ?? []).map(pathOf),
        event: t.eventType,
        kind,
        label,
        guard: guardName(t.guard),
      });
    };
    for (const [eventType, list] of node.transitions) {
      const invoke = invokes.find((i) => eventType === `xstate.done.actor.${i.id}` || eventType === `xstate.error.actor.${i.id}`);
      const delay = delays.get(eventType);
      for (const t of list) {
        if (invoke) {
          const done = eventType.startsWith('xstate.done.');
          add(t, done ? 'done' : 'error', done ? invoke.src : `${invoke.src} failed`);
        } else if (delays.has(eventType)) {
          add(t, 'after', `after ${typeof delay === 'number' ? `${delay} ms` : typeof delay === 'string' ? delay : 'a delay'}`);
        } else {
          add(t, 'event', eventType);
        }
      }
    }
    for (const t of node.always ?? []) add(t, 'always', '');
    for (const child of Object.values(node.states)) visit(child);
  }

  visit(machine.root);
  return { id: machine.id, states, transitions };
}
