/**
 * The ways a call to FS (SQL Server through mssql) can fail. One type per kind, so the job machine
 * can tell "FS refused the statement" (query error) from "FS was not there" (unavailable).
 * Write failures carry the evidence the job row records: the row data that was to be written.
 */
import type { WrittenRow } from './types.ts';

export class StudioError extends Error {
  override name = 'StudioError';
  /** for a failed write: the rows it was writing (sync_target_request) */
  request?: WrittenRow[];
  /** for a failed write: the error text (sync_target_answer) */
  answer?: string;
}

/** FS could not be reached: refused connection, failed login, connect or request timeout, dropped socket. */
export class StudioUnavailableError extends StudioError {
  override name = 'StudioUnavailableError';
  constructor(
    /** host[:port] as configured */
    readonly host: string,
    readonly reason: string,
    /** mssql's error code (ESOCKET, ETIMEOUT, ELOGIN, ECONNCLOSED, ...) */
    readonly code?: string,
    options?: { cause?: unknown },
  ) {
    super(`FS (${host}) is unavailable: ${reason}`, options);
  }
}

/** SQL Server answered a statement with an error; its message and number are kept as sent. */
export class StudioQueryError extends StudioError {
  override name = 'StudioQueryError';
  constructor(
    readonly host: string,
    /** SQL Server's message */
    readonly serverMessage: string,
    /** SQL Server's error number (e.g. 208 invalid object, 547 constraint conflict) */
    readonly number: number,
    options?: { cause?: unknown },
  ) {
    super(`FS (${host}) error ${number}: ${serverMessage}`, options);
  }
}

/** The caller asked for something the client cannot write (unknown column, missing e-mail for a newsletter flag). Nothing was written. */
export class StudioInputError extends StudioError {
  override name = 'StudioInputError';
}
