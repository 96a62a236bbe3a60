/**
 * A flow over two small in-memory "systems", for testing the job engine without FS and FSO.
 * Each system is a map of records with the sosync bookkeeping fields; writes copy `data`.
 * Hooks let a test make a step fail or change the source mid-job.
 */
import { FlowError, type Flow, type ModelInfo, type RecordRef, type SyncDirection, type SyncEvidence, type SystemName } from '../../src/flows/flow.ts';
import { sideBySide } from '../../src/flows/support.ts';

export interface MemoryRecord {
  id: number;
  foreignId: number | null;
  sosyncWriteDate: Date | null;
  writeDate: Date | null;
  data: Record<string, unknown>;
}

export class MemorySystem {
  readonly records = new Map<number, MemoryRecord>();
  private nextId = 1;
  writes = 0;
  creates = 0;

  constructor(readonly name: SystemName) {}

  reset(): void {
    this.records.clear();
    this.writes = 0;
    this.creates = 0;
  }

  insert(data: Record<string, unknown>, dates: { sosyncWriteDate?: Date | null; writeDate?: Date | null } = {}, foreignId: number | null = null): MemoryRecord {
    const record: MemoryRecord = {
      id: this.nextId++,
      foreignId,
      sosyncWriteDate: dates.sosyncWriteDate === undefined ? new Date() : dates.sosyncWriteDate,
      writeDate: dates.writeDate === undefined ? new Date() : dates.writeDate,
      data: { ...data },
    };
    this.records.set(record.id, record);
    return record;
  }

  info(id: number): ModelInfo | null {
    const r = this.records.get(id);
    return r ? { id: r.id, foreignId: r.foreignId, sosyncWriteDate: r.sosyncWriteDate, writeDate: r.writeDate } : null;
  }
}

export interface MemoryFlowHooks {
  /** called before a write; throw to make the write fail */
  beforeWrite?: (direction: SyncDirection) => void | Promise<void>;
  /** children per source record */
  children?: (direction: SyncDirection) => RecordRef[];
  /** called inside readModelInfo (e.g. to slow a job down, or to fail a read) */
  onRead?: (system: SystemName, id: number) => Promise<void>;
  /** called before a delete; throw to make it fail */
  beforeDelete?: () => void;
}

export class MemoryFlow implements Flow {
  readonly fs: MemorySystem;
  readonly fso: MemorySystem;

  constructor(readonly name: string, readonly models: { fs: string; fso: string }, public hooks: MemoryFlowHooks = {}) {
    this.fs = new MemorySystem('fs');
    this.fso = new MemorySystem('fso');
  }

  readonly syncsFrom: readonly SystemName[] = ['fs', 'fso'];
  readonly childJobModels = [];
  readonly deletes = { fs: 'delete', fso: 'unlink' } as const;

  async compareFields(fsId: number | null, fsoId: number | null) {
    const fs = fsId !== null ? this.fs.records.get(fsId)?.data ?? {} : {};
    const fso = fsoId !== null ? this.fso.records.get(fsoId)?.data ?? {} : {};
    const keys = [...new Set([...Object.keys(fs), ...Object.keys(fso)])].sort();
    return sideBySide(keys.map((key) => ({ fs_field: key, fso_field: key, fs_value: fs[key] ?? null, fso_value: fso[key] ?? null })));
  }

  system(name: SystemName): MemorySystem {
    return name === 'fs' ? this.fs : this.fso;
  }

  async readModelInfo(system: SystemName, id: number): Promise<ModelInfo | null> {
    await this.hooks.onRead?.(system, id);
    return this.system(system).info(id);
  }

  async findByForeignId(system: SystemName, foreignId: number): Promise<ModelInfo | null> {
    for (const r of this.system(system).records.values()) {
      if (r.foreignId === foreignId) return this.system(system).info(r.id);
    }
    return null;
  }

  async childJobs(direction: SyncDirection): Promise<RecordRef[]> {
    return this.hooks.children?.(direction) ?? [];
  }

  async write(direction: SyncDirection): Promise<SyncEvidence> {
    await this.hooks.beforeWrite?.(direction);
    const source = this.system(direction.source.system).records.get(direction.source.recordId);
    if (!source) throw new FlowError(`source ${direction.source.recordId} vanished`);
    const target = this.system(direction.target.system);
    // like the production flows: the target is the one the direction step found, or a new record —
    // finding an earlier counterpart by its foreign id is sosync's job (flows/direction.ts), not this double's
    const existing = direction.target.recordId !== null ? target.records.get(direction.target.recordId) : undefined;
    target.writes++;
    if (existing) {
      const before = { ...existing.data };
      existing.data = { ...source.data };
      existing.sosyncWriteDate = source.sosyncWriteDate;
      existing.foreignId = source.id;
      source.foreignId = existing.id;
      return { targetRecordId: existing.id, sourceData: source.data, targetDataBefore: before, targetRequest: JSON.stringify(source.data), targetAnswer: 'success', summary: `updated ${direction.target.model} ${existing.id}` };
    }
    target.creates++;
    const created = target.insert(source.data, { sosyncWriteDate: source.sosyncWriteDate, writeDate: new Date() }, source.id);
    source.foreignId = created.id;
    return { targetRecordId: created.id, sourceData: source.data, targetRequest: JSON.stringify(source.data), targetAnswer: 'success', summary: `created ${direction.target.model} ${created.id}` };
  }

  async deleteCounterpart(sourceSystem: SystemName, sourceRecordId: number, targetRecordId: number | null): Promise<SyncEvidence | null> {
    this.hooks.beforeDelete?.();
    const target = this.system(sourceSystem === 'fs' ? 'fso' : 'fs');
    const found = targetRecordId !== null ? target.records.get(targetRecordId) : [...target.records.values()].find((r) => r.foreignId === sourceRecordId);
    if (!found) return null;
    target.records.delete(found.id);
    return { targetRecordId: found.id, sourceData: null, targetRequest: `delete ${found.id}`, targetAnswer: 'success', summary: `deleted ${found.id}` };
  }
}
