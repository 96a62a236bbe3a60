/**
 * The ways a call to FSO (Odoo over XML-RPC) can fail. One type per kind of failure, so the job
 * machine can tell "FSO said no" (a Fault) from "FSO was not there" (unavailable).
 */

export class OnlineError extends Error {
  override name = 'OnlineError';
  /** the XML-RPC exchange of the call that failed (password masked), when a request was made */
  exchange?: { call: string; request: string; response: string };
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

  /** Odoo's AccessDenied: the login or the uid/password pair of a call was rejected. */
  get isAccessDenied(): boolean {
    return this.faultCode === 3 || /^Access Denied\b/i.test(this.odooMessage);
  }
}

/** FSO could not be reached: refused connection, timeout, reset, HTTP error status. */
export class OnlineUnavailableError extends OnlineError {
  override name = 'OnlineUnavailableError';
  constructor(
    /** the FSO host as configured (scheme://host:port) */
    readonly host: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`FSO at ${host} is unavailable: ${reason}`, options);
  }
}

/** The login itself was refused (`authenticate` answered false). */
export class OnlineAuthenticationError extends OnlineError {
  override name = 'OnlineAuthenticationError';
  constructor(readonly host: string, readonly database: string, readonly user: string) {
    super(`FSO at ${host} refused the login of user "${user}" on database "${database}"`);
  }
}

/** FSO answered something that is not a valid XML-RPC response. */
export class OnlineProtocolError extends OnlineError {
  override name = 'OnlineProtocolError';
  constructor(readonly host: string, reason: string, options?: { cause?: unknown }) {
    super(`FSO at ${host} sent an invalid XML-RPC answer: ${reason}`, options);
  }
}

/** `online_host` is not a usable host. */
export class OnlineHostError extends OnlineError {
  override name = 'OnlineHostError';
}
