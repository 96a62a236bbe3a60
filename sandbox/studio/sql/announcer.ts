/**
 * Sends FS's change announcements (rows of studio.announcement, filled by the triggers) to
 * sosync's /job/create after their transaction committed. A failed post stays in the outbox and
 * is retried later; nothing here can block or fail a write.
 */
import type { Logger } from '../../../src/log.ts';
import type { Backend } from './backend.ts';
import { parsePgTimestamp } from './values.ts';

export interface Announcement {
  job_date: string;
  job_source_system: 'fs';
  job_source_model: string;
  job_source_record_id: number;
  job_source_sosync_write_date: string | null;
  job_source_type?: 'delete';
}

export interface AnnouncerOptions {
  backend: Backend;
  logger: Logger;
  url?: string;
  /** pause before a failed post is tried again; doubles per attempt up to a minute */
  retryMs?: number;
  /** how often the outbox is looked at without a write having happened */
  pollMs?: number;
}

const iso = (pgText: unknown) => (pgText == null ? null : parsePgTimestamp(String(pgText)).toISOString());

export class Announcer {
  private url: string | undefined;
  private headers: Record<string, string> = {};
  private running: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly retryMs: number;

  constructor(private readonly options: AnnouncerOptions) {
    this.url = options.url;
    this.retryMs = options.retryMs ?? 2000;
    this.timer = setInterval(() => this.kick(), options.pollMs ?? 2000);
    this.timer.unref();
  }

  /** `headers` go with every announcement (sosync's Authorization when it has an api_token) */
  setUrl(url: string | undefined, headers: Record<string, string> = {}): void {
    this.url = url;
    this.headers = headers;
    this.kick();
  }

  /** Look at the outbox soon (after a commit). */
  kick(): void {
    if (this.closed || !this.url) return;
    if (this.running) { this.again = true; return; }
    this.running = this.run().finally(() => {
      this.running = null;
      if (this.again) { this.again = false; this.kick(); }
    });
  }

  /** Sends everything that is due now; resolves when the outbox has been worked once. */
  async flush(): Promise<void> {
    while (this.running) await this.running;
    this.kick();
    while (this.running) await this.running;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    while (this.running) await this.running;
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        const due = await this.query(
          `SELECT id, job_date, model, record_id, sosync_write_date, source_type, attempts
             FROM studio.announcement
            WHERE next_attempt_at IS NULL OR next_attempt_at <= studio.utc_now()
            ORDER BY id LIMIT 100`,
        );
        if (due.length === 0 || this.closed) return;
        let sentAny = false;
        for (const [id, jobDate, model, recordId, sosyncWriteDate, sourceType, attempts] of due) {
          if (this.closed || !this.url) return;
          const announcement: Announcement = {
            job_date: iso(jobDate)!,
            job_source_system: 'fs',
            job_source_model: String(model),
            job_source_record_id: Number(recordId),
            job_source_sosync_write_date: iso(sosyncWriteDate),
          };
          if (sourceType === 'delete') announcement.job_source_type = 'delete';
          const outcome = await this.post(announcement);
          if (outcome === 'sent' || outcome === 'refused') {
            await this.query('DELETE FROM studio.announcement WHERE id = $1', [String(id)]);
            sentAny = true;
          } else {
            const delay = Math.min(this.retryMs * 2 ** Number(attempts), 60_000);
            await this.query(
              `UPDATE studio.announcement SET attempts = attempts + 1, last_error = $2,
                      next_attempt_at = studio.utc_now() + ($3 || ' milliseconds')::interval WHERE id = $1`,
              [String(id), outcome.error, String(delay)],
            );
          }
        }
        if (!sentAny) return;
      }
    } catch (err) {
      this.options.logger.warn({ err }, 'FS stand-in: announcement outbox could not be read');
    }
  }

  private async query(sql: string, params: Array<string | null> = []): Promise<unknown[][]> {
    const conn = await this.options.backend.acquire();
    try {
      return (await conn.query(sql, params)).rows;
    } finally {
      conn.release();
    }
  }

  private async post(a: Announcement): Promise<'sent' | 'refused' | { error: string }> {
    const log = this.options.logger;
    try {
      const res = await fetch(this.url!, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', ...this.headers },
        body: JSON.stringify(a),
        signal: AbortSignal.timeout(10_000),
      });
      const body = await res.text();
      if (res.ok) {
        log.debug({ announcement: a }, 'FS stand-in announced a change');
        return 'sent';
      }
      if (res.status >= 400 && res.status < 500) {
        // sosync judged the announcement invalid; sending it again would not change that.
        log.warn({ announcement: a, status: res.status, body }, 'FS stand-in: announcement refused');
        return 'refused';
      }
      return { error: `HTTP ${res.status}: ${body.slice(0, 500)}` };
    } catch (err) {
      log.debug({ err, announcement: a }, 'FS stand-in: announcement failed, will retry');
      return { error: (err as Error).message };
    }
  }
}
