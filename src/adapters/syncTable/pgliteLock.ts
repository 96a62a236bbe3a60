/**
 * PGlite is one connection. Whoever runs a transaction on it by hand (BEGIN … COMMIT over several
 * calls, as the FS stand-in does for its TDS sessions) must keep everybody else off the connection
 * until it ends, or their statements land inside that transaction. So every user of one PGlite
 * instance takes the same lock: for one statement, or for the whole of a transaction. The lock
 * belongs to the instance, so the sandbox's FS stand-in and sosync's sync table, sharing one
 * instance, queue behind each other without having to know of each other.
 */
import type { PGlite } from '@electric-sql/pglite';

/** Hands out one holder at a time, in arrival order. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((resolve) => { release = resolve; });
    const acquired = this.tail.then(() => {
      let released = false;
      return () => { if (!released) { released = true; release(); } };
    });
    this.tail = this.tail.then(() => next);
    return acquired;
  }

  /** runs fn while holding the lock */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const unlock = await this.lock();
    try {
      return await fn();
    } finally {
      unlock();
    }
  }
}

const locks = new WeakMap<PGlite, Mutex>();

/** The one lock of this PGlite instance, the same for every caller. */
export function connectionLock(db: PGlite): Mutex {
  let lock = locks.get(db);
  if (!lock) {
    lock = new Mutex();
    locks.set(db, lock);
  }
  return lock;
}
