/**
 * The clock: sosync's "now" and the drift measurement against NTP and FSO's host (SPEC §4.4).
 * Imports only src/adapters/hostPort.ts, src/log.ts and ntp-time-sync.
 */
export {
  createClock,
  judgeDrift,
  parseServer,
  NtpServerAddressError,
  DEFAULT_NTP_PORT,
  DEFAULT_TIMEOUT_MS,
  DEFAULT_SAMPLE_COUNT,
} from './clock.ts';
export type {
  Clock,
  ClockOptions,
  DriftReport,
  DriftJudgement,
  NtpDrift,
  FsoDrift,
  NtpServerAddress,
} from './clock.ts';
export { createDriftSource, type DriftSource, type DriftMeasurement, type DriftSourceOptions } from './drift.ts';
export { systemNow } from './now.ts';
