/**
 * GET /service/health for load balancers and watchdogs: 200 while the process is up and the sync
 * table answers, 503 with a short reason otherwise. Open without the token, so it tells nothing
 * else — no versions, counts or error details.
 */
import type { Request, Response } from 'express';
import type { Logger } from '../log.ts';
import { send } from './negotiate.ts';

/** A sync table slower than this counts as unreachable. */
const HEALTH_TIMEOUT_MS = 2_000;

export function healthRoute(checkSyncTable: () => Promise<void>, logger: Logger) {
  return async (req: Request, res: Response): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${HEALTH_TIMEOUT_MS} ms`)), HEALTH_TIMEOUT_MS);
    });
    try {
      await Promise.race([checkSyncTable(), timeout]);
      send(req, res, 200, 'health', { status: 'up' });
    } catch (err) {
      // the details go to the log, not to whoever asks without a token
      logger.warn({ error: (err as Error).message }, 'health check: sync table not reachable');
      send(req, res, 503, 'health', { status: 'down', reason: 'sync table not reachable' });
    } finally {
      clearTimeout(timer);
    }
  };
}
