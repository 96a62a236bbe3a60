/**
 * Model-based testing over the machines themselves: XState's graph utilities walk a machine with the
 * event cases of its table (one row per way an invoked actor can end, an outside event, or a delay),
 * and every path they find becomes a scenario run for real. The coverage gate compares the
 * transitions the real runs took, keyed by (source, event, guard, target), with the machine's own
 * definition.
 */
import { createHash } from 'node:crypto';
import { getShortestPaths, getSimplePaths, type StatePath } from 'xstate/graph';
import { createMachine, type AnyMachineSnapshot, type AnyStateMachine, type EventObject } from 'xstate';

/** An event of the abstract model: the machine's own event, labelled with the table row it came from. */
export interface ModelEvent extends EventObject {
  row: string;
  output?: unknown;
  error?: unknown;
}

/**
 * One row of a machine's table. `on` is `done:<actor src>`, `error:<actor src>`, `after:<delay>` or
 * an event type sent from outside; `arrange` is how the real run makes exactly this happen.
 */
export interface CaseRow<TScenario, TSnapshot extends AnyMachineSnapshot = AnyMachineSnapshot> {
  on: string;
  case: string;
  /** the actor's output as the model sees it (done rows) */
  output?: (snapshot: TSnapshot) => unknown;
  /** the row is offered only where this holds in the model */
  when?: (snapshot: TSnapshot) => boolean;
  arrange: (scenario: TScenario) => void;
}

export interface MachineModel<TScenario, TSnapshot extends AnyMachineSnapshot = AnyMachineSnapshot> {
  machine: AnyStateMachine;
  input?: unknown;
  rows: Array<CaseRow<TScenario, TSnapshot>>;
  /** the part of the context that decides later guards (vertices that agree on it are one) */
  abstract: (snapshot: TSnapshot) => unknown;
  /** the part of the context an edge is told apart by when few covering paths are chosen */
  edgeContext?: (snapshot: TSnapshot) => unknown;
  /** where a path may end: the real run is observed until the machine rests here */
  rests: (snapshot: TSnapshot) => boolean;
  /** transitions no real run can take, each with the reason */
  unreachable?: Record<string, string>;
}

export type ModelPath = StatePath<AnyMachineSnapshot, ModelEvent> & { name: string; id: string; rows: string[] };

const rowLabel = (row: { on: string; case: string }) => `${row.on}(${row.case})`;

interface Invocation { id: string; src: string }
interface NodeLike {
  path: string[];
  id: string;
  states: Record<string, NodeLike>;
  invoke: Invocation[];
  transitions: Map<string, TransitionLike[]>;
  always?: TransitionLike[];
}
export interface TransitionLike {
  eventType: string;
  source: NodeLike;
  target?: NodeLike[];
  guard?: string | { type: string };
}

function nodesOf(machine: AnyStateMachine): NodeLike[] {
  const out: NodeLike[] = [];
  const visit = (n: NodeLike) => {
    out.push(n);
    for (const c of Object.values(n.states)) visit(c);
  };
  visit(machine.root as unknown as NodeLike);
  return out;
}

const statePath = (n: NodeLike) => n.path.join('.') || '(root)';

/** The event of a transition in the words of the tables: done:/error: actor src, after: delay, always. */
function eventName(machine: AnyStateMachine, eventType: string): string {
  if (eventType === '') return 'always';
  const actor = /^xstate\.(done|error)\.actor\.(.+)$/.exec(eventType);
  if (actor) {
    const invocation = nodesOf(machine).flatMap((n) => n.invoke).find((i) => i.id === actor[2]);
    return `${actor[1]}:${invocation?.src ?? actor[2]}`;
  }
  const delayed = /^xstate\.after\.([^.]+)\./.exec(eventType);
  if (delayed) return `after:${delayed[1]}`;
  return eventType;
}

/** "source --event [guard]--> target": the gate's key of one transition. */
export function transitionKey(machine: AnyStateMachine, t: TransitionLike): string {
  const guard = typeof t.guard === 'string' ? t.guard : t.guard?.type ?? 'else';
  const target = (t.target ?? []).map(statePath).join(',') || '(self)';
  return `${statePath(t.source)} --${eventName(machine, t.eventType)} [${guard}]--> ${target}`;
}

/** Every transition of the machine's definition, by key. */
export function transitionsOf(machine: AnyStateMachine): string[] {
  const keys: string[] = [];
  for (const n of nodesOf(machine)) {
    for (const list of n.transitions.values()) for (const t of list) keys.push(transitionKey(machine, t));
    for (const t of n.always ?? []) keys.push(transitionKey(machine, t));
  }
  return keys;
}

/** Every state of the machine's definition. */
export function statesOf(machine: AnyStateMachine): string[] {
  return nodesOf(machine).filter((n) => n.path.length > 0).map(statePath);
}

/** The events the model offers in a snapshot: one per table row that fits the active states. */
function eventsFor<TScenario>(model: MachineModel<TScenario>, snapshot: AnyMachineSnapshot): ModelEvent[] {
  if (snapshot.status !== 'active') return [];
  const active = (snapshot as unknown as { _nodes: NodeLike[] })._nodes;
  const events: ModelEvent[] = [];
  for (const row of model.rows) {
    if (row.when && !row.when(snapshot)) continue;
    const [kind, name] = row.on.includes(':') ? row.on.split(':') : ['event', row.on];
    if (kind === 'done' || kind === 'error') {
      for (const node of active) {
        for (const inv of node.invoke) {
          if (inv.src !== name) continue;
          events.push(kind === 'done'
            ? { type: `xstate.done.actor.${inv.id}`, output: row.output?.(snapshot), row: rowLabel(row) }
            : { type: `xstate.error.actor.${inv.id}`, error: new Error(`model: ${row.case}`), row: rowLabel(row) });
        }
      }
    } else if (kind === 'after') {
      for (const node of active) {
        const type = `xstate.after.${name}.${node.id}`;
        if (node.transitions.has(type)) events.push({ type, row: rowLabel(row) });
      }
    } else if (snapshot.can({ type: row.on })) {
      events.push({ type: row.on, row: rowLabel(row) });
    }
  }
  return events;
}

const valueText = (value: unknown): string =>
  typeof value === 'string' ? value : Object.entries(value as Record<string, unknown>).map(([k, v]) => `${k}.${valueText(v)}`).join('+');

/** A path's name: its states and the rows taken between them; it is also how one path is replayed. */
function nameOf(path: StatePath<AnyMachineSnapshot, ModelEvent>): string {
  return path.steps.map((s, i) => (i === 0 ? valueText(s.state.value) : `-${s.event.row}-> ${valueText(s.state.value)}`)).join(' ');
}

/**
 * The same machine for the graph walk: the walk keeps one mock actor system for every snapshot, in
 * which an invoked actor's systemId would be taken twice; nothing else changes.
 */
function traversable(machine: AnyStateMachine): AnyStateMachine {
  const strip = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(strip);
    if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
      return Object.fromEntries(Object.entries(value).filter(([k]) => k !== 'systemId').map(([k, v]) => [k, strip(v)]));
    }
    return value;
  };
  return createMachine(strip(machine.config) as never, machine.implementations as never);
}

export type PathVariant = 'shortest' | 'simple';

/**
 * Paths of the model that together take every edge the graph utilities find (each edge is made its
 * own vertex by keeping the row that led there in the vertex), each continued to a resting state.
 */
export function pathsOf<TScenario>(model: MachineModel<TScenario>, variant: PathVariant): ModelPath[] {
  const options = {
    input: model.input,
    events: (s: AnyMachineSnapshot) => eventsFor(model, s),
    serializeState: (s: AnyMachineSnapshot, e: ModelEvent | undefined) =>
      // shortest: each edge its own vertex, so that every edge gets a path; simple: paths over states
      JSON.stringify([s.value, s.status, model.abstract(s), variant === 'shortest' ? e?.row ?? null : null]),
  };
  const walk = variant === 'shortest' ? getShortestPaths : getSimplePaths;
  const machine = traversable(model.machine);
  const found = walk(machine, options as never) as Array<StatePath<AnyMachineSnapshot, ModelEvent>>;
  const completed = found.map((p) => {
    if (model.rests(p.state) && p.steps.length > 1) return p;
    const onward = getShortestPaths(machine, { ...options, fromState: p.state, toState: (s: AnyMachineSnapshot) => model.rests(s) } as never) as Array<StatePath<AnyMachineSnapshot, ModelEvent>>;
    const rest = onward.filter((o) => o.steps.length > 1 && model.rests(o.state)).sort((a, b) => a.steps.length - b.steps.length)[0];
    return rest ? { ...p, state: rest.state, steps: [...p.steps, ...rest.steps.slice(1)] } : p;
  });
  const named = completed.map((p) => ({ ...p, name: nameOf(p) }));
  edgeContext = model.edgeContext ?? (() => null);
  const chosen = variant === 'simple' ? withoutPrefixes(named) : coveringEdges(named);
  return chosen
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((p) => ({ ...p, id: createHash('sha1').update(p.name).digest('hex').slice(0, 10), rows: p.steps.slice(1).map((s) => s.event.row) }));
}

type Named = StatePath<AnyMachineSnapshot, ModelEvent> & { name: string };

/** A path that another one starts with adds nothing. */
function withoutPrefixes(paths: Named[]): Named[] {
  const unique = [...new Map(paths.map((p) => [p.name, p])).values()];
  return unique.filter((p) => !unique.some((o) => o !== p && o.name.startsWith(`${p.name} `)));
}

/** The machine-level edges of a path: state, table row, next state. */
let edgeContext: (s: AnyMachineSnapshot) => unknown = () => null;
const edgesOf = (p: Named) => p.steps.slice(1).map((s, i) => {
  const from = p.steps[i].state;
  return `${valueText(from.value)} ${JSON.stringify(edgeContext(from))} -${s.event.row}-> ${valueText(s.state.value)}`;
});

/** Few paths that together take every edge any path takes (greedy: most new edges first). */
function coveringEdges(paths: Named[]): Named[] {
  const left = new Set(paths.flatMap(edgesOf));
  const pool = withoutPrefixes(paths);
  const chosen: Named[] = [];
  while (left.size > 0) {
    let best = pool[0];
    let gain = -1;
    for (const p of pool) {
      const g = new Set(edgesOf(p).filter((e) => left.has(e))).size;
      if (g > gain || (g === gain && p.steps.length < best.steps.length)) [best, gain] = [p, g];
    }
    if (gain <= 0) break;
    chosen.push(best);
    for (const e of edgesOf(best)) left.delete(e);
  }
  return chosen;
}

/** The paths to run now: all of them, or the one SOSYNC_MBT_PATH names (by its name or its id). */
export function selectedPaths<TScenario>(model: MachineModel<TScenario>): ModelPath[] {
  const variant: PathVariant = process.env.SOSYNC_MBT === 'simple' ? 'simple' : 'shortest';
  const paths = pathsOf(model, variant);
  const only = process.env.SOSYNC_MBT_PATH;
  return only ? paths.filter((p) => p.id === only || p.name === only) : paths;
}

/** The scenario a path needs: every row's `arrange`, in path order. */
export function scenarioOf<TScenario>(model: MachineModel<TScenario>, path: ModelPath, scenario: TScenario): TScenario {
  for (const label of path.rows) {
    const row = model.rows.find((r) => rowLabel(r) === label);
    if (!row) throw new Error(`no table row ${label}`);
    row.arrange(scenario);
  }
  return scenario;
}

/** The state values of a path, as its real run must go through them. */
export function statesAlong(path: ModelPath): string[] {
  return path.steps.map((s) => valueText(s.state.value));
}

export { valueText };

/**
 * The gate: every transition of the machine is taken by some real run, or is listed unreachable
 * with its reason. The message names the missing rows in the form the table needs.
 */
export function coverageGaps(model: MachineModel<unknown>, taken: Set<string>, reached: Set<string>): string[] {
  const gaps: string[] = [];
  for (const key of transitionsOf(model.machine)) {
    if (taken.has(key) || model.unreachable?.[key]) continue;
    const event = /--(\S+) \[/.exec(key)![1];
    gaps.push(`transition ${key}: taken by no real run — add a row { on: '${event === 'always' ? '<the event before it>' : event}', case: '…', arrange } to ${model.machine.id}'s table that makes it happen`);
  }
  for (const key of Object.keys(model.unreachable ?? {})) {
    if (!transitionsOf(model.machine).includes(key)) gaps.push(`unreachable entry ${key} is no transition of ${model.machine.id} any more: remove it`);
    else if (taken.has(key)) gaps.push(`unreachable entry ${key} was taken by a real run: remove it from the list`);
  }
  // a state that only unreachable transitions lead to is unreachable too
  const into = (state: string) => transitionsOf(model.machine).filter((k) => k.endsWith(`--> ${state}`));
  for (const state of statesOf(model.machine)) {
    const exempt = into(state).length > 0 && into(state).every((k) => model.unreachable?.[k]);
    if (!reached.has(state) && !exempt) gaps.push(`state ${state}: reached by no real run`);
  }
  return gaps;
}
