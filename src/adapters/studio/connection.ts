/**
 * The connection to FS: one mssql pool opened on first use, parameterized statements, transactions
 * that collect the rows they write, and the classification of mssql's errors into the StudioError
 * kinds (FS refused the statement / FS was not there).
 */
import sql from 'mssql';
import type { Logger } from '../../log.ts';
import { StudioError, StudioInputError, StudioQueryError, StudioUnavailableError } from './errors.ts';
import { formatHostPort } from '../hostPort.ts';
import { guardTokenStreams } from './tokenStreamGuard.ts';
import { connectWithoutNagle } from './noDelay.ts';
import type { WrittenRow } from './types.ts';

export interface StudioClientOptions {
  host: string;
  port?: number;
  database: string;
  user: string;
  password: string;
  encrypt: boolean;
  trustServerCertificate: boolean;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  /** most connections the pool opens; default 5 */
  poolMax?: number;
}

/** The SQL types sosync sends values as. */
export type ColumnType = 'int' | 'bit' | 'date' | 'datetime2' | 'nvarchar';

export interface Param {
  name: string;
  type: ColumnType;
  value: unknown;
}

/** Runs one batch; answers its result sets. */
/** A statement (or batch) with its parameters, to run alone or joined into a larger batch. */
export interface Statement {
  text: string;
  params: Param[];
}

export type Runner = (text: string, params?: Param[]) => Promise<Record<string, unknown>[][]>;

/** A transaction's statements and the rows it wrote so far (the evidence a job row keeps). */
export interface WriteScope {
  /** host:port, as named in errors */
  address: string;
  run: Runner;
  written: WrittenRow[];
}

/**
 * A write's scope (inTransaction): its transaction begins with the first batch sent through `run`.
 * A write that sends only one batch sends it through `final` instead: that batch is then a
 * transaction of its own, begun and committed in the same round trip (ownTransaction).
 */
export interface TransactionScope extends WriteScope {
  /** a read before the write: outside any transaction while none has begun, else in it */
  read: Runner;
  /**
   * The scope of the write's last batch: in the transaction if one has begun, else the batch's own
   * transaction. Nothing may be sent after it.
   */
  readonly final: WriteScope;
}

/**
 * `text` as a transaction of its own, in one batch: SQL Server rolls all of it back when any
 * statement fails (XACT_ABORT ON; also when the client cancels it after a timeout), and commits
 * it at its end. The session keeps XACT_ABORT ON, which makes no difference to sosync's other batches:
 * a failure in a transaction begun apart rolls it all back anyway (inTransaction).
 */
export function ownTransaction(text: string): string {
  return `SET XACT_ABORT ON;\nBEGIN TRANSACTION;\n${text}\nCOMMIT TRANSACTION;`;
}

export interface StudioConnection {
  /** host:port, as named in errors */
  readonly address: string;
  run: Runner;
  /**
   * Runs `work` as one transaction (begun with its first batch, see TransactionScope); a failure
   * rolls it back and carries the rows written so far.
   */
  inTransaction<T>(work: (scope: TransactionScope) => Promise<T>): Promise<T>;
  /** opens the pool if it is not open yet */
  connect(): Promise<void>;
  close(): Promise<void>;
}

const isoDatePattern = /^\d{4}-\d{2}-\d{2}$/;

/** A `date` value as sent: midnight UTC of the day. Throws StudioInputError naming `column`. */
export function dateParam(value: unknown, column: string): Date | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new StudioInputError(`${column}: invalid date`);
    return new Date(Date.UTC(value.getUTCFullYear(), value.getUTCMonth(), value.getUTCDate()));
  }
  if (typeof value === 'string' && isoDatePattern.test(value)) {
    const d = new Date(`${value}T00:00:00Z`);
    if (!Number.isNaN(d.getTime()) && d.toISOString().startsWith(value)) return d;
  }
  throw new StudioInputError(`${column}: "${String(value)}" is not a date (YYYY-MM-DD)`);
}

function paramValue(p: Param): unknown {
  const v = p.value;
  if (v === null || v === undefined) return null;
  switch (p.type) {
    case 'date': return dateParam(v, p.name);
    case 'datetime2': {
      const d = v instanceof Date ? v : new Date(String(v));
      if (Number.isNaN(d.getTime())) throw new StudioInputError(`${p.name}: "${String(v)}" is not a date and time`);
      return d;
    }
    case 'bit': return v === true || v === 1 || v === '1';
    case 'int': {
      const n = typeof v === 'number' ? v : Number(v);
      if (!Number.isInteger(n)) throw new StudioInputError(`${p.name}: "${String(v)}" is not an integer`);
      return n;
    }
    default: return String(v);
  }
}

function mssqlType(type: ColumnType) {
  switch (type) {
    case 'int': return sql.Int;
    case 'bit': return sql.Bit;
    case 'date': return sql.Date;
    case 'datetime2': return sql.DateTime2(3);
    default: return sql.NVarChar(sql.MAX);
  }
}

const connectionCodes = new Set(['ESOCKET', 'ETIMEOUT', 'ECONNCLOSED', 'ELOGIN', 'EINSTLOOKUP', 'ENOTOPEN', 'ENOCONN', 'ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT']);

/** mssql's error → "FS answered with an error" (query) or "FS was not there" (unavailable). */
export function classifyStudioError(address: string, err: unknown): StudioError {
  if (err instanceof StudioError) return err;
  const e = err as { code?: string; number?: number; message?: string; originalError?: { info?: { number?: number } } };
  const message = e?.message ?? String(err);
  const number = typeof e?.number === 'number' ? e.number : e?.originalError?.info?.number;
  if (err instanceof sql.RequestError && typeof number === 'number' && e.code === 'EREQUEST') {
    return new StudioQueryError(address, message, number, { cause: err });
  }
  if (err instanceof sql.ConnectionError || (e?.code && connectionCodes.has(e.code))) {
    return new StudioUnavailableError(address, message, e.code, { cause: err });
  }
  if (typeof number === 'number') return new StudioQueryError(address, message, number, { cause: err });
  if (err instanceof sql.TransactionError) return new StudioUnavailableError(address, message, e.code, { cause: err });
  return new StudioQueryError(address, message, 0, { cause: err });
}

export function openStudioConnection(options: StudioClientOptions, logger: Logger): StudioConnection {
  const port = options.port ?? 1433;
  const address = formatHostPort(options.host, port);
  const log = logger.child({ component: 'studio', host: address, database: options.database });
  guardTokenStreams(log);
  const config: sql.config = {
    server: options.host,
    port,
    database: options.database,
    user: options.user,
    password: options.password,
    connectionTimeout: options.connectTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    pool: { max: options.poolMax ?? 5, min: 0, idleTimeoutMillis: 30_000 },
    // mssql checks a pooled connection before each use; its default is a `SELECT 1` round trip, which
    // doubled every statement's round trips. The socket check costs none; a connection that died
    // unnoticed fails its statement as "FS unavailable", which the job retries (and the pool drops it).
    validateConnection: 'socket',
    options: {
      encrypt: options.encrypt,
      trustServerCertificate: options.trustServerCertificate,
      useUTC: true,
      appName: 'sosync',
      // tedious's own socket keeps Nagle's algorithm on: a delayed ACK per statement (noDelay.ts)
      connector: connectWithoutNagle as unknown as () => Promise<import('node:net').Socket>,
    },
  };

  let poolPromise: Promise<sql.ConnectionPool> | null = null;
  let closed = false;
  const toStudioError = (err: unknown) => classifyStudioError(address, err);

  function getPool(): Promise<sql.ConnectionPool> {
    if (closed) return Promise.reject(new StudioUnavailableError(address, 'the client is closed'));
    if (!poolPromise) {
      const pool = new sql.ConnectionPool(config);
      pool.on('error', (err) => log.warn({ err: (err as Error).message }, 'FS connection pool error'));
      poolPromise = pool.connect().then(
        (p) => {
          log.debug('connected to FS');
          return p;
        },
        (err) => {
          // A failed connect leaves the pool unusable: start over on the next call.
          poolPromise = null;
          pool.close().catch(() => undefined);
          throw err;
        },
      );
    }
    return poolPromise;
  }

  const runnerFor = (target: () => Promise<sql.ConnectionPool | sql.Transaction>): Runner => async (text, params = []) => {
    const request = new sql.Request((await target()) as sql.ConnectionPool);
    for (const p of params) request.input(p.name, mssqlType(p.type), paramValue(p));
    const result = await request.query(text);
    return (result.recordsets as unknown as Record<string, unknown>[][]) ?? [];
  };

  return {
    address,

    async run(text, params) {
      try {
        return await runnerFor(getPool)(text, params);
      } catch (err) {
        throw toStudioError(err);
      }
    },

    async inTransaction(work) {
      const written: WrittenRow[] = [];
      // set once the write's first batch begins it (begin, below)
      let transaction = null as sql.Transaction | null;
      let begun: Promise<sql.Transaction> | null = null;
      let finished = false;
      const begin = () => (begun ??= getPool().then(async (pool) => {
        const tx = new sql.Transaction(pool);
        transaction = tx;
        await tx.begin();
        return tx;
      }));
      const inTransaction = runnerFor(begin);
      const outside = runnerFor(getPool);
      const open = (what: string) => {
        if (finished) throw new Error(`FS write: ${what} after the write's last batch`);
      };
      const scope: TransactionScope = {
        address,
        written,
        run: async (text, params) => {
          open('a batch');
          return inTransaction(text, params);
        },
        read: async (text, params) => {
          open('a read');
          return begun ? inTransaction(text, params) : outside(text, params);
        },
        final: {
          address,
          written,
          run: async (text, params) => {
            open('a second last batch');
            finished = true;
            return begun ? inTransaction(text, params) : outside(ownTransaction(text), params);
          },
        },
      };
      try {
        const result = await work(scope);
        if (transaction) await transaction.commit();
        return result;
      } catch (err) {
        if (transaction) {
          // The server may have ended the transaction already; the rollback is then a no-op.
          await transaction.rollback().catch(() => undefined);
        }
        const e = toStudioError(err);
        e.request = written;
        e.answer = e.message;
        throw e;
      }
    },

    async connect() {
      await getPool().catch((err) => { throw toStudioError(err); });
    },

    async close() {
      closed = true;
      const p = poolPromise;
      poolPromise = null;
      if (p) await p.then((pool) => pool.close()).catch(() => undefined);
    },
  };
}
