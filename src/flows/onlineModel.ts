/**
 * The FSO side of a flow, the same for every model: model info, lookup by `sosync_fs_id`, create
 * or update with the raw XML-RPC exchange as evidence, the id write-back, and deletion; and the
 * FS → FSO create-or-update every flow shares.
 */
import type { OnlineClient, OnlineRecord, RecordingOnlineClient } from '../adapters/online/index.ts';
import { keepEvidence, syncEvidence } from './evidence.ts';
import { FlowError, type ModelInfo, type SyncDirection, type SyncEvidence } from './flow.ts';

const infoFields = ['sosync_fs_id', 'sosync_write_date', 'write_date'];

/** FSO keeps sosync_write_date as text (ISO with Z). */
export function parseSosyncWriteDate(value: unknown): Date | null {
  if (value === null || value === undefined || value === false || value === '') return null;
  if (value instanceof Date) return value;
  const d = new Date(String(value));
  return Number.isNaN(d.getTime()) ? null : d;
}

export function formatSosyncWriteDate(date: Date): string {
  return date.toISOString();
}

export interface OnlineWriteResult {
  id: number;
  created: boolean;
  before?: OnlineRecord;
  request: string;
  answer: string;
}

export class OnlineModel {
  constructor(
    readonly online: OnlineClient,
    readonly model: string,
    /** the model has `active`: a delete deactivates instead of unlinking */
    readonly hasActive: boolean,
    /**
     * the fields the flow transforms or keeps as "before": read along with the model info, so one
     * call serves the direction or consistency step and the write (ModelInfo.record)
     */
    readonly fields: readonly string[] = [],
  ) {}

  toInfo(record: OnlineRecord): ModelInfo {
    return {
      id: record.id,
      foreignId: typeof record.sosync_fs_id === 'number' && record.sosync_fs_id > 0 ? record.sosync_fs_id : null,
      sosyncWriteDate: parseSosyncWriteDate(record.sosync_write_date),
      writeDate: record.write_date instanceof Date ? record.write_date : parseSosyncWriteDate(record.write_date),
      record,
    };
  }

  /** the model info with the flow's fields (ModelInfo.record) */
  async readInfo(id: number): Promise<ModelInfo | null> {
    const record = await this.read(id, this.fields);
    return record ? this.toInfo(record) : null;
  }

  async read(id: number, fields: readonly string[]): Promise<OnlineRecord | null> {
    return this.online.readOne(this.model, id, [...new Set([...fields, ...infoFields])]);
  }

  /** the FSO record that points at FS record `fsId` */
  async findIdByFsId(fsId: number): Promise<number | null> {
    const ids = await this.online.search(this.model, [['sosync_fs_id', '=', fsId]], {
      limit: 1,
      order: 'id',
      context: this.hasActive ? { active_test: false } : undefined,
    });
    return ids[0] ?? null;
  }

  async findInfoByFsId(fsId: number): Promise<ModelInfo | null> {
    const id = await this.findIdByFsId(fsId);
    return id === null ? null : this.readInfo(id);
  }

  /** This write's own exchange (the client is shared with the protocol worker). */
  private static exchangeOf(recorded: RecordingOnlineClient): { request: string; answer: string } {
    const last = recorded.exchanges.at(-1);
    return { request: last?.request ?? '', answer: last?.response ?? '' };
  }

  /**
   * Updates the target when it is known or an earlier (interrupted) run already created it —
   * found by `sosync_fs_id` — and creates it otherwise. Never creates twice.
   */
  async upsert(
    targetId: number | null, fsId: number, values: Record<string, unknown>, fieldsBefore: string[], knownBefore?: OnlineRecord,
  ): Promise<OnlineWriteResult> {
    const id = targetId ?? (await this.findIdByFsId(fsId));
    const stamped = { ...values, sosync_fs_id: fsId };
    const recorded = this.online.recording();
    if (id !== null) {
      const before = knownBefore?.id === id ? knownBefore : await this.read(id, fieldsBefore);
      if (!before) throw new FlowError(`${this.model} ${id} does not exist any more`);
      await recorded.write(this.model, id, stamped);
      return { id, created: false, before, ...OnlineModel.exchangeOf(recorded) };
    }
    const created = await recorded.create(this.model, stamped);
    return { id: created, created: true, ...OnlineModel.exchangeOf(recorded) };
  }

  /** After FS created a record: FSO learns its FS id (no announcement: the loop-guard context). */
  async writeBackFsId(id: number, fsId: number): Promise<void> {
    await this.online.write(this.model, id, { sosync_fs_id: fsId });
  }

  /** SPEC §6.4: deactivate where the model has `active`, else unlink. */
  async remove(id: number): Promise<{ request: string; answer: string; summary: string }> {
    const recorded = this.online.recording();
    if (this.hasActive) {
      await recorded.write(this.model, id, { active: false });
      return { ...OnlineModel.exchangeOf(recorded), summary: `deactivated ${this.model} ${id}` };
    }
    await recorded.unlink(this.model, id);
    return { ...OnlineModel.exchangeOf(recorded), summary: `deleted ${this.model} ${id}` };
  }
}

/**
 * FS → FSO: creates or updates the FSO record of FS record `fsId` (OnlineModel.upsert), then
 * `linkBack` lets the FS side learn the FSO id where it lacks it.
 */
export async function writeToOnline(
  fso: OnlineModel, direction: SyncDirection, fsId: number, source: unknown, values: Record<string, unknown>,
  fieldsBefore: string[], linkBack: (result: OnlineWriteResult) => Promise<unknown>,
): Promise<SyncEvidence> {
  // the target as the direction step read it (with the flow's fields) is the "before"
  const knownBefore = direction.target.info?.record as OnlineRecord | undefined;
  const result = await keepEvidence(() => fso.upsert(direction.target.recordId, fsId, values, fieldsBefore, knownBefore));
  await keepEvidence(() => linkBack(result));
  return syncEvidence(result.id, result, source, result.before, `${result.created ? 'created' : 'updated'} ${fso.model} ${result.id}`);
}
