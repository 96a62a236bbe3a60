/**
 * What the real runs did, read from the actor system's inspection: the transitions each machine
 * took (for the gate), the states it was in, each job actor's sequence of states, and the
 * inspection stream's messages as the live page gets them (saved for a failed path).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AnyStateMachine, InspectionEvent } from 'xstate';
import { createInspection } from '../../src/inspection/index.ts';
import { silentLogger } from '../../src/log.ts';
import { transitionKey, valueText, type TransitionLike } from './model.ts';

interface ActorRun {
  machine: string;
  parentMachine: string | null;
  jobId: number | null;
  values: string[];
}

const logicOf = (ref: unknown) => (ref as { logic?: AnyStateMachine } | undefined)?.logic;

export class Recorder {
  readonly taken = new Map<string, Set<string>>();
  readonly reached = new Map<string, Set<string>>();
  readonly machines = new Map<string, AnyStateMachine>();
  private runs = new Map<string, ActorRun>();
  private messages: string[] = [];
  private inspection = createInspection(silentLogger(), { historySize: 1 });

  constructor() {
    this.inspection.subscribe((m) => this.messages.push(m));
  }

  readonly inspect = (event: InspectionEvent): void => {
    this.inspection.observer.next?.(event);
    const logic = logicOf(event.actorRef);
    if (!logic || !('root' in logic)) return;
    const id = logic.id;
    this.machines.set(id, logic);
    const reach = (snapshot: unknown) => {
      const set = this.reached.get(id) ?? new Set<string>();
      for (const n of (snapshot as { _nodes?: Array<{ path: string[] }> })._nodes ?? []) if (n.path.length) set.add(n.path.join('.'));
      this.reached.set(id, set);
    };
    if (event.type === '@xstate.microstep') {
      const set = this.taken.get(id) ?? new Set<string>();
      for (const t of event._transitions as unknown as TransitionLike[]) set.add(transitionKey(logic, t));
      this.taken.set(id, set);
      reach(event.snapshot);
    }
    if (event.type === '@xstate.snapshot') {
      reach(event.snapshot);
      const snapshot = event.snapshot as { value?: unknown; context?: { job?: { job_id: number } } };
      let run = this.runs.get(event.actorRef.sessionId);
      if (!run) {
        const parent = (event.actorRef as unknown as { _parent?: unknown })._parent;
        run = { machine: id, parentMachine: logicOf(parent)?.id ?? null, jobId: null, values: [] };
        this.runs.set(event.actorRef.sessionId, run);
      }
      if (snapshot.context?.job) run.jobId = snapshot.context.job.job_id;
      const value = valueText(snapshot.value);
      if (run.values[run.values.length - 1] !== value) run.values.push(value);
    }
  };

  /** The state sequences of the root job actors that ran this job, in order of their runs. */
  jobRuns(jobId: number): string[][] {
    return [...this.runs.values()].filter((r) => r.machine === 'job' && r.parentMachine === 'supervisor' && r.jobId === jobId).map((r) => r.values);
  }

  /** The states the newest actor of this machine went through so far (a worker lives as long as its service). */
  valuesOf(machine: string): string[] {
    return [...this.runs.values()].reverse().find((r) => r.machine === machine)?.values ?? [];
  }

  /** Starts a fresh record of messages (one path's). */
  startPath(): void {
    this.messages = [];
  }

  /** Saves this path's inspection messages (a JSON array of the stream's messages) and returns the file. */
  saveMessages(pathId: string): string {
    const file = path.join(os.tmpdir(), `sosync-mbt-${pathId}-${process.pid}.json`);
    fs.writeFileSync(file, JSON.stringify(this.messages.map((m) => JSON.parse(m))));
    return file;
  }
}
