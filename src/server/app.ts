/**
 * The HTTP API of SPEC §2. A thin shell: job routes read and write sync_table through the store,
 * service routes send events to the worker actors and read their snapshots. It owns no state.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from '../log.ts';
import { INT32_MAX, type SyncTableStore } from '../adapters/syncTable/index.ts';
import type { WorkerControl } from '../machines/workers.ts';
import { ErrorCode, errorBody, parseJobCreate } from './jobRequest.ts';
import { send } from './negotiate.ts';
import { jobListRoute } from './jobList.ts';
import { serviceStatus, workersStatus } from './workerStatus.ts';

export interface AppDependencies {
  store: SyncTableStore;
  hasFlow(model: string): boolean;
  workers: WorkerControl;
  logger: Logger;
  commitId(): string | null;
  /** extra routes (inspection page, WebSocket upgrade helpers) mounted before the 404 */
  extend?: (app: express.Express) => void;
}

/** Express 5 passes rejected promises to the error handler; this keeps the handlers small. */
type Handler = (req: Request, res: Response) => Promise<void> | void;

export function createApp(deps: AppDependencies): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(express.json({ limit: '1mb' }));
  app.use(express.urlencoded({ extended: false, limit: '1mb' }));

  const createJob: Handler = async (req, res) => {
    const params: Record<string, unknown> = { ...(req.query as Record<string, unknown>) };
    if (req.method === 'POST' && req.body && typeof req.body === 'object') Object.assign(params, req.body);
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
    const id = /^\d{1,10}$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(id) || id < 1 || id > INT32_MAX) {
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

  app.get('/service/version', (_req, res) => {
    const id = deps.commitId();
    if (!id) {
      res.status(503).type('text/plain').send('version unknown: neither a git checkout nor dist/version.txt\n');
      return;
    }
    res.type('text/plain').send(id);
  });

  app.get('/service/status', async (req, res) => {
    send(req, res, 200, 'sosync_status', workersStatus(await deps.workers.status()));
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

  deps.extend?.(app);

  app.use((req, res) => {
    send(req, res, 404, 'error', { error: 'not found', path: req.path });
  });

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = err as { type?: string; status?: number; message?: string };
    if (e.type === 'entity.parse.failed') {
      send(req, res, 400, 'job_result', errorBody('InterfaceError', { body: `is not valid ${req.is('json') ? 'JSON' : 'form data'}: ${e.message}` }));
      return;
    }
    if (e.type === 'entity.too.large') {
      send(req, res, 413, 'job_result', errorBody('InterfaceError', { body: 'is larger than 1 MB' }));
      return;
    }
    if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
      send(req, res, e.status, 'error', { error: e.message ?? 'bad request' });
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
