/**
 * What a flow supplies: one FS model bound to one FSO model, how to read either side's model
 * info, which child jobs a sync needs, and how to transform and write (or delete) in either
 * direction. The job machine decides *when*; a flow knows *what*.
 */
import type { SystemName } from '../adapters/syncTable/index.ts';

export type { SystemName };

/** What the direction step needs of one record (SPEC §4.2 step 3). */
export interface ModelInfo {
  id: number;
  /** the other system's id of this record (`sosync_fso_id` on FS, `sosync_fs_id` on FSO) */
  foreignId: number | null;
  sosyncWriteDate: Date | null;
  writeDate: Date | null;
  /**
   * The whole record as this read found it (the flow's row, stack or FSO fields), when the read
   * fetched it along: the write then transforms the record the consistency step has just re-read
   * (SPEC §4.2 step 5) and keeps the target the direction step read as its "before", instead of
   * reading either again. Opaque to the engine; only the flow that read it knows its shape.
   */
  record?: unknown;
}

export interface RecordRef {
  system: SystemName;
  model: string;
  recordId: number;
}

/** The decision of the direction step. */
export interface SyncDirection {
  source: RecordRef & { info: ModelInfo };
  target: { system: SystemName; model: string; recordId: number | null; info: ModelInfo | null };
}

/** What a write leaves on the job row (SPEC §4.2 step 6). */
export interface SyncEvidence {
  /** the target written (null when a failed write never got one) */
  targetRecordId: number | null;
  sourceData: unknown;
  /** the target as it was before an update (absent for a create) */
  targetDataBefore?: unknown;
  /** raw request (XML-RPC for FSO; written row data for FS) */
  targetRequest: string;
  /** raw answer ("success" or the error for FS) */
  targetAnswer: string;
  /** one line for job_log, e.g. "created res.partner 12" */
  summary: string;
}

/** An error that ends the job with a clear message; `evidence` is kept on the row when present. */
export class FlowError extends Error {
  constructor(message: string, readonly evidence?: Partial<SyncEvidence>) {
    super(message);
    this.name = 'FlowError';
  }
}

/** How the counterpart of a deleted record is removed on a system (SPEC §6.4). */
export type DeleteAction = 'delete' | 'deactivate' | 'unlink';

/** One mapped field of an FS record and its FSO counterpart, side by side. */
export interface FieldComparison {
  fs_field: string;
  fso_field: string;
  /** the FS value as the flow would write it to FSO (null: empty or no FS record) */
  fs_value: unknown;
  fso_value: unknown;
  differs: boolean;
}

export interface Flow {
  /** short name for logs: "company", "partner", "partner bPK" */
  readonly name: string;
  readonly models: { readonly fs: string; readonly fso: string };
  /** the systems a sync may start from (partner bPK: FSO only) */
  readonly syncsFrom: readonly SystemName[];
  /** the models whose records a sync needs synced first, as child jobs */
  readonly childJobModels: ReadonlyArray<{ readonly system: SystemName; readonly model: string }>;
  /** how the counterpart of a deleted record is removed, per system it lives on */
  readonly deletes: Readonly<Record<SystemName, DeleteAction>>;
  /** the mapped fields of an FS record and an FSO record side by side; reads only */
  compareFields(fsId: number | null, fsoId: number | null): Promise<FieldComparison[]>;
  /** model info of a record by its own id on `system`; null when it does not exist */
  readModelInfo(system: SystemName, id: number): Promise<ModelInfo | null>;
  /** the record on `system` whose foreign id is `foreignId` (an earlier, maybe interrupted, sync) */
  findByForeignId(system: SystemName, foreignId: number): Promise<ModelInfo | null>;
  /** records to sync first, in this order (SPEC §4.2 step 4) */
  childJobs(direction: SyncDirection): Promise<RecordRef[]>;
  /** transform the source and create or update the target (SPEC §4.2 step 6) */
  write(direction: SyncDirection): Promise<SyncEvidence>;
  /**
   * SPEC §6.4: remove (or deactivate) the counterpart of a deleted record on `targetSystem`.
   * `targetRecordId` is the announced target id when the announcement carried one.
   * Returns null when there is no counterpart (nothing to do).
   */
  deleteCounterpart(sourceSystem: SystemName, sourceRecordId: number, targetRecordId: number | null): Promise<SyncEvidence | null>;
}

export function otherSystem(system: SystemName): SystemName {
  return system === 'fs' ? 'fso' : 'fs';
}

export function modelOf(flow: Flow, system: SystemName): string {
  return system === 'fs' ? flow.models.fs : flow.models.fso;
}
