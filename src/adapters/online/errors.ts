/**
 * The ways a call to FSO (Odoo over XML-RPC) can fail. One type per kind of failure, so the job
 * machine can tell "FSO said no" (a Fault) from "FSO was not there" (unavailable).
 */
import type { FailureTraits } from '../failure.ts';

export class OnlineError extends Error implements FailureTraits {
  override name = 'OnlineError';
  /** the XML-RPC exchange of the call that failed (password masked), when a request was made */
  exchange?: { call: string; request: string; response: string };
  readonly system = 'fso' as const;
  get transient(): boolean { return false; }
  get unavailable(): boolean { return false; }
  get timeout(): boolean { return false; }
}

/** where a call failed, for the message: `model.method at host` or just the host */
function where(host: string, call: string | undefined): string {
  return call ? `${call} at ${host}` : `at ${host}`;
}

/** FSO answered with an XML-RPC Fault: Odoo's message plus the full text it sent. */
export class OnlineFaultError extends OnlineError {
  override name = 'OnlineFaultError';
  constructor(
    /** Odoo's message: the first line of faultString, or the exception line of a bare traceback */
    readonly odooMessage: string,
    /** faultCode as sent (Odoo: 1 application error, 2 warning/user error, 3 access denied, 4 access error) */
    readonly faultCode: number | string,
    /** the whole faultString, traceback included */
    readonly faultString: string,
    /** `model.method` or `common.authenticate` that failed */
    readonly call: string,
  ) {
    super(`FSO ${call} failed: ${odooMessage}`);
  }

  /** The model Odoo does not know ("Object x doesn't exist", or a bare KeyError), else null. */
  get missingModel(): string | null {
    const m = /^Object (\S+) doesn't exist\b/.exec(this.odooMessage) ?? /^KeyError: u?'([^']+)'$/.exec(this.odooMessage);
    return m ? m[1] : null;
  }

  /**
   * Odoo's concurrency failures (PostgreSQL serialization failure, lock not available) succeed
   * when the call is repeated; Odoo's own RPC layer retries them a few times before giving up.
   */
  override get transient(): boolean {
    return /psycopg2\.(OperationalError|errors\.SerializationFailure|errors\.LockNotAvailable)\b/.test(this.faultString);
  }

  /** Odoo's AccessDenied: the login or the uid/password pair of a call was rejected. */
  get isAccessDenied(): boolean {
    return this.faultCode === 3 || /^Access Denied\b/i.test(this.odooMessage);
  }
}

/** FSO could not be reached: refused connection, timeout, reset, HTTP 5xx status (a proxy's 502). */
export class OnlineUnavailableError extends OnlineError {
  override name = 'OnlineUnavailableError';
  readonly call?: string;
  readonly timedOut: boolean;
  constructor(
    /** the FSO host as configured (scheme://host:port) */
    readonly host: string,
    readonly reason: string,
    options?: { cause?: unknown; call?: string; timedOut?: boolean },
  ) {
    super(`FSO ${where(host, options?.call)} is unavailable: ${reason}`, options);
    this.call = options?.call;
    this.timedOut = options?.timedOut ?? false;
  }

  override get transient(): boolean { return true; }
  override get unavailable(): boolean { return true; }
  override get timeout(): boolean { return this.timedOut; }
}

/** The login itself was refused (`authenticate` answered false). */
export class OnlineAuthenticationError extends OnlineError {
  override name = 'OnlineAuthenticationError';
  constructor(readonly host: string, readonly database: string, readonly user: string) {
    super(`FSO at ${host} refused the login of user "${user}" on database "${database}"`);
  }

  /** an Odoo being restored or restarted refuses logins for a while; a wrong password keeps the breaker open, visibly */
  override get transient(): boolean { return true; }
  override get unavailable(): boolean { return true; }
}

/** FSO answered something that is not a valid XML-RPC response. */
export class OnlineProtocolError extends OnlineError {
  override name = 'OnlineProtocolError';
  constructor(readonly host: string, reason: string, options?: { cause?: unknown; call?: string }) {
    super(`FSO ${where(host, options?.call)} sent an invalid XML-RPC answer: ${reason}`, options);
  }
}

/** `online_host` is not a usable host. */
export class OnlineHostError extends OnlineError {
  override name = 'OnlineHostError';
}
