/**
 * The drift gate's measurement: the clock adapter's NTP and FSO offsets (optionally FS's too,
 * read from SQL Server's clock) judged against max_time_drift_ms.
 */
import { judgeDrift, type Clock } from './clock.ts';

/** What the drift gate needs: every source measured and judged against the tolerance. */
export interface DriftSource {
  /** measures every source; never throws for an unreachable server (reports it instead) */
  measure(): Promise<DriftMeasurement>;
}

export interface DriftMeasurement {
  at: Date;
  /** offset per source in ms, or the reason it could not be measured */
  sources: Record<string, { offsetMs: number; server?: string } | { error: string }>;
  /** the judgement against the tolerance */
  ok: boolean;
  reason?: string;
}

export interface DriftSourceOptions {
  clock: Clock;
  toleranceMs: number;
  /** FS's offset in ms (SQL Server's clock against ours); reported, not gated */
  measureFs?: () => Promise<number>;
}

export function createDriftSource(options: DriftSourceOptions): DriftSource {
  return {
    async measure(): Promise<DriftMeasurement> {
      const [report, fs] = await Promise.all([
        options.clock.measureDrift(),
        options.measureFs
          ? options.measureFs().then((offsetMs) => ({ offsetMs }), (err: Error) => ({ error: err.message }))
          : Promise.resolve(undefined),
      ]);
      const verdict = judgeDrift(report, options.toleranceMs);
      const sources: DriftMeasurement['sources'] = { ntp: report.ntp };
      if (report.fso) sources.fso = report.fso;
      if (fs) sources.fs = fs;
      return { at: report.measuredAt, sources, ok: verdict.ok, reason: verdict.ok ? undefined : verdict.reason };
    },
  };
}
