/**
 * The API token (`api_token`): every route but the ones let through requires
 * `Authorization: Bearer <token>`. Tokens are compared as SHA-256 digests with timingSafeEqual,
 * so neither the comparison nor the token's length shows in the answer time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { send } from './negotiate.ts';

export interface TokenCheck {
  /** true when `presented` is the configured token */
  matches(presented: string | undefined): boolean;
  /** the token carried by an Authorization header value, if it is a Bearer one */
  fromHeader(header: string | undefined): string | undefined;
}

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

export function tokenCheck(token: string): TokenCheck {
  const expected = digest(token);
  return {
    matches: (presented) => presented !== undefined && timingSafeEqual(digest(presented), expected),
    fromHeader(header) {
      const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '');
      return match?.[1];
    },
  };
}

/** What a refused request is told: which header is wrong and what it must hold. */
function problem(header: string | undefined): string {
  if (header === undefined) return 'is missing: send "Authorization: Bearer <api_token>"';
  if (!/^Bearer[ \t]/i.test(header)) return 'is not a Bearer token: send "Authorization: Bearer <api_token>"';
  return 'does not carry the api_token';
}

/**
 * Express middleware refusing requests without the token (401, in the negotiated format). `open`
 * decides which requests pass without one.
 */
export function requireToken(check: TokenCheck, open: (req: Request) => boolean) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (open(req)) return next();
    const header = req.headers.authorization;
    if (check.matches(check.fromHeader(header))) return next();
    res.set('WWW-Authenticate', 'Bearer realm="sosync"');
    send(req, res, 401, 'error', { error: 'unauthorized', error_detail: { authorization: problem(header) } });
  };
}
