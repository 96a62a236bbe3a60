/**
 * Keeps the FSO stand-in's store in a directory so that every write it has answered survives a
 * crash of its process, SIGKILL included: each row change is appended to a journal, and the journal
 * is written and fsynced before the XML-RPC answer leaves (`commit`). A start loads the snapshot,
 * replays the journal on top, writes a new snapshot and empties the journal (`open`).
 *
 * Journal lines hold a row's whole new state or its removal, so replaying a line twice changes
 * nothing: a crash between writing the snapshot and emptying the journal is harmless. A torn last
 * line (a crash in the middle of an append) was never answered and is dropped.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { OnlineStore, StoreChange } from './store.ts';

export const ONLINE_SNAPSHOT_FILE = 'fso-stand-in.json';
export const ONLINE_JOURNAL_FILE = 'fso-stand-in.journal';

/** fsync a directory, so a file created or renamed in it survives a crash too */
function syncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes through a temporary file and renames it, so a crash never leaves half a snapshot. */
function writeFileDurably(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  syncDirectory(path.dirname(file));
}

export class OnlineJournal {
  readonly snapshotFile: string;
  readonly journalFile: string;
  private fd: number | null = null;
  private pending: string[] = [];
  private store: OnlineStore | null = null;

  constructor(readonly dir: string) {
    this.snapshotFile = path.join(dir, ONLINE_SNAPSHOT_FILE);
    this.journalFile = path.join(dir, ONLINE_JOURNAL_FILE);
  }

  /** a snapshot exists: the store was kept here before */
  exists(): boolean {
    return fs.existsSync(this.snapshotFile);
  }

  /** Loads the snapshot and the journal into `store`; returns the journal lines replayed. */
  restore(store: OnlineStore): number {
    try {
      store.restore(JSON.parse(fs.readFileSync(this.snapshotFile, 'utf8')));
    } catch (err) {
      throw new Error(`cannot restore the FSO stand-in from ${this.snapshotFile}: ${(err as Error).message}`);
    }
    if (!fs.existsSync(this.journalFile)) return 0;
    const lines = fs.readFileSync(this.journalFile, 'utf8').split('\n');
    let replayed = 0;
    lines.forEach((line, i) => {
      if (line === '') return;
      let change: StoreChange;
      try {
        change = JSON.parse(line) as StoreChange;
      } catch {
        // only the last line can be torn by a crash; anything else is damage
        if (i === lines.length - 1) return;
        throw new Error(`cannot restore the FSO stand-in: ${this.journalFile} line ${i + 1} is not JSON`);
      }
      store.apply(change);
      replayed++;
    });
    return replayed;
  }

  /**
   * Writes the store as the new snapshot, empties the journal and from now on records every
   * change of `store` (kept until `commit`).
   */
  attach(store: OnlineStore): void {
    this.store = store;
    this.compact();
    this.fd = fs.openSync(this.journalFile, 'a');
    store.onChange = (change) => this.pending.push(`${JSON.stringify(change)}\n`);
  }

  /** Makes the changes so far durable; call before answering the write that made them. */
  commit(): void {
    if (this.pending.length === 0 || this.fd === null) return;
    const text = this.pending.join('');
    this.pending = [];
    fs.writeSync(this.fd, text);
    fs.fsyncSync(this.fd);
  }

  /** Commits, snapshots and stops recording. */
  close(): void {
    if (this.fd === null) return;
    this.commit();
    fs.closeSync(this.fd);
    this.fd = null;
    this.compact();
    if (this.store) this.store.onChange = null;
  }

  private compact(): void {
    if (!this.store) return;
    writeFileDurably(this.snapshotFile, JSON.stringify(this.store.snapshot()));
    fs.writeFileSync(this.journalFile, '');
    const fd = fs.openSync(this.journalFile, 'r+');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    syncDirectory(this.dir);
  }
}
