/**
 * The drift gate's measurement: the clock adapter's NTP and FSO offsets (optionally FS's too,
 * read from SQL Server's clock) judged against max_time_drift_ms.
 */
import { judgeDrift, type Clock } from '../adapters/clock/index.ts';
import type { DriftMeasurement, DriftSource } from './system.ts';

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
