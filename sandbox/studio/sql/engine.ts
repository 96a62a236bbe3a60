/**
 * The FS stand-in's SQL engine: runs the T-SQL subset sosync sends over PostgreSQL (pg.Pool or
 * PGlite), behind the SqlEngine seam the TDS wire server calls.
 */
import type { Logger } from '../../../src/log.ts';
import {
  SqlServerError, type SqlEngine, type SqlParameter, type SqlSession, type StatementResult,
} from '../engine.ts';
import { Announcer } from './announcer.ts';
import { createBackend, type Backend, type BackendConnection, type PgResult, type StudioDatabase } from './backend.ts';
import { toSqlServerError } from './errors.ts';
import { schemaLockKey, studioSchemaSql } from './schema.ts';
import { splitStatements, tokenize, type Token } from './tokenizer.ts';
import { hiddenIdentityColumn, readsSession, translateStatement, type TranslatedStatement, type TranslationContext } from './translate.ts';
import { columnInfo, convertValue, parameterText } from './values.ts';

export interface StudioUser {
  user: string;
  password: string;
}

/** Makes matching statements fail, to exercise error paths of the client and the sync flows. */
export interface StatementFailure {
  /** matched against the T-SQL text of each statement (a string matches case-insensitively as a substring) */
  match: string | RegExp;
  message?: string;
  number?: number;
  /** how many statements fail before the rule is used up; default: all */
  times?: number;
}

export interface StudioEngineOptions {
  db: StudioDatabase;
  databaseName: string;
  users: StudioUser[];
  /** sosync's /job/create; without it announcements wait in the outbox */
  announceUrl?: string;
  logger: Logger;
  failStatements?: StatementFailure[];
  /** first pause before a failed announcement is retried (ms) */
  announceRetryMs?: number;
}

export interface StudioEngine extends SqlEngine {
  readonly databaseName: string;
  readonly backendKind: 'pg' | 'pglite';
  setAnnounceUrl(url: string | undefined, headers?: Record<string, string>): void;
  /** Replaces the statement failure rules (empty list: none). */
  failStatements(rules: StatementFailure[]): void;
  /** Sends the announcements that are due now (tests wait on it). */
  flushAnnouncements(): Promise<void>;
  /** Number of announcements still waiting in the outbox. */
  pendingAnnouncements(): Promise<number>;
  close(): Promise<void>;
}

interface FailureRule extends StatementFailure { remaining: number }

let nextSpid = 51;

/**
 * A client sends the same few batch texts again and again (parameterized: the values travel
 * apart), so their statements and the translations of their queries are kept by text, up to
 * CACHE_LIMIT each (the oldest goes first). A query's translation depends on its text, the
 * parameters' types and whether parameters are cast; one that reads the session's state
 * (@@ROWCOUNT, SCOPE_IDENTITY(), …) is made anew each time, as is any other statement (an EXEC
 * takes its parameters' values). Tokens are never changed once made, so a batch's may be shared.
 */
const CACHE_LIMIT = 1000;
const batchStatements = new Map<string, Token[][]>();
const translations = new Map<string, TranslatedStatement>();

function remember<V>(cache: Map<string, V>, key: string, make: () => V): V {
  const known = cache.get(key);
  if (known !== undefined) return known;
  const value = make();
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
  cache.set(key, value);
  return value;
}

/** The statements of a batch's text, as the tokenizer splits them. */
function statementsOf(sql: string): Token[][] {
  return remember(batchStatements, sql, () => splitStatements(tokenize(sql)));
}

/**
 * Where a batch that is a transaction of its own begins and commits it — SET options, then BEGIN
 * TRANSACTION, its statements, and COMMIT TRANSACTION last — by the kinds translateStatement gives
 * (`kindOf`, null for a statement it refuses). Null for any other batch.
 */
function ownTransactionBounds(statements: Token[][], kindOf: (tokens: Token[]) => TranslatedStatement['kind'] | null): { begin: number; commit: number } | null {
  const begin = statements.findIndex((tokens) => tokens[0]?.upper !== 'SET');
  const commit = statements.length - 1;
  if (begin < 0 || commit <= begin + 1) return null;
  return kindOf(statements[begin]) === 'begin' && kindOf(statements[commit]) === 'commit' ? { begin, commit } : null;
}

const cachedKinds = new Set(['SELECT', 'INSERT', 'UPDATE', 'DELETE']);

/** translateStatement, kept for a query that reads nothing of the session (see CACHE_LIMIT). */
function translatedStatement(text: string, tokens: Token[], ctx: TranslationContext): TranslatedStatement {
  if (!cachedKinds.has(tokens[0]?.upper) || readsSession(tokens)) return translateStatement(tokens, ctx);
  const types = [...ctx.parameters].map(([name, p]) => `${name}:${p.type}`).sort().join(',');
  return remember(translations, `${ctx.castParameters ? 1 : 0}\u0000${types}\u0000${text}`, () => translateStatement(tokens, ctx));
}

export async function createStudioEngine(options: StudioEngineOptions): Promise<StudioEngine> {
  const backend = createBackend(options.db);
  const log = options.logger;
  await setUpSchema(backend);
  const announcer = new Announcer({
    backend, logger: log, url: options.announceUrl, retryMs: options.announceRetryMs,
  });
  let rules: FailureRule[] = [];
  const setRules = (list: StatementFailure[]) => {
    rules = list.map((r) => ({ ...r, remaining: r.times ?? Number.POSITIVE_INFINITY }));
  };
  setRules(options.failStatements ?? []);
  const sessions = new Set<StudioSession>();

  const shared: EngineShared = {
    backend,
    databaseName: options.databaseName,
    log,
    afterCommit: () => announcer.kick(),
    checkFailure(statementText) {
      for (const rule of rules) {
        if (rule.remaining <= 0) continue;
        const hit = typeof rule.match === 'string'
          ? statementText.toLowerCase().includes(rule.match.toLowerCase())
          : rule.match.test(statementText);
        if (hit) {
          rule.remaining--;
          throw new SqlServerError(rule.message ?? `Injected failure for statement: ${statementText.slice(0, 200)}`, rule.number ?? 50000, 16);
        }
      }
    },
    failuresArmed: () => rules.some((rule) => rule.remaining > 0),
    forget: (s) => sessions.delete(s),
  };

  return {
    databaseName: options.databaseName,
    backendKind: backend.kind,
    authenticate(user, password, database) {
      const known = options.users.find((u) => u.user.toLowerCase() === user.toLowerCase());
      if (!known || known.password !== password) return { ok: false, reason: `Login failed for user '${user}'.` };
      if (database && database.toLowerCase() !== options.databaseName.toLowerCase()) {
        return { ok: false, reason: `Cannot open database "${database}" requested by the login. The login failed.` };
      }
      return { ok: true };
    },
    async openSession(database, user) {
      if (database && database.toLowerCase() !== options.databaseName.toLowerCase()) {
        throw new SqlServerError(`Cannot open database "${database}" requested by the login. The login failed.`, 4060, 11);
      }
      const session = new StudioSession(shared, user);
      sessions.add(session);
      return session;
    },
    setAnnounceUrl: (url, headers) => announcer.setUrl(url, headers),
    failStatements: setRules,
    flushAnnouncements: () => announcer.flush(),
    async pendingAnnouncements() {
      const conn = await backend.acquire();
      try {
        const r = await conn.query('SELECT count(*) FROM studio.announcement');
        return Number(r.rows[0][0]);
      } finally {
        conn.release();
      }
    },
    async close() {
      for (const s of [...sessions]) await s.close();
      await announcer.close();
    },
  };
}

/** Creates (idempotently) the FS schema, functions, triggers and defaults. */
export async function setUpSchema(backend: Backend): Promise<void> {
  const conn = await backend.acquire();
  try {
    await conn.exec('BEGIN');
    try {
      await conn.query(`SELECT pg_advisory_xact_lock(${schemaLockKey})`);
      await conn.exec(studioSchemaSql());
      await conn.exec('COMMIT');
    } catch (err) {
      await conn.exec('ROLLBACK');
      throw err;
    }
  } finally {
    conn.release();
  }
}

interface EngineShared {
  backend: Backend;
  databaseName: string;
  log: Logger;
  afterCommit(): void;
  checkFailure(statementText: string): void;
  /** whether a failStatements rule may still fail a statement */
  failuresArmed(): boolean;
  forget(session: StudioSession): void;
}

class StudioSession implements SqlSession {
  private transaction: BackendConnection | null = null;
  private tranCount = 0;
  private scopeIdentity: number | null = null;
  private rowCount = 0;
  /** EXEC sp_set_session_context N'noSyncJobSwitch', 1 — sosync's own deletes announce nothing */
  private suppressSyncJobs = false;
  /** SET XACT_ABORT ON: an error rolls the open transaction back (SQL Server's default is OFF) */
  xactAbort = false;
  private closed = false;
  readonly spid = nextSpid++;

  constructor(private readonly shared: EngineShared, readonly user: string) {}

  get inTransaction(): boolean {
    return this.transaction !== null;
  }

  async execute(sql: string, parameters: SqlParameter[]): Promise<StatementResult[]> {
    if (this.closed) throw new SqlServerError('The session is closed.', 50000, 20);
    const byName = new Map(parameters.map((p) => [p.name.replace(/^@/, '').toLowerCase(), p]));
    const statements = statementsOf(sql);
    try {
      const own = this.transaction ? null : ownTransactionBounds(statements, (tokens) => this.kindOf(tokens, byName));
      if (own) return await this.executeOwnTransaction(sql, statements, own, byName);
      return (await this.batchAtOnce(sql, statements, byName)) ?? (await this.runStatements(sql, statements, byName, []));
    } catch (err) {
      // XACT_ABORT ON: a run-time error ends the batch and rolls the whole transaction back
      if (this.xactAbort && this.transaction) await this.rollbackTransaction().catch(() => undefined);
      throw err;
    }
  }

  /** The kind of statement `tokens` is (translateStatement), or null when the stand-in refuses it. */
  private kindOf(tokens: Token[], parameters: Map<string, SqlParameter>): TranslatedStatement['kind'] | null {
    try {
      return translateStatement(tokens, this.translationContext(parameters)).kind;
    } catch {
      return null;
    }
  }

  private translationContext(parameters: Map<string, SqlParameter>): TranslationContext {
    return { parameters, scopeIdentity: this.scopeIdentity, tranCount: this.tranCount, rowCount: this.rowCount, spid: this.spid };
  }

  /**
   * A batch that is a transaction of its own — `[SET …;] BEGIN TRANSACTION; …; COMMIT TRANSACTION` —
   * with its statements sent to PostgreSQL at once where batchAtOnce can; else (or when that
   * failed, leaving the transaction as it was begun) statement by statement.
   */
  private async executeOwnTransaction(sql: string, statements: Token[][], own: { begin: number; commit: number }, byName: Map<string, SqlParameter>): Promise<StatementResult[]> {
    const results = await this.runStatements(sql, statements.slice(0, own.begin + 1), byName, []);
    const inner = statements.slice(own.begin + 1, own.commit);
    const atOnce = await this.batchAtOnce(sql, inner, byName);
    if (atOnce) return this.runStatements(sql, statements.slice(own.commit), byName, [...results, ...atOnce]);
    return this.runStatements(sql, statements.slice(own.begin + 1), byName, results);
  }

  /** Runs `statements` one by one after `results` (those of the batch's statements before them). */
  private async runStatements(sql: string, statements: Token[][], byName: Map<string, SqlParameter>, results: StatementResult[]): Promise<StatementResult[]> {
    let borrowed: BackendConnection | null = null;
    let broken = false;
    /** a statement outside a transaction changed rows, so the triggers may have announced something */
    let wrote = false;
    try {
      for (const tokens of statements) {
        const text = statementText(sql, tokens);
        this.shared.checkFailure(text);
        const ctx = this.translationContext(byName);
        const translated = translatedStatement(text, tokens, ctx);
        switch (translated.kind) {
          case 'ignore':
            results.push({ rowCount: null });
            continue;
          case 'begin':
            if (borrowed) { borrowed.release(); borrowed = null; }
            await this.beginTransaction();
            results.push({ rowCount: null });
            continue;
          case 'commit':
            await this.commitTransaction();
            results.push({ rowCount: null });
            continue;
          case 'rollback':
            await this.rollbackTransaction();
            results.push({ rowCount: null });
            continue;
          case 'xactAbort':
            this.xactAbort = translated.on;
            results.push({ rowCount: null });
            continue;
          case 'sessionContext':
            if (translated.key.toLowerCase() === 'nosyncjobswitch') {
              this.suppressSyncJobs = Number(translated.value) === 1 || translated.value === true;
              if (this.transaction) await this.applySuppression(this.transaction);
            }
            results.push({ rowCount: null });
            continue;
          case 'query': {
            const conn = this.transaction ?? (borrowed ??= await this.shared.backend.acquire());
            const run = (castParameters: boolean) => {
              const t = castParameters ? translatedStatement(text, tokens, { ...ctx, castParameters }) : translated;
              if (t.kind !== 'query') throw new Error('translation changed kind');
              const values = t.parameters.map((name) => parameterText(byName.get(name)!));
              return this.runQuery(conn, t.sql, values);
            };
            let pg;
            try {
              pg = await run(false);
            } catch (err) {
              // PostgreSQL cannot always infer a parameter's type (SELECT @p); SQL Server knows it.
              if ((err as { code?: string }).code !== '42P18') throw err;
              pg = await run(true);
            }
            if (!this.transaction && pg.command !== 'SELECT') wrote = true;
            results.push(this.toResult(pg, translated.identityOf !== undefined));
            continue;
          }
        }
      }
      return results;
    } catch (err) {
      broken = isConnectionError(err);
      const e = toSqlServerError(err, this.shared.databaseName);
      this.shared.log.debug({ err: e.message, number: e.number }, 'FS stand-in statement failed');
      throw e;
    } finally {
      if (borrowed) borrowed.release(broken);
      // a read announces nothing: the outbox is looked at only after a write (a commit looks itself)
      if (wrote) this.shared.afterCommit();
    }
  }

  /**
   * A batch sent to PostgreSQL in one round trip instead of one per statement: outside a
   * transaction a batch of reads only (a person stack's, say); inside one any batch (a stack's
   * updates too), between one savepoint and its release. Null when the batch is not one such, or
   * when that failed — then it runs statement by statement, as any batch, and a failing statement
   * is answered as SQL Server would: a read changes nothing, so running it again is safe, and inside
   * a transaction the failure first rolls back to the savepoint, so nothing of the batch stays and
   * the transaction goes on as before. A statement that reads what an earlier one leaves
   * (@@ROWCOUNT, SCOPE_IDENTITY(), an insert's identity) is not run ahead of it.
   */
  private async batchAtOnce(sql: string, statements: Token[][], byName: Map<string, SqlParameter>): Promise<StatementResult[] | null> {
    if (statements.length < 2 || this.shared.backend.kind !== 'pg' || this.shared.failuresArmed()) return null;
    const ctx = this.translationContext(byName);
    const queries: Array<{ sql: string; params: Array<string | null> }> = [];
    for (const tokens of statements) {
      if (readsSession(tokens)) return null;
      const text = statementText(sql, tokens);
      let translated;
      try {
        translated = translatedStatement(text, tokens, ctx);
      } catch {
        return null;
      }
      if (translated.kind !== 'query' || translated.identityOf !== undefined) return null;
      if (!this.transaction && !/^\s*SELECT\b/i.test(translated.sql)) return null;
      queries.push({ sql: translated.sql, params: translated.parameters.map((name) => parameterText(byName.get(name)!)) });
    }
    if (this.transaction) {
      const conn = this.transaction;
      const savepoint = { sql: 'SAVEPOINT studio_batch', params: [] };
      const release = { sql: 'RELEASE SAVEPOINT studio_batch', params: [] };
      let answers: PgResult[];
      try {
        answers = (await conn.queryBatch!([savepoint, ...queries, release])).slice(1, -1);
      } catch {
        // statement by statement then; a connection that broke says so there
        await conn.exec('ROLLBACK TO SAVEPOINT studio_batch; RELEASE SAVEPOINT studio_batch').catch(() => undefined);
        return null;
      }
      // the batch's writes are done and released: running it again statement by statement would write twice
      if (answers.length !== queries.length) throw new Error(`PostgreSQL answered ${answers.length} results for a batch of ${queries.length} statements`);
      return answers.map((answer) => this.toResult(answer, false));
    }
    let conn: BackendConnection | null = null;
    let broken = false;
    try {
      conn = await this.shared.backend.acquire();
      const answers = await conn.queryBatch!(queries);
      if (answers.length !== queries.length) return null;
      return answers.map((answer) => this.toResult(answer, false));
    } catch (err) {
      broken = isConnectionError(err);
      return null;
    } finally {
      conn?.release(broken);
    }
  }

  /** One statement; inside a transaction a failure undoes only that statement, as in SQL Server. */
  private async runQuery(conn: BackendConnection, sql: string, values: Array<string | null>) {
    if (this.transaction) {
      try {
        return await conn.query(sql, values, { savepoint: 'studio_statement' });
      } catch (err) {
        await conn.exec('ROLLBACK TO SAVEPOINT studio_statement; RELEASE SAVEPOINT studio_statement').catch(() => undefined);
        throw err;
      }
    }
    if (this.suppressSyncJobs) {
      // The trigger reads the suppression from a transaction-local setting.
      await conn.exec('BEGIN');
      try {
        await this.applySuppression(conn);
        const r = await conn.query(sql, values);
        await conn.exec('COMMIT');
        return r;
      } catch (err) {
        await conn.exec('ROLLBACK').catch(() => undefined);
        throw err;
      }
    }
    return await conn.query(sql, values);
  }

  private async applySuppression(conn: BackendConnection) {
    await conn.query(`SELECT set_config('studio.no_sync_job', $1, true)`, [this.suppressSyncJobs ? 'on' : 'off']);
  }

  private toResult(pg: { fields: { name: string; dataTypeID: number; dataTypeModifier?: number }[]; rows: unknown[][]; rowCount: number | null }, hiddenIdentity: boolean): StatementResult {
    // PGlite reports no count for SELECT; SQL Server counts the rows sent.
    const rowCount = Math.max(pg.rowCount ?? 0, pg.rows.length);
    this.rowCount = rowCount;
    let fields = pg.fields;
    let rows = pg.rows;
    if (hiddenIdentity) {
      const last = fields.length - 1;
      if (last >= 0 && fields[last].name === hiddenIdentityColumn) {
        if (rows.length) this.scopeIdentity = Number(rows[rows.length - 1][last]);
        fields = fields.slice(0, last);
        rows = rows.map((r) => r.slice(0, last));
      }
    }
    if (fields.length === 0) return { rowCount };
    const columns = fields.map((f, i) => columnInfo(f, rows, i));
    return {
      columns,
      rows: rows.map((r) => r.map((v, i) => convertValue(v, columns[i], fields[i].dataTypeID))),
      rowCount,
    };
  }

  async beginTransaction(): Promise<void> {
    if (this.transaction) { this.tranCount++; return; }
    const conn = await this.shared.backend.acquire();
    try {
      await conn.exec('BEGIN');
      if (this.suppressSyncJobs) await this.applySuppression(conn);
    } catch (err) {
      conn.release(true);
      throw toSqlServerError(err, this.shared.databaseName);
    }
    this.transaction = conn;
    this.tranCount = 1;
  }

  async commitTransaction(): Promise<void> {
    if (!this.transaction) {
      throw new SqlServerError('The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION.', 3902, 16);
    }
    if (this.tranCount > 1) { this.tranCount--; return; }
    await this.finish('COMMIT');
    this.shared.afterCommit();
  }

  async rollbackTransaction(): Promise<void> {
    if (!this.transaction) {
      throw new SqlServerError('The ROLLBACK TRANSACTION request has no corresponding BEGIN TRANSACTION.', 3903, 16);
    }
    await this.finish('ROLLBACK');
  }

  private async finish(command: 'COMMIT' | 'ROLLBACK') {
    const conn = this.transaction!;
    this.transaction = null;
    this.tranCount = 0;
    let broken = false;
    try {
      await conn.exec(command);
    } catch (err) {
      broken = true;
      throw toSqlServerError(err, this.shared.databaseName);
    } finally {
      conn.release(broken);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.shared.forget(this);
    if (this.transaction) await this.finish('ROLLBACK').catch(() => undefined);
  }
}

function statementText(sql: string, tokens: Token[]): string {
  return sql.slice(tokens[0].start, tokens[tokens.length - 1].end);
}

function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return typeof code === 'string' && (code.startsWith('08') || code === 'ECONNRESET' || code === '57P01');
}
