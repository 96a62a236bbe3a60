/**
 * The job machine's table: every way each invoked actor of a job can end, with the set-up in the
 * FS and FSO stand-ins (or the sync table) that makes a real job end that way. A new actor outcome,
 * guard or state needs a row here; the coverage gate says which.
 */
import type { AnyMachineSnapshot } from 'xstate';
import { jobMachine, MAX_JOB_RUNS } from '../../src/machines/job.ts';
import type { JobRow } from '../../src/adapters/syncTable/index.ts';
import type { CaseRow, MachineModel } from './model.ts';

/** What a real run of one path sets up; each table row fills in its part. */
export interface JobScenario {
  /** company: dbo.xBPKAccount ↔ res.company; bpk: res.partner.bpk with two child jobs */
  flow: 'company' | 'bpk';
  announcer: 'fs' | 'fso';
  delete: boolean;
  /** the job row was left by a crash: inprogress, started this often */
  priorRuns: number;
  records: 'fsNewer' | 'fsoNewer' | 'olderAnnounced' | 'equal' | 'targetMissing' | 'missing' | 'invalid';
  /** a CHECK on sync_table that refuses one bookkeeping write */
  tableRefuses: string | null;
  readFails: boolean;
  sourceChangesBeforeWrite: boolean;
  sourceUnreadable: boolean;
  writeFails: boolean;
  deleteFails: boolean;
  /** an older open job for the same record, closed by this one */
  superseded: boolean;
  /** per child job, in order: how its run ends */
  children: Array<'done' | 'fails' | 'requeued' | 'aborted'>;
  childListFails: boolean;
  /** the model of the child whose row the sync table refuses, if any */
  childOpenFails: string | null;
}

export const emptyJobScenario = (): JobScenario => ({
  flow: 'company', announcer: 'fs', delete: false, priorRuns: 0, records: 'fsNewer', tableRefuses: null,
  readFails: false, sourceChangesBeforeWrite: false, sourceUnreadable: false, writeFails: false, deleteFails: false,
  superseded: false, children: [], childListFails: false, childOpenFails: null,
});

type Snap = AnyMachineSnapshot & { context: any };
type Row = CaseRow<JobScenario, Snap>;

/** the bPK's child jobs, in the order its flow lists them */
export const childModels = ['res.company', 'res.partner'] as const;

const T1 = new Date('2026-05-01T10:00:00Z');
const T2 = new Date('2026-05-01T11:00:00Z');
const info = (id: number, foreignId: number | null, sosyncWriteDate: Date | null) => ({ id, foreignId, sosyncWriteDate, writeDate: sosyncWriteDate });

const modelJob: JobRow = {
  job_id: 1, job_state: 'new', job_source_system: 'fs', job_source_model: 'dbo.xBPKAccount', job_source_record_id: 10,
  job_source_type: '', job_run_count: 0, job_log: null, parent_job_id: null, job_end: null,
} as unknown as JobRow;

const job = (s: Snap): JobRow => s.context.job;
const announcedBy = (system: 'fs' | 'fso') => (s: Snap) => job(s).job_source_system === system;
const started = (s: Snap, patch: Partial<JobRow>): JobRow => ({ ...job(s), job_state: 'inprogress', job_run_count: job(s).job_run_count + 1, ...patch });
const facts = (announced: unknown, other: unknown) => () => ({ announced, other, otherModel: 'res.company' });
const childOutcome = (outcome: string) => (s: Snap) => ({ jobId: 100 + s.context.childIndex, outcome, message: outcome, endedAt: T2 });
/** an older job can be queued for the record only when the record exists before the job does */
const recordKnownEarly = (s: Snap) => !(s.context.facts?.announced && s.context.facts.other === null);
/** the sync table refuses this for the root job's row (child rows are left alone) */
const refuse = (check: string) => (sc: JobScenario) => { sc.tableRefuses = `parent_job_id IS NOT NULL OR (${check})`; };

const rows: Row[] = [
  // step 1
  { on: 'done:startJob', case: 'fsAnnounces', when: (s) => job(s).job_run_count === 0, output: (s) => started(s, {}), arrange: (sc) => { sc.announcer = 'fs'; } },
  { on: 'done:startJob', case: 'fsoAnnounces', when: (s) => job(s).job_run_count === 0, output: (s) => started(s, { job_source_system: 'fso', job_source_model: 'res.company' }), arrange: (sc) => { sc.announcer = 'fso'; } },
  { on: 'done:startJob', case: 'fsDeletes', when: (s) => job(s).job_run_count === 0, output: (s) => started(s, { job_source_type: 'delete' }), arrange: (sc) => { sc.announcer = 'fs'; sc.delete = true; } },
  { on: 'done:startJob', case: 'fsoDeletes', when: (s) => job(s).job_run_count === 0, output: (s) => started(s, { job_source_system: 'fso', job_source_model: 'res.company', job_source_type: 'delete' }), arrange: (sc) => { sc.announcer = 'fso'; sc.delete = true; } },
  { on: 'done:startJob', case: 'fifthStartAfterCrash', when: (s) => job(s).job_run_count === 0, output: (s) => started(s, { job_run_count: MAX_JOB_RUNS }), arrange: (sc) => { sc.priorRuns = MAX_JOB_RUNS - 1; } },
  { on: 'error:startJob', case: 'syncTableRefusesStart', arrange: refuse(`job_state <> 'inprogress'`) },
  // step 3 (the abstract records are seen from the announcing system)
  { on: 'done:readDirection', case: 'fsNewer', when: announcedBy('fs'), output: facts(info(10, 20, T2), info(20, 10, T1)), arrange: (sc) => { sc.records = 'fsNewer'; } },
  { on: 'done:readDirection', case: 'fsoNewer', when: announcedBy('fso'), output: facts(info(20, 10, T2), info(10, 20, T1)), arrange: (sc) => { sc.records = 'fsoNewer'; } },
  { on: 'done:readDirection', case: 'announcedIsOlder', when: announcedBy('fs'), output: facts(info(10, 20, T1), info(20, 10, T2)), arrange: (sc) => { sc.records = 'olderAnnounced'; } },
  { on: 'done:readDirection', case: 'equal', output: facts(info(10, 20, T1), info(20, 10, T1)), arrange: (sc) => { sc.records = 'equal'; } },
  { on: 'done:readDirection', case: 'targetMissingInFso', when: announcedBy('fs'), output: facts(info(10, null, T1), null), arrange: (sc) => { sc.records = 'targetMissing'; } },
  { on: 'done:readDirection', case: 'targetMissingInFs', when: announcedBy('fso'), output: facts(info(20, null, T1), null), arrange: (sc) => { sc.records = 'targetMissing'; } },
  { on: 'done:readDirection', case: 'announcedMissing', output: facts(null, null), arrange: (sc) => { sc.records = 'missing'; } },
  { on: 'done:readDirection', case: 'foreignIdWithoutSosyncWriteDate', when: announcedBy('fso'), output: facts(info(20, 999, null), null), arrange: (sc) => { sc.records = 'invalid'; } },
  { on: 'error:readDirection', case: 'fsoUnreadable', arrange: (sc) => { sc.readFails = true; } },
  // step 4: children exist only in the bPK flow, FSO → FS
  { on: 'done:listChildJobs', case: 'none', output: () => ({ children: [], at: T2 }), arrange: () => {} },
  {
    on: 'done:listChildJobs', case: 'companyAndPartner', when: (s) => s.context.direction?.source.system === 'fso' && job(s).job_source_system === 'fso',
    output: () => ({ children: [{ system: 'fso', model: 'res.company', recordId: 30 }, { system: 'fso', model: 'res.partner', recordId: 31 }], at: T2 }),
    arrange: (sc) => { sc.flow = 'bpk'; },
  },
  { on: 'error:listChildJobs', case: 'bpkLacksReferences', when: (s) => s.context.direction?.source.system === 'fso' && job(s).job_source_system === 'fso', arrange: (sc) => { sc.flow = 'bpk'; sc.childListFails = true; } },
  { on: 'done:openChildJob', case: 'new', output: (s) => ({ ...modelJob, job_id: 100 + s.context.childIndex, job_state: 'new', parent_job_id: 1 }), arrange: (sc) => { sc.children.push('done'); } },
  { on: 'error:openChildJob', case: 'syncTableRefusesChild', arrange: (sc) => { sc.childOpenFails = childModels[sc.children.length]; } },
  { on: 'done:childJob', case: 'done', output: childOutcome('done'), arrange: () => {} },
  { on: 'done:childJob', case: 'fails', output: childOutcome('error'), arrange: (sc) => { sc.children[sc.children.length - 1] = 'fails'; } },
  { on: 'done:childJob', case: 'requeued', output: childOutcome('requeued'), arrange: (sc) => { sc.children[sc.children.length - 1] = 'requeued'; } },
  { on: 'done:childJob', case: 'aborted', output: childOutcome('aborted'), arrange: (sc) => { sc.children[sc.children.length - 1] = 'aborted'; } },
  // step 5
  { on: 'done:readSourceInfo', case: 'unchanged', output: (s) => s.context.direction.source.info, arrange: () => {} },
  { on: 'done:readSourceInfo', case: 'changedSinceStep3', output: (s) => ({ ...s.context.direction.source.info, sosyncWriteDate: new Date('2026-05-01T12:00:00Z') }), arrange: (sc) => { sc.sourceChangesBeforeWrite = true; } },
  { on: 'error:readSourceInfo', case: 'sourceUnreadable', arrange: (sc) => { sc.sourceUnreadable = true; } },
  // step 6 and deletes
  { on: 'done:writeTarget', case: 'written', output: () => ({ evidence: { summary: 'written' }, start: T2, end: T2 }), arrange: () => {} },
  { on: 'error:writeTarget', case: 'targetRefuses', arrange: (sc) => { sc.writeFails = true; } },
  { on: 'done:deleteCounterpart', case: 'deleted', output: () => ({ evidence: { summary: 'deleted' }, start: T2, end: T2 }), arrange: () => {} },
  { on: 'error:deleteCounterpart', case: 'targetRefuses', arrange: (sc) => { sc.deleteFails = true; } },
  // steps 7–9
  { on: 'done:recordOutcome', case: 'recorded', when: (s) => s.matches('requeueing'), output: (s) => job(s), arrange: () => {} },
  { on: 'error:recordOutcome', case: 'syncTableRefusesRequeue', when: (s) => s.matches('requeueing'), arrange: refuse(`job_log IS NULL OR job_log NOT LIKE '%runs again%'`) },
  // steps 7–9 are one write: each refusal leaves all of it unstored
  { on: 'done:finishJob', case: 'none', output: (s) => ({ job: { ...job(s), job_end: T2 }, closedJobs: [] }), arrange: () => {} },
  { on: 'done:finishJob', case: 'closedOlderJob', when: recordKnownEarly, output: (s) => ({ job: { ...job(s), job_end: T2 }, closedJobs: [2] }), arrange: (sc) => { sc.superseded = true; } },
  { on: 'error:finishJob', case: 'syncTableRefusesOutcome', arrange: refuse(`job_state NOT IN ('done', 'error')`) },
  { on: 'error:finishJob', case: 'syncTableRefusesSkip', when: recordKnownEarly, arrange: (sc) => { sc.superseded = true; refuse(`job_state <> 'skipped'`)(sc); } },
  { on: 'error:finishJob', case: 'syncTableRefusesMark', arrange: refuse('NOT job_to_fso_can_sync') },
];

export const jobModel: MachineModel<JobScenario, Snap> = {
  machine: jobMachine,
  input: { job: modelJob, ancestors: [] },
  rows,
  abstract: (s) => {
    const c = s.context;
    // the error code too: a path's end state must be its own (the check compares the row's code with it)
    return [c.job.job_source_system, c.job.job_source_type, c.job.job_run_count >= MAX_JOB_RUNS, c.outcome, c.error?.code, c.direction?.source.system,
      c.children.length, c.childIndex, c.unfinishedChildren.length > 0, c.currentChild?.job_state];
  },
  // each step once per announcing system and direction, and each way of finishing once per outcome
  edgeContext: (s) => [s.context.job.job_source_system, s.context.direction?.source.system, s.context.outcome],
  rests: (s) => s.status === 'done',
  // children.opened --always [childFailed]--> finishing is taken by a rerun: a parent whose end the
  // sync table refused after its child failed (…childJob(fails) → error:finishJob) stays inprogress,
  // and its next run finds the child's row in error
  unreachable: {
    'children.next --always [childIsCycle]--> finishing':
      'no production flow lists a child that is its own ancestor (bPK → company, partner; those list none)',
    'children.running --error:childJob [else]--> finishing':
      'the child runs through this machine, which ends with an output even when a step fails',
  },
};
