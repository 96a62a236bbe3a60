/**
 * SPEC §4.2 step 3 as a pure function: given the model info of both sides, which one is the
 * sync source, or is there nothing to do, or is the state invalid.
 */
import { modelOf, otherSystem, type Flow, type ModelInfo, type SystemName } from './flow.ts';

export type DirectionVerdict =
  | { kind: 'upToDate'; at: Date }
  | { kind: 'announcedIsSource'; targetExists: boolean }
  | { kind: 'otherIsSource' }
  | { kind: 'invalid'; reason: string };

function effectiveDate(info: ModelInfo): Date | null {
  return info.sosyncWriteDate ?? info.writeDate;
}

/**
 * `announced` is the record on the announcing system; `other` its counterpart, when found.
 */
export function decideDirection(announced: ModelInfo, other: ModelInfo | null, announcedLabel = 'announced record', otherLabel = 'counterpart'): DirectionVerdict {
  for (const [info, label] of [[announced, announcedLabel], [other, otherLabel]] as const) {
    if (info && info.foreignId !== null && info.sosyncWriteDate === null) {
      return { kind: 'invalid', reason: `${label} ${info.id} has a foreign id (${info.foreignId}) but no sosync_write_date` };
    }
  }
  if (other === null) return { kind: 'announcedIsSource', targetExists: false };
  const a = effectiveDate(announced);
  const b = effectiveDate(other);
  if (a === null) return { kind: 'invalid', reason: `${announcedLabel} ${announced.id} has neither sosync_write_date nor write_date` };
  if (b === null) return { kind: 'invalid', reason: `${otherLabel} ${other.id} has neither sosync_write_date nor write_date` };
  if (a.getTime() === b.getTime()) {
    // equal stamps but a half-made link (an interrupted create that never wrote the id back):
    // sync once more so the write-back completes; the write finds and updates the counterpart
    const linked = announced.foreignId === other.id && other.foreignId === announced.id;
    return linked ? { kind: 'upToDate', at: a } : { kind: 'announcedIsSource', targetExists: true };
  }
  return a.getTime() > b.getTime() ? { kind: 'announcedIsSource', targetExists: true } : { kind: 'otherIsSource' };
}

/** The model info of an announced record and of its counterpart, as the direction step reads them. */
export interface RecordAndCounterpart {
  /** the announced record on the announcing system (null: it does not exist) */
  announced: ModelInfo | null;
  /** its counterpart on the other system (by foreign id, or found pointing back) */
  other: ModelInfo | null;
  /** the other system's model name */
  otherModel: string;
}

/** Reads both sides of a record for the direction step; reads only, writes nothing. */
export async function readRecordAndCounterpart(flow: Flow, system: SystemName, recordId: number): Promise<RecordAndCounterpart> {
  const other = otherSystem(system);
  const otherModel = modelOf(flow, other);
  const announced = await flow.readModelInfo(system, recordId);
  if (!announced) return { announced: null, other: null, otherModel };
  // by its foreign id; failing that, a counterpart pointing back (an interrupted earlier create)
  const counterpart = (announced.foreignId !== null ? await flow.readModelInfo(other, announced.foreignId) : null)
    ?? (await flow.findByForeignId(other, announced.id));
  return { announced, other: counterpart, otherModel };
}
