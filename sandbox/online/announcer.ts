/**
 * How FSO tells sosync about a change: an HTTP POST to `/job/create` with the short parameter
 * names older FSO versions send. Sent in the background, one at a time, retried with back-off;
 * a failure never reaches the write that caused it.
 */
import type { Logger } from '../../src/log.ts';

export interface Announcement {
  job_date: string;
  source_system: 'fso';
  source_model: string;
  source_record_id: number;
  job_source_sosync_write_date?: string;
  job_source_type?: 'delete';
}

export interface AnnouncementOutcome {
  announcement: Announcement;
  delivered: boolean;
  attempts: number;
  status?: number;
  error?: string;
}

export interface AnnouncerOptions {
  url: string | null;
  /** body encoding; default form */
  format?: 'form' | 'json';
  /** attempts before giving up; default 6 */
  maxAttempts?: number;
  /** first back-off in ms, doubled per attempt; default 200 */
  retryDelayMs?: number;
  logger: Logger;
}

export class Announcer {
  url: string | null;
  /** sent with every announcement (sosync's Authorization when it has an api_token) */
  headers: Record<string, string> = {};
  /** every announcement that was given up on or delivered, in order */
  readonly outcomes: AnnouncementOutcome[] = [];
  private readonly queue: Announcement[] = [];
  private running: Promise<void> | null = null;
  private closed = false;
  private readonly idleWaiters: (() => void)[] = [];
  private wakeRetry: (() => void) | null = null;

  constructor(private readonly options: AnnouncerOptions) {
    this.url = options.url;
  }

  /** queue an announcement; returns at once */
  announce(announcement: Announcement): void {
    if (this.closed || !this.url) return;
    this.queue.push(announcement);
    this.running ??= this.drain().finally(() => {
      this.running = null;
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    });
  }

  /** number of announcements not yet delivered or given up */
  pending(): number {
    return this.queue.length;
  }

  /** resolves once every queued announcement was delivered or given up */
  flush(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** stop: queued announcements are dropped */
  async close(): Promise<void> {
    this.closed = true;
    this.queue.splice(1);
    this.wakeRetry?.();
    await this.running;
  }

  private async drain(): Promise<void> {
    const maxAttempts = this.options.maxAttempts ?? 6;
    const baseDelay = this.options.retryDelayMs ?? 200;
    while (this.queue.length > 0) {
      const announcement = this.queue[0];
      let outcome: AnnouncementOutcome = { announcement, delivered: false, attempts: 0 };
      for (let attempt = 1; attempt <= maxAttempts && !this.closed; attempt++) {
        outcome = { announcement, attempts: attempt, ...(await this.send(announcement)) };
        if (outcome.delivered) break;
        if (attempt < maxAttempts) await this.sleep(Math.min(baseDelay * 2 ** (attempt - 1), 5000));
      }
      this.queue.shift();
      this.outcomes.push(outcome);
      if (!outcome.delivered) {
        this.options.logger.warn({ announcement, error: outcome.error, status: outcome.status }, 'FSO stand-in: sync job announcement given up');
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.wakeRetry = null; resolve(); }, ms);
      this.wakeRetry = () => { clearTimeout(timer); this.wakeRetry = null; resolve(); };
    });
  }

  private async send(a: Announcement): Promise<{ delivered: boolean; status?: number; error?: string }> {
    const url = this.url;
    if (!url) return { delivered: false, error: 'no announce URL' };
    const fields = Object.fromEntries(Object.entries(a).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)]));
    const json = this.options.format === 'json';
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': json ? 'application/json' : 'application/x-www-form-urlencoded', ...this.headers },
        body: json ? JSON.stringify(fields) : new URLSearchParams(fields).toString(),
        signal: AbortSignal.timeout(5000),
      });
      await res.arrayBuffer();
      return res.ok ? { delivered: true, status: res.status } : { delivered: false, status: res.status, error: `HTTP ${res.status}` };
    } catch (err) {
      return { delivered: false, error: (err as Error).message };
    }
  }
}
