/**
 * GET /service/quick-check: one record as a job would see it now — both sides' model info, the
 * flow's mapped fields side by side, and what a job would do. Reads only: nothing is written
 * and no job is created. The direction is decided exactly as the job's direction step does.
 */
import { otherSystem, type Flow, type FieldComparison, type ModelInfo, type RecordRef, type SyncDirection, type SystemName } from './flow.ts';
import { decideDirection, readRecordAndCounterpart } from './direction.ts';

export interface SideInfo {
  system: SystemName;
  model: string;
  id: number;
  foreign_id: number | null;
  write_date: Date | null;
  sosync_write_date: Date | null;
}

export type QuickCheckAction = 'sync' | 'up to date' | 'error';

export interface QuickCheck {
  flow: string;
  system: SystemName;
  model: string;
  record_id: number;
  /** the record on FS and on FSO (null: not there) */
  fs: SideInfo | null;
  fso: SideInfo | null;
  fields: FieldComparison[];
  differences: number;
  action: QuickCheckAction;
  /** with action "sync": from where to where; target_record_id null means it would be created */
  direction: {
    source_system: SystemName; source_model: string; source_record_id: number;
    target_system: SystemName; target_model: string; target_record_id: number | null;
  } | null;
  /** with action "sync": the records the flow would sync first as child jobs */
  child_jobs: RecordRef[];
  reason: string | null;
}

function side(system: SystemName, model: string, info: ModelInfo | null): SideInfo | null {
  return info && { system, model, id: info.id, foreign_id: info.foreignId, write_date: info.writeDate, sosync_write_date: info.sosyncWriteDate };
}

export async function quickCheck(flow: Flow, model: string, recordId: number): Promise<QuickCheck> {
  const system: SystemName = model === flow.models.fs ? 'fs' : 'fso';
  const other = otherSystem(system);
  const facts = await readRecordAndCounterpart(flow, system, recordId);
  const sides = { [system]: side(system, model, facts.announced), [other]: side(other, facts.otherModel, facts.other) } as Record<SystemName, SideInfo | null>;
  const fields = await flow.compareFields(sides.fs?.id ?? null, sides.fso?.id ?? null);
  const answer: QuickCheck = {
    flow: flow.name, system, model, record_id: recordId, fs: sides.fs, fso: sides.fso,
    fields, differences: fields.filter((f) => f.differs).length,
    action: 'error', direction: null, child_jobs: [], reason: null,
  };
  const announced = facts.announced;
  if (!announced) return { ...answer, reason: `${system} ${model} ${recordId} does not exist` };

  const verdict = decideDirection(announced, facts.other, `${system} ${model}`, `${other} ${facts.otherModel}`);
  if (verdict.kind === 'invalid') return { ...answer, reason: verdict.reason };
  if (verdict.kind === 'upToDate') {
    return { ...answer, action: 'up to date', reason: `sosync_write_date ${verdict.at.toISOString()} on both sides` };
  }
  const announcedRef = { system, model, recordId: announced.id, info: announced };
  const otherRef = { system: other, model: facts.otherModel, recordId: facts.other?.id ?? null, info: facts.other };
  const direction: SyncDirection = verdict.kind === 'announcedIsSource'
    ? { source: announcedRef, target: otherRef }
    : { source: { ...otherRef, recordId: facts.other!.id, info: facts.other! }, target: announcedRef };
  const described = {
    source_system: direction.source.system, source_model: direction.source.model, source_record_id: direction.source.recordId,
    target_system: direction.target.system, target_model: direction.target.model, target_record_id: direction.target.recordId,
  };
  if (!flow.syncsFrom.includes(direction.source.system)) {
    return { ...answer, direction: described, reason: `${direction.source.system} is newer, but the ${flow.name} flow syncs from ${flow.syncsFrom.join(', ')} only` };
  }
  return { ...answer, action: 'sync', direction: described, child_jobs: await flow.childJobs(direction) };
}
