/**
 * Every state and every transition of the job machine is taken by some scenario, run through the
 * real supervisor over a real sync table (PGlite) with in-memory systems. The transitions are
 * read from XState's inspection (microsteps), so a transition added to the machine without a
 * scenario that takes it makes this test fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AnyStateMachine, InspectionEvent } from 'xstate';
import { startHarness, type Harness } from '../support/engine.ts';
import { FlowError } from '../../src/flows/flow.ts';
import type { JobRow } from '../../src/adapters/syncTable/index.ts';
import { sleep } from '../support/wait.ts';

type Transition = { source: { path: string[] }; target?: Array<{ path: string[] }>; eventType: string };
type Node = { path: string[]; states: Record<string, Node>; transitions: Map<string, Transition[]>; always?: Transition[] };

/** Transitions that only a bug inside a child machine could take; kept as a safety net. */
const unreachableByDesign = new Set(['children.running --xstate.error.actor--> finishing']);

const describe = (t: Transition) => {
  const event = t.eventType.replace(/^(xstate\.(done|error)\.actor)\..*$/, '$1') || 'always';
  return `${t.source.path.join('.')} --${event}--> ${(t.target ?? []).map((n) => n.path.join('.')).join(',') || '(self)'}`;
};

function allTransitions(machine: AnyStateMachine): Map<string, Transition> {
  const out = new Map<string, Transition>();
  const visit = (node: Node) => {
    for (const list of node.transitions.values()) for (const t of list) out.set(describe(t), t);
    for (const t of node.always ?? []) out.set(describe(t), t);
    for (const child of Object.values(node.states)) visit(child);
  };
  visit(machine.root as unknown as Node);
  return out;
}

function allStates(machine: AnyStateMachine): string[] {
  const out: string[] = [];
  const visit = (node: Node) => {
    if (node.path.length) out.push(node.path.join('.'));
    for (const child of Object.values(node.states)) visit(child);
  };
  visit(machine.root as unknown as Node);
  return out;
}

const t = (s: number) => new Date(Date.UTC(2026, 4, 1, 12, 0, s));

test('every state and transition of the job machine is covered', async () => {
  const seen = new Set<string>();
  const visited = new Set<string>(['start']);
  let jobLogic: AnyStateMachine | null = null;
  const inspect = (event: InspectionEvent) => {
    if (event.type !== '@xstate.microstep') return;
    const logic = (event.actorRef as unknown as { logic?: AnyStateMachine }).logic;
    if (logic?.id !== 'job') return;
    jobLogic = logic;
    for (const tr of event._transitions as unknown as Transition[]) {
      seen.add(describe(tr));
      // a state that a transition left was active (initial substates are entered without a transition)
      visited.add(tr.source.path.join('.'));
      for (const target of tr.target ?? []) visited.add(target.path.join('.'));
    }
  };
  const h: Harness = await startHarness('pglite', { inspect, faultRetryMs: 60_000 });
  const { store } = h.table;
  const fs = h.flow.fs;
  const fso = h.flow.fso;

  async function announce(system: 'fs' | 'fso', id: number, extra: Partial<JobRow> = {}): Promise<JobRow> {
    const rec = h.flow.system(system).records.get(id);
    return store.createJob({
      job_date: new Date(), job_source_system: system, job_source_model: system === 'fs' ? 'dbo.Thing' : 'x.thing',
      job_source_record_id: id, job_source_sosync_write_date: extra.job_source_sosync_write_date ?? rec?.sosyncWriteDate ?? null,
      job_source_type: extra.job_source_type ?? '',
    });
  }
  async function run(): Promise<void> {
    h.workers.control.processJobs();
    await sleep(20);
    await h.workers.whenIdle();
  }
  /** a scenario whose bookkeeping write fails: the job aborts and the supervisor faults */
  async function aborting(check: string, prepare: () => Promise<unknown>): Promise<void> {
    await h.table.db.query(`ALTER TABLE sync_table ADD CONSTRAINT coverage_fault CHECK (${check}) NOT VALID`);
    await prepare();
    h.workers.control.processJobs();
    const end = Date.now() + 10_000;
    while (!h.workers.supervisor.getSnapshot().matches('faulted') && Date.now() < end) await sleep(10);
    assert.ok(h.workers.supervisor.getSnapshot().matches('faulted'), `supervisor faulted for ${check}`);
    await h.table.db.query('ALTER TABLE sync_table DROP CONSTRAINT coverage_fault');
    await h.table.db.query(`UPDATE sync_table SET job_state = 'done' WHERE job_state IN ('new', 'inprogress')`);
    h.workers.control.processJobs();
    await sleep(20);
    await h.workers.whenIdle();
  }
  const reset = () => {
    h.flow.hooks = {};
  };

  try {
    // create, then update with the other side newer, then up to date
    const a = fs.insert({ v: 1 }, { sosyncWriteDate: t(1) });
    await announce('fs', a.id);
    await run();
    const aTarget = fso.records.get(a.foreignId!)!;
    aTarget.sosyncWriteDate = t(5);
    await announce('fs', a.id);
    await run();
    await announce('fso', aTarget.id);
    await run();
    // invalid state: a foreign id without sosync_write_date
    const inv = fs.insert({}, { sosyncWriteDate: null }, 999);
    await announce('fs', inv.id);
    await run();
    // announced record missing; read failing
    await announce('fso', 4711);
    await run();
    const unreadable = fs.insert({}, { sosyncWriteDate: t(1) });
    h.flow.hooks.onRead = async (_s, id) => {
      if (id === unreadable.id) throw new Error('read failed');
    };
    await announce('fs', unreadable.id);
    await run();
    reset();
    // run count exceeded
    const tired = fs.insert({}, { sosyncWriteDate: t(1) });
    const tiredJob = await announce('fs', tired.id);
    await store.updateJob(tiredJob.job_id, { job_run_count: 4 });
    await run();
    // deletes: done and failing
    await announce('fs', 31337, { job_source_type: 'delete' });
    await run();
    h.flow.hooks.beforeDelete = () => {
      throw new FlowError('delete refused');
    };
    await announce('fs', 31338, { job_source_type: 'delete' });
    await run();
    reset();
    // children: listing fails; a cycle; opening fails; child already failed / done; child fails; child requeues; child done
    const parent = fso.insert({ p: 1 }, { sosyncWriteDate: t(2) });
    h.flow.hooks.children = () => {
      throw new FlowError('children unknown');
    };
    await announce('fso', parent.id);
    await run();
    h.flow.hooks.children = (d) => [{ system: 'fso', model: 'x.thing', recordId: d.source.recordId }];
    await announce('fso', parent.id);
    await run();
    h.flow.hooks.children = (d) => (d.source.recordId === parent.id ? [{ system: 'fso', model: 'x'.repeat(300), recordId: 1 }] : []);
    await announce('fso', parent.id);
    await run();
    const child = fso.insert({ c: 1 }, { sosyncWriteDate: t(1) });
    h.flow.hooks.children = (d) => (d.source.recordId === parent.id ? [{ system: 'fso', model: 'x.thing', recordId: child.id }] : []);
    for (const state of ['error', 'done'] as const) {
      const job = await announce('fso', parent.id);
      const pre = await store.findOrCreateChildJob(job.job_id, 'fso', 'x.thing', child.id, new Date());
      await store.updateJob(pre.job.job_id, { job_state: state, job_error_text: state === 'error' ? 'earlier failure' : null });
      await run();
    }
    // (the parent is in sync by now: a fresh one needs its children again)
    const orphan = fso.insert({ p: 2 }, { sosyncWriteDate: t(2) });
    h.flow.hooks.children = (d) => (d.source.recordId === orphan.id ? [{ system: 'fso', model: 'x.thing', recordId: 8080 }] : []);
    await announce('fso', orphan.id);
    await run();
    let childRuns = 0;
    h.flow.hooks.children = (d) => {
      if (d.source.recordId === child.id && childRuns++ === 0) child.sosyncWriteDate = t(9);
      return d.source.recordId === parent.id ? [{ system: 'fso', model: 'x.thing', recordId: child.id }] : [];
    };
    parent.sosyncWriteDate = t(20);
    await announce('fso', parent.id);
    await run();
    reset();
    // consistency: the source changes; the re-read fails
    const moving = fs.insert({}, { sosyncWriteDate: t(1) });
    let reads = 0;
    h.flow.hooks.children = () => {
      if (reads++ === 0) moving.sosyncWriteDate = t(2);
      return [];
    };
    await announce('fs', moving.id);
    await run();
    reset();
    const flaky = fs.insert({}, { sosyncWriteDate: t(1) });
    let flakyReads = 0;
    h.flow.hooks.onRead = async (_s, id) => {
      if (id === flaky.id && ++flakyReads === 2) throw new Error('source unreachable');
    };
    await announce('fs', flaky.id);
    await run();
    reset();
    // the write fails
    const refused = fs.insert({}, { sosyncWriteDate: t(1) });
    h.flow.hooks.beforeWrite = () => {
      throw new FlowError('target refused');
    };
    await announce('fs', refused.id);
    await run();
    reset();

    // the sync table refuses a bookkeeping write at each step
    const b = () => fs.insert({}, { sosyncWriteDate: t(3) });
    await aborting(`job_state <> 'inprogress'`, () => announce('fs', b().id));
    await aborting(`job_state <> 'done'`, () => announce('fs', b().id));
    await aborting(`job_state <> 'error'`, () => announce('fso', 5150));
    const superseding = b();
    await aborting(`job_state <> 'skipped'`, async () => {
      await announce('fs', superseding.id, { job_source_sosync_write_date: t(1) });
      await store.createJob({ job_date: new Date(), job_source_system: 'fs', job_source_model: 'dbo.Thing', job_source_record_id: superseding.id, job_source_sosync_write_date: t(3), job_priority: 2000 });
    });
    await aborting(`NOT job_to_fso_can_sync`, () => announce('fs', b().id));
    const requeued = b();
    let rq = 0;
    h.flow.hooks.children = () => {
      if (rq++ === 0) requeued.sosyncWriteDate = t(4);
      return [];
    };
    await aborting(`job_log IS NULL OR job_log NOT LIKE '%runs again%'`, () => announce('fs', requeued.id));
    reset();

    assert.ok(jobLogic, 'inspection saw the job machine');
    const all = allTransitions(jobLogic!);
    const missing = [...all.keys()].filter((k) => !seen.has(k) && !unreachableByDesign.has(k));
    assert.deepEqual(missing, [], `transitions no scenario took:\n${missing.join('\n')}`);
    for (const k of unreachableByDesign) assert.ok(all.has(k), `${k} is still a transition of the machine`);
    const states = allStates(jobLogic!).filter((s) => !visited.has(s) && !allStates(jobLogic!).some((o) => o.startsWith(`${s}.`) && visited.has(o)));
    assert.deepEqual(states, [], `states no scenario reached: ${states.join(', ')}`);
  } finally {
    await h.close();
  }
});
