/**
 * The HTTP API of SPEC §2. A thin shell: job routes read and write sync_table through the store,
 * service routes send events to the worker actors and read their snapshots. It owns no state.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from '../log.ts';
import { type FinishedJobCleanupStatus, type SyncTableStore } from '../adapters/syncTable/index.ts';
import type { FlowRegistry } from '../flows/registry.ts';
import type { WorkerControl } from '../machines/workers.ts';
import { ErrorCode, errorBody, parseJobCreate, parseJobId } from './jobRequest.ts';
import { send } from './negotiate.ts';
import { jobListRoute } from './jobList.ts';
import { largeBodyParser, largeBodyRoutes, operatorRoutes } from './operatorRoutes.ts';
import { serviceStatus, workersStatus } from './workerStatus.ts';
import { requireToken, tokenCheck } from './auth.ts';
import { healthRoute } from './health.ts';
import type { Metrics } from './metrics.ts';
import { PAGE_PATHS } from './inspection.ts';

export interface AppDependencies {
  store: SyncTableStore;
  hasFlow(model: string): boolean;
  /** the registered flows (flow map, quick check) */
  flows: FlowRegistry;
  workers: WorkerControl;
  /** the cleanup of old finished jobs, shown in /service/status */
  cleanup?: { status(): FinishedJobCleanupStatus };
  logger: Logger;
  commitId(): string | null;
  /** with a token, every route but /service/health (and the page's static files) requires it */
  apiToken?: string | null;
  /** GET /metrics, when given */
  metrics?: Metrics;
  /** extra routes (inspection page, WebSocket upgrade helpers) mounted before the 404 */
  extend?: (app: express.Express) => void;
}

/** Express 5 passes rejected promises to the error handler; this keeps the handlers small. */
type Handler = (req: Request, res: Response) => Promise<void> | void;

/** More query or body parameters than this are refused (400); no route takes a tenth of it. */
export const MAX_PARAMETERS = 100;
export const MAX_BODY = '1mb';

/** The page's files hold no data; everything they load is behind the token. */
function isPageFile(req: Request): boolean {
  return (req.method === 'GET' || req.method === 'HEAD') && PAGE_PATHS.some((p) => req.path === p || req.path.startsWith(`${p}/`));
}

function tooMany(req: Request, res: Response, field: string, count: number): void {
  send(req, res, 400, 'job_result', errorBody('InterfaceError', { [field]: `has ${count} parameters; at most ${MAX_PARAMETERS} are accepted` }));
}

export function createApp(deps: AppDependencies): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  app.get('/service/health', healthRoute(() => deps.store.checkReachable(), deps.logger));
  if (deps.apiToken) app.use(requireToken(tokenCheck(deps.apiToken), isPageFile));

  // node's query parser silently drops keys beyond 1000; count before it runs
  app.use((req, res, next) => {
    const query = req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '';
    const count = query === '' ? 0 : query.split('&').length;
    if (count > MAX_PARAMETERS) return tooMany(req, res, 'query', count);
    next();
  });
  // bulk and tree creation take large bodies, and only they do (after the token check)
  app.use(largeBodyRoutes, largeBodyParser);
  app.use(express.json({ limit: MAX_BODY }));
  app.use(express.urlencoded({ extended: false, limit: MAX_BODY, parameterLimit: MAX_PARAMETERS }));
  app.use((req, res, next) => {
    const body: unknown = req.body;
    if (body !== null && typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length > MAX_PARAMETERS) {
      return tooMany(req, res, 'body', Object.keys(body).length);
    }
    next();
  });

  const createJob: Handler = async (req, res) => {
    const params: Record<string, unknown> = { ...(req.query as Record<string, unknown>) };
    if (req.method === 'POST' && req.body !== undefined) {
      if (req.body === null || typeof req.body !== 'object' || Array.isArray(req.body)) {
        send(req, res, 400, 'job_result', errorBody('InterfaceError', { body: 'must be a JSON object or a form' }));
        return;
      }
      Object.assign(params, req.body);
    }
    const parsed = parseJobCreate(params, deps.hasFlow);
    if (!parsed.ok) {
      deps.logger.info({ error_detail: parsed.error.error_detail }, 'job/create refused');
      send(req, res, 400, 'job_result', { job_id: null, ...parsed.error });
      return;
    }
    const job = await deps.store.createJob(parsed.job);
    deps.logger.debug({ job_id: job.job_id, model: job.job_source_model, record: job.job_source_record_id }, 'job created');
    deps.workers.jobCreated(job);
    send(req, res, 200, 'job_result', { job_id: job.job_id, error_code: ErrorCode.None, error_text: 'None', error_detail: {} });
  };
  app.get('/job/create', createJob);
  app.post('/job/create', createJob);

  app.get('/job/info/:id', async (req, res) => {
    const raw = String(req.params.id);
    const id = parseJobId(raw);
    if (id === null) {
      send(req, res, 404, 'job_result', errorBody('DataError', { job_id: `"${raw}" is not a job id` }));
      return;
    }
    const job = await deps.store.getJob(id);
    if (!job) {
      send(req, res, 404, 'job_result', errorBody('DataError', { job_id: `no job ${id}` }));
      return;
    }
    send(req, res, 200, 'sync_table', job);
  });

  app.get('/job/list', jobListRoute(deps.store));
  app.use(operatorRoutes(deps));

  app.get('/service/version', (_req, res) => {
    const id = deps.commitId();
    if (!id) {
      res.status(503).type('text/plain').send('version unknown: neither a git checkout nor dist/version.txt\n');
      return;
    }
    res.type('text/plain').send(id);
  });

  app.get('/service/status', async (req, res) => {
    send(req, res, 200, 'sosync_status', { ...workersStatus(await deps.workers.status()), finished_job_cleanup: deps.cleanup?.status() ?? null });
  });
  app.get('/service/processjobs', (req, res) => {
    send(req, res, 200, 'service_status', serviceStatus(deps.workers.processJobs()));
  });
  app.get('/service/processprotocol', (req, res) => {
    const status = serviceStatus(deps.workers.processProtocol());
    send(req, res, status.status === 4 ? 503 : 200, 'service_status', status);
  });
  app.get('/service/forcedriftcheck', async (req, res) => {
    send(req, res, 200, 'drift_check', serviceStatus(await deps.workers.forceDriftCheck()));
  });
  app.get('/service/drift', async (req, res) => {
    send(req, res, 200, 'drift', await deps.workers.drift());
  });

  if (deps.metrics) app.get('/metrics', deps.metrics.route);

  deps.extend?.(app);

  app.use((req, res) => {
    send(req, res, 404, 'error', { error: 'not found', path: req.path, error_detail: { path: 'no such route' } });
  });

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = err as { type?: string; status?: number; message?: string; limit?: number };
    if (e.type === 'entity.parse.failed') {
      send(req, res, 400, 'job_result', errorBody('InterfaceError', { body: `is not valid ${req.is('json') ? 'JSON' : 'form data'}: ${e.message}` }));
      return;
    }
    if (e.type === 'entity.too.large') {
      send(req, res, 413, 'job_result', errorBody('InterfaceError', { body: `is larger than ${Math.round((e.limit ?? 0) / 1048576) || 1} MB` }));
      return;
    }
    if (e.type === 'parameters.too.many') {
      send(req, res, 400, 'job_result', errorBody('InterfaceError', { body: `has more than ${MAX_PARAMETERS} parameters` }));
      return;
    }
    if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
      // body-parser's other refusals: unknown charset or content encoding, a body that broke off
      const field = e.type === 'charset.unsupported' ? 'content-type' : e.type === 'encoding.unsupported' ? 'content-encoding' : 'body';
      send(req, res, e.status, 'job_result', errorBody('InterfaceError', { [field]: e.message ?? 'is not acceptable' }));
      return;
    }
    deps.logger.error({ err, path: req.path }, 'request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    send(req, res, 500, 'error', { error: (err as Error).message ?? 'internal error' });
  });

  return app;
}
