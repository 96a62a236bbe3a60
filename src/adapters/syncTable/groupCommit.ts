/**
 * Group commit for the inserts of concurrent announcements. While one insert is in flight, the
 * jobs that arrive wait; when it is done, all of them go in together, in one statement and so one
 * commit, and each caller gets its own row. An idle store inserts a lone job at once, so a single
 * announcement waits for nothing. At 50 concurrent /job/create requests this turns 50 round trips
 * and 50 WAL flushes into a few.
 *
 * Each caller is answered only after the statement holding its row has committed. When a group
 * fails on its data (SQLSTATE class 22 or 23: a value or a constraint), nothing of it was stored,
 * so each job is tried again alone and only the one at fault fails; any other failure (the table
 * gone, a lock timeout, a lost connection, where the outcome may be unknown) fails every caller of
 * the group with an error saying so, and nothing is tried twice.
 */

export interface GroupInsert<Item, Row> {
  /** one item, as the store inserts it alone */
  one(item: Item): Promise<Row>;
  /** many items in one statement; the rows in the items' order */
  many(items: Item[]): Promise<Row[]>;
  /** an item's size in bytes (roughly), so that one statement stays far below PostgreSQL's limits */
  bytes(item: Item): number;
}

/** A group closes at this many items or bytes, whichever comes first (one item always goes). */
export const GROUP_LIMITS = { items: 500, bytes: 16 * 1024 * 1024 };

/** A group's insert failed (see `cause`; after a lost connection, whether it committed is unknown). */
export class GroupInsertError extends Error {
  constructor(readonly groupSize: number, override readonly cause: unknown) {
    super(`sync table insert failed (this job and ${groupSize - 1} others in one statement): ${(cause as Error).message}`);
    this.name = 'GroupInsertError';
  }
}

/** Refused for a value or a constraint (SQLSTATE classes 22, 23): the statement stored nothing. */
function failedOnData(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}

interface Waiting<Item, Row> {
  item: Item;
  resolve(row: Row): void;
  reject(err: unknown): void;
}

export class GroupCommit<Item, Row> {
  private waiting: Array<Waiting<Item, Row>> = [];
  private inFlight = false;

  constructor(private readonly insert: GroupInsert<Item, Row>) {}

  /** Stores `item` with whatever arrives while the current insert runs; resolves after the commit. */
  add(item: Item): Promise<Row> {
    return new Promise<Row>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (!this.inFlight) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.inFlight = true;
    try {
      while (this.waiting.length > 0) await this.insertGroup(this.nextGroup());
    } finally {
      this.inFlight = false;
    }
  }

  /** the oldest waiting items, up to GROUP_LIMITS */
  private nextGroup(): Array<Waiting<Item, Row>> {
    let count = 1;
    let bytes = this.insert.bytes(this.waiting[0].item);
    while (count < this.waiting.length && count < GROUP_LIMITS.items) {
      bytes += this.insert.bytes(this.waiting[count].item);
      if (bytes > GROUP_LIMITS.bytes) break;
      count++;
    }
    return this.waiting.splice(0, count);
  }

  private async insertGroup(group: Array<Waiting<Item, Row>>): Promise<void> {
    if (group.length === 1) {
      await this.insert.one(group[0].item).then(group[0].resolve, group[0].reject);
      return;
    }
    let rows: Row[];
    try {
      rows = await this.insert.many(group.map((w) => w.item));
    } catch (err) {
      if (!failedOnData(err)) {
        for (const w of group) w.reject(new GroupInsertError(group.length, err));
        return;
      }
      // one job's value or a constraint refused the group: each alone, so only that one fails
      for (const w of group) await this.insert.one(w.item).then(w.resolve, w.reject);
      return;
    }
    if (rows.length !== group.length) {
      const err = new Error(`the insert returned ${rows.length} rows for ${group.length} jobs`);
      for (const w of group) w.reject(new GroupInsertError(group.length, err));
      return;
    }
    group.forEach((w, i) => w.resolve(rows[i]));
  }
}
