/**
 * Removes old finished jobs: done/skipped root jobs (with their children) whose job_end is more
 * than `keep_finished_days` ago. Runs on a timer, in small batches of one short statement each
 * with a pause between them, so the job worker's statements always get in between and no lock
 * is held for long. Its counters are read by /service/status and the metrics.
 */
import { systemNow } from '../clock/now.ts';
import type { Logger } from '../../log.ts';
import type { SyncTableStore } from './store.ts';

export interface FinishedJobCleanupOptions {
  store: SyncTableStore;
  /** 0 turns the cleanup off */
  keepFinishedDays: number;
  logger: Logger;
  now?: () => Date;
  /** root jobs per batch */
  batchSize?: number;
  /** pause between batches, so other statements get their turn */
  pauseMs?: number;
  /** time between runs */
  intervalMs?: number;
  /** time from start() to the first run */
  firstRunMs?: number;
}

export interface FinishedJobCleanupStatus {
  keep_finished_days: number;
  enabled: boolean;
  running: boolean;
  last_run_start: Date | null;
  last_run_end: Date | null;
  /** rows (root jobs and their children) the last run removed */
  last_run_rows_removed: number;
  /** rows removed since the service started */
  rows_removed_total: number;
  last_error: string | null;
}

const DAY_MS = 24 * 60 * 60 * 1000;

export class FinishedJobCleanup {
  private timer: NodeJS.Timeout | null = null;
  private current: Promise<number> | null = null;
  private stopped = false;
  private state = {
    lastRunStart: null as Date | null,
    lastRunEnd: null as Date | null,
    lastRunRows: 0,
    rowsRemovedTotal: 0,
    lastError: null as string | null,
  };

  private readonly now: () => Date;
  private readonly batchSize: number;
  private readonly pauseMs: number;
  private readonly intervalMs: number;
  private readonly firstRunMs: number;

  constructor(private readonly options: FinishedJobCleanupOptions) {
    this.now = options.now ?? systemNow;
    this.batchSize = options.batchSize ?? 200;
    this.pauseMs = options.pauseMs ?? 50;
    this.intervalMs = options.intervalMs ?? 60 * 60 * 1000;
    this.firstRunMs = options.firstRunMs ?? 60 * 1000;
  }

  get enabled(): boolean {
    return this.options.keepFinishedDays > 0;
  }

  /** rows removed since start, for the metrics */
  get rowsRemovedTotal(): number {
    return this.state.rowsRemovedTotal;
  }

  start(): void {
    if (!this.enabled || this.stopped) return;
    this.schedule(this.firstRunMs);
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => {
      void this.runNow().finally(() => {
        if (!this.stopped) this.schedule(this.intervalMs);
      });
    }, ms);
    this.timer.unref();
  }

  /** One run, batch after batch until nothing old is left (or stop()); joins a run in progress. */
  runNow(): Promise<number> {
    if (!this.enabled) return Promise.resolve(0);
    this.current ??= this.run().finally(() => {
      this.current = null;
    });
    return this.current;
  }

  private async run(): Promise<number> {
    const cutoff = new Date(this.now().getTime() - this.options.keepFinishedDays * DAY_MS);
    this.state.lastRunStart = this.now();
    let removed = 0;
    try {
      for (;;) {
        if (this.stopped) break;
        const rows = await this.options.store.deleteFinishedJobsBatch(cutoff, this.batchSize);
        removed += rows;
        this.state.rowsRemovedTotal += rows;
        if (rows === 0) break;
        await new Promise((resolve) => setTimeout(resolve, this.pauseMs));
      }
      this.state.lastError = null;
    } catch (err) {
      this.state.lastError = (err as Error).message;
      this.options.logger.error({ err }, 'cleanup of finished jobs failed; it tries again on its next run');
    }
    this.state.lastRunEnd = this.now();
    this.state.lastRunRows = removed;
    if (removed > 0) this.options.logger.info({ rows_removed: removed, ended_before: cutoff }, 'finished jobs removed');
    return removed;
  }

  status(): FinishedJobCleanupStatus {
    return {
      keep_finished_days: this.options.keepFinishedDays,
      enabled: this.enabled,
      running: this.current !== null,
      last_run_start: this.state.lastRunStart,
      last_run_end: this.state.lastRunEnd,
      last_run_rows_removed: this.state.lastRunRows,
      rows_removed_total: this.state.rowsRemovedTotal,
      last_error: this.state.lastError,
    };
  }

  /** Stops the timer and lets a batch in progress finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.current?.catch(() => undefined);
  }
}
