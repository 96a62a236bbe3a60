/**
 * The ways a call to FS (SQL Server through mssql) can fail. One type per kind, so the job machine
 * can tell "FS refused the statement" (query error) from "FS was not there" (unavailable).
 * Write failures carry the evidence the job row records: the row data that was to be written.
 */
import type { FailureTraits } from '../failure.ts';
import type { WrittenRow } from './types.ts';

/**
 * SQL Server error numbers worth trying again: 1205 deadlock victim, 1222 lock request timeout,
 * 4060 database cannot be opened (restoring, failing over), 40197/40501/40613 service busy or
 * database unavailable (Azure SQL).
 */
const transientServerErrors = new Set([1205, 1222, 4060, 40197, 40501, 40613]);

export class StudioError extends Error implements FailureTraits {
  override name = 'StudioError';
  readonly system = 'fs' as const;
  get transient(): boolean { return false; }
  get unavailable(): boolean { return false; }
  get timeout(): boolean { return false; }
  /** for a failed write: the rows it was writing (sync_target_request) */
  request?: WrittenRow[];
  /** for a failed write: the error text (sync_target_answer) */
  answer?: string;
  /** the client method that failed (readPersonStack, writePersonStack, ...) */
  call?: string;
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

  override get transient(): boolean { return true; }
  override get unavailable(): boolean { return true; }
  /** mssql reports both a connect timeout and a request (statement) timeout as ETIMEOUT */
  override get timeout(): boolean { return this.code === 'ETIMEOUT'; }
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

  override get transient(): boolean { return transientServerErrors.has(this.number); }
  override get unavailable(): boolean { return this.number === 4060; }
}

/** The caller asked for something the client cannot write (unknown column, missing e-mail for a newsletter flag). Nothing was written. */
export class StudioInputError extends StudioError {
  override name = 'StudioInputError';
}
