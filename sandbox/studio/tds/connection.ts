/**
 * One client connection: PRELOGIN → LOGIN7 → requests, answered in order. Requests are handled one
 * at a time (tedious never pipelines); an attention (cancel) is answered as soon as the request in
 * flight has finished. Nothing here throws out of an event handler: framing errors close the
 * socket, errors inside a well-framed request become ERROR tokens.
 */
import type net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../../../src/log.ts';
import { SqlServerError, type SqlEngine, type SqlParameter, type SqlSession, type StatementResult } from '../engine.ts';
import { Encryption, parseLogin7, parsePrelogin, preloginResponse } from './login.ts';
import {
  DEFAULT_PACKET_SIZE, MAX_PACKET_SIZE, MIN_PACKET_SIZE, MessageAssembler, PacketType, framePackets, type TdsMessage,
} from './packets.ts';
import { TdsProtocolError } from './reader.ts';
import {
  RpcCallError, TmRequestType, isSpExecuteSql, parseRpc, parseSqlBatch, parseTransactionManager, toSpExecuteSql,
  type TransactionManagerRequest,
} from './requests.ts';
import {
  CurCmd, DoneStatus, EnvChange, Token, writeColMetadata, writeDone, writeEnvChangeBytes, writeEnvChangeText,
  writeError, writeLoginAck, writeReturnStatus, writeRow,
} from './tokens.ts';
import { SERVER_COLLATION, UnsupportedTypeError, ValueConversionError, resolveColumns } from './values.ts';
import { ByteWriter } from './writer.ts';

export interface ConnectionContext {
  engine: SqlEngine;
  logger: Logger;
  serverName: string;
  /** message every batch/RPC fails with, or null */
  failStatementsMessage(): string | null;
  /** how the answer to this statement is to be broken (fault switch), or null */
  responseFault(sql: string): ResponseFault | null;
  /** a fresh 8-byte transaction descriptor */
  newTransactionDescriptor(): Buffer;
  /** ms every request waits before it is answered (a network's round trip); 0 = none */
  latencyMs: number;
  /** told of every request after login (benchmarks and tests count round trips) */
  countRequest(): void;
}

type State = 'prelogin' | 'login' | 'loggedIn' | 'closed';

/**
 * Broken answers of a misbehaving server or network: `stall` never answers (until the client
 * cancels or goes away), `cutMidRow` sends the first half of the answer and drops the connection,
 * `unexpectedToken` answers with a token type TDS does not have.
 */
export type ResponseFault = 'stall' | 'cutMidRow' | 'unexpectedToken';

const EMPTY = Buffer.alloc(0);
const PRODUCT_VERSION: [number, number, number, number] = [16, 0, 0x03, 0xe8];

/** An error answered to the client as an ERROR token. */
interface ClientError {
  number: number;
  severity: number;
  state: number;
  message: string;
  lineNumber: number;
}

function toClientError(err: unknown, logger: Logger): ClientError {
  if (err instanceof SqlServerError) {
    return { number: err.number, severity: err.severity, state: err.state, message: err.message, lineNumber: err.lineNumber };
  }
  if (err instanceof RpcCallError) return { number: err.number, severity: 16, state: 1, message: err.message, lineNumber: 1 };
  if (err instanceof UnsupportedTypeError || err instanceof TdsProtocolError) {
    return {
      number: 8016, severity: 16, state: 1, lineNumber: 1,
      message: `The incoming tabular data stream (TDS) protocol stream is incorrect: ${err.message}.`,
    };
  }
  if (err instanceof ValueConversionError) {
    logger.error({ err }, 'tds: the engine returned a value that does not fit its column');
    return { number: 50000, severity: 16, state: 1, lineNumber: 1, message: `Result conversion failed: ${err.message}` };
  }
  logger.error({ err }, 'tds: unexpected error while serving a request');
  return {
    number: 50000, severity: 16, state: 1, lineNumber: 1,
    message: `Internal error in the FS stand-in: ${err instanceof Error ? err.message : String(err)}`,
  };
}

/** Statements tedious and mssql send to set up or probe a connection; failStatements lets them through. */
export function isSessionHousekeeping(sql: string): boolean {
  const text = sql.trim().replace(/;\s*$/, '');
  if (/^select\s+1$/i.test(text)) return true;
  const parts = text.split(/[\r\n;]+/).map((s) => s.trim()).filter(Boolean);
  return parts.length > 0 && parts.every((s) => /^set\s/i.test(s));
}

export class TdsConnection {
  private state: State = 'prelogin';
  private readonly assembler = new MessageAssembler();
  private queue: Promise<void> = Promise.resolve();
  private busy = false;
  private socketClosed = false;
  private cancelRequested = false;
  private brokenResponse: ResponseFault | null = null;
  private releaseStall: (() => void) | null = null;
  private encryptionRequested = false;
  private packetSize = DEFAULT_PACKET_SIZE;
  private session: SqlSession | undefined;
  private transactionDescriptor: Buffer | undefined;
  private user = '';
  private database = '';
  /** the application its LOGIN7 named, once logged in */
  appName: string | null = null;
  private readonly log: Logger;
  readonly closed: Promise<void>;
  private markClosed!: () => void;

  constructor(
    private readonly socket: net.Socket,
    readonly spid: number,
    private readonly ctx: ConnectionContext,
  ) {
    this.log = ctx.logger.child({ spid });
    this.closed = new Promise((resolve) => { this.markClosed = resolve; });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'tds: socket error'));
    socket.on('close', () => { void this.onClose(); });
  }

  /** Ends the connection from the server side. */
  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    let messages: TdsMessage[];
    try {
      messages = this.assembler.push(chunk);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'tds: malformed packet stream, closing the connection');
      this.socket.destroy();
      return;
    }
    for (const message of messages) {
      if (message.type === PacketType.ATTENTION) {
        this.onAttention();
        continue;
      }
      this.queue = this.queue
        .then(() => this.handle(message))
        .catch((err: unknown) => {
          this.log.error({ err }, 'tds: connection failed while serving a request, closing it');
          this.socket.destroy();
        });
    }
  }

  private onAttention(): void {
    if (this.state !== 'loggedIn') return;
    this.log.debug({ busy: this.busy }, 'tds: attention received');
    if (this.busy) {
      this.cancelRequested = true;
      this.releaseStall?.();
      return;
    }
    // Nothing in flight: the answer went out already (the client read it as the cancelled answer);
    // the acknowledgement follows as a message of its own.
    this.queue = this.queue.then(() => this.sendAttentionAck());
  }

  private sendAttentionAck(): void {
    const w = new ByteWriter();
    writeDone(w, Token.DONE, DoneStatus.ATTN, CurCmd.NONE, 0);
    this.send(w.toBuffer());
  }

  private async onClose(): Promise<void> {
    if (this.socketClosed) return;
    this.socketClosed = true;
    this.releaseStall?.();
    this.state = 'closed';
    const session = this.session;
    this.session = undefined;
    // Let a request in flight finish before the session goes away under it.
    await this.queue.catch(() => undefined);
    if (session) {
      try {
        await session.close();
      } catch (err) {
        this.log.warn({ err }, 'tds: closing the engine session failed');
      }
    }
    this.log.debug({ user: this.user, database: this.database }, 'tds: connection closed');
    this.markClosed();
  }

  private send(payload: Buffer): void {
    if (this.socket.destroyed) return;
    this.socket.write(framePackets(PacketType.TABULAR_RESULT, payload, this.packetSize, this.spid));
  }

  private async handle(message: TdsMessage): Promise<void> {
    if (this.state === 'closed') return;
    switch (this.state) {
      case 'prelogin':
        if (message.type === PacketType.PRELOGIN) return this.handlePrelogin(message.payload);
        if (message.type === PacketType.LOGIN7) return this.handleLogin(message.payload);
        break;
      case 'login':
        if (message.type === PacketType.LOGIN7) return this.handleLogin(message.payload);
        break;
      case 'loggedIn':
        return this.handleRequest(message);
    }
    this.log.warn({ type: message.type, state: this.state }, 'tds: unexpected message before login, closing the connection');
    this.socket.destroy();
  }

  private handlePrelogin(payload: Buffer): void {
    let encryption: number | undefined;
    try {
      ({ encryption } = parsePrelogin(payload));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'tds: malformed PRELOGIN, closing the connection');
      this.socket.destroy();
      return;
    }
    this.encryptionRequested = encryption === Encryption.ON || encryption === Encryption.REQ;
    this.send(preloginResponse(this.spid));
    this.state = 'login';
  }

  private loginFailed(number: number, message: string, state = 1): void {
    const w = new ByteWriter();
    writeError(w, { number, state, severity: 14, message, serverName: this.ctx.serverName, lineNumber: 1 });
    writeDone(w, Token.DONE, DoneStatus.ERROR, CurCmd.NONE, 0);
    this.send(w.toBuffer());
    this.state = 'closed';
    this.socket.end();
  }

  private async handleLogin(payload: Buffer): Promise<void> {
    let login;
    try {
      login = parseLogin7(payload);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'tds: malformed LOGIN7, closing the connection');
      this.socket.destroy();
      return;
    }
    const who = { user: login.userName, database: login.database, app: login.appName };
    if (this.encryptionRequested) {
      this.log.warn(who, 'tds: client asked for encryption, which this server does not offer');
      return this.loginFailed(18456, 'The FS stand-in does not support encryption; connect with encrypt: false.');
    }
    if (login.tdsVersion < 0x72000000) {
      return this.loginFailed(18456, 'The FS stand-in speaks TDS 7.2 or later only.');
    }
    if (login.integratedSecurity) {
      return this.loginFailed(18452, 'Login failed. The login is from an untrusted domain and cannot be used with Integrated authentication.');
    }
    const database = login.database || 'master';
    let verdict: ReturnType<SqlEngine['authenticate']>;
    try {
      verdict = this.ctx.engine.authenticate(login.userName, login.password, database);
    } catch (err) {
      this.log.error({ err, ...who }, 'tds: authenticate failed');
      verdict = { ok: false, reason: 'authentication error' };
    }
    if (!verdict.ok) {
      this.log.info({ ...who, reason: verdict.reason }, 'tds: login refused');
      return this.loginFailed(18456, `Login failed for user '${login.userName}'.`);
    }
    let session: SqlSession;
    try {
      session = await this.ctx.engine.openSession(database, login.userName);
    } catch (err) {
      this.log.warn({ err, ...who }, 'tds: opening the engine session failed');
      const message = err instanceof SqlServerError
        ? err.message
        : `Cannot open database "${database}" requested by the login. The login failed.`;
      return this.loginFailed(err instanceof SqlServerError ? err.number : 4060, message);
    }
    if (this.state === 'closed' || this.socket.destroyed) {
      await session.close().catch(() => undefined);
      return;
    }
    this.session = session;
    this.appName = login.appName;
    this.user = login.userName;
    this.database = database;
    const requested = login.packetSize || DEFAULT_PACKET_SIZE;
    const packetSize = Math.min(Math.max(requested, MIN_PACKET_SIZE), MAX_PACKET_SIZE);

    const w = new ByteWriter();
    writeEnvChangeText(w, EnvChange.DATABASE, database, 'master');
    writeEnvChangeBytes(w, EnvChange.SQL_COLLATION, SERVER_COLLATION, EMPTY);
    writeEnvChangeText(w, EnvChange.LANGUAGE, 'us_english', '');
    writeLoginAck(w, 'Microsoft SQL Server', PRODUCT_VERSION);
    writeEnvChangeText(w, EnvChange.PACKET_SIZE, String(packetSize), String(this.packetSize));
    writeDone(w, Token.DONE, DoneStatus.FINAL, CurCmd.NONE, 0);
    this.send(w.toBuffer());
    this.packetSize = packetSize;
    this.state = 'loggedIn';
    this.log.info({ ...who, packetSize }, 'tds: login');
  }

  private async handleRequest(message: TdsMessage): Promise<void> {
    const session = this.session;
    if (!session) return;
    this.ctx.countRequest();
    this.busy = true;
    this.cancelRequested = false;
    let response: Buffer;
    try {
      const w = new ByteWriter();
      if (message.resetConnection) await this.resetSession(session, w);
      switch (message.type) {
        case PacketType.SQL_BATCH:
          w.bytes(await this.serveBatch(session, message.payload));
          break;
        case PacketType.RPC_REQUEST:
          w.bytes(await this.serveRpc(session, message.payload));
          break;
        case PacketType.TRANSACTION_MANAGER:
          await this.serveTransactionManager(session, message.payload, w);
          break;
        default:
          this.appendError(w, { number: 50000, severity: 16, state: 1, lineNumber: 1,
            message: `The FS stand-in does not support request type 0x${message.type.toString(16)}.` });
          writeDone(w, Token.DONE, DoneStatus.ERROR, CurCmd.NONE, 0);
      }
      // still busy while waiting: an attention arriving now is answered after this request, in order
      if (this.ctx.latencyMs > 0) await delay(this.ctx.latencyMs);
      response = w.toBuffer();
    } finally {
      this.busy = false;
    }
    if (this.cancelRequested) {
      // The client cancelled. It reads one more message as the (discarded) answer to its request
      // and then waits for a separate message with the acknowledging DONE, so both go out.
      this.cancelRequested = false;
      // with XACT_ABORT ON, SQL Server rolls back the transaction the cancelled batch was in
      if (session.xactAbort && session.inTransaction) {
        await session.rollbackTransaction().catch((err) => this.log.warn({ err }, 'tds: rollback on attention failed'));
        this.transactionDescriptor = undefined;
      }
      const cut = new ByteWriter();
      writeDone(cut, Token.DONE, DoneStatus.FINAL, CurCmd.NONE, 0);
      this.send(cut.toBuffer());
      this.sendAttentionAck();
      return;
    }
    const broken = this.brokenResponse;
    this.brokenResponse = null;
    if (broken === 'cutMidRow') {
      const framed = framePackets(PacketType.TABULAR_RESULT, response, this.packetSize, this.spid);
      this.socket.write(framed.subarray(0, Math.max(9, Math.floor(framed.length / 2))), () => this.socket.destroy());
      return;
    }
    if (broken === 'unexpectedToken') {
      this.send(Buffer.concat([Buffer.from([0x5a, 0x00, 0x00, 0x00]), response]));
      return;
    }
    this.send(response);
  }

  /** RESETCONNECTION on a request: drop an open transaction, as sp_reset_connection does. */
  private async resetSession(session: SqlSession, w: ByteWriter): Promise<void> {
    if (session.inTransaction) {
      await session.rollbackTransaction().catch((err) => this.log.warn({ err }, 'tds: rollback on reset failed'));
    }
    this.transactionDescriptor = undefined;
    writeEnvChangeBytes(w, EnvChange.RESET_CONNECTION_ACK, EMPTY, EMPTY);
  }

  private appendError(w: ByteWriter, e: ClientError): void {
    writeError(w, { ...e, serverName: this.ctx.serverName });
  }

  /** ENVCHANGE tokens for a transaction the statements began or ended. */
  private transactionChange(w: ByteWriter, wasInTransaction: boolean, isInTransaction: boolean, ended: 'commit' | 'rollback'): void {
    if (!wasInTransaction && isInTransaction) {
      this.transactionDescriptor = this.ctx.newTransactionDescriptor();
      writeEnvChangeBytes(w, EnvChange.BEGIN_TRAN, this.transactionDescriptor, EMPTY);
    } else if (wasInTransaction && !isInTransaction) {
      const old = this.transactionDescriptor ?? Buffer.alloc(8);
      this.transactionDescriptor = undefined;
      writeEnvChangeBytes(w, ended === 'commit' ? EnvChange.COMMIT_TRAN : EnvChange.ROLLBACK_TRAN, EMPTY, old);
    }
  }

  private async run(
    session: SqlSession, sql: string, parameters: SqlParameter[],
  ): Promise<{ results: StatementResult[]; error?: ClientError; wasInTransaction: boolean }> {
    const wasInTransaction = session.inTransaction;
    const failure = this.ctx.failStatementsMessage();
    if (failure !== null && !isSessionHousekeeping(sql)) {
      return { results: [], wasInTransaction, error: { number: 50000, severity: 16, state: 1, lineNumber: 1, message: failure } };
    }
    const fault = isSessionHousekeeping(sql) ? null : this.ctx.responseFault(sql);
    if (fault === 'stall') {
      await new Promise<void>((resolve) => { this.releaseStall = resolve; });
      this.releaseStall = null;
      return { results: [], wasInTransaction };
    }
    this.brokenResponse = fault;
    try {
      const results = await session.execute(sql, parameters);
      return { results, wasInTransaction };
    } catch (err) {
      return { results: [], wasInTransaction, error: toClientError(err, this.log) };
    }
  }

  /**
   * Writes result sets. Each statement ends with a DONE (batch) or DONEINPROC (RPC) carrying its
   * row count; all but the very last token of the response carry MORE.
   */
  private writeResults(w: ByteWriter, results: StatementResult[], doneToken: typeof Token.DONE | typeof Token.DONEINPROC,
    lastIsFinal: boolean, beforeFinal: (w: ByteWriter) => void): void {
    results.forEach((result, index) => {
      const isLast = index === results.length - 1;
      let count = result.rowCount;
      const hasResultSet = result.columns !== undefined && result.columns.length > 0;
      if (hasResultSet) {
        const rows = result.rows ?? [];
        const columns = resolveColumns(result.columns!, rows);
        // Encode into a scratch writer so a bad value cannot leave half a result in the response.
        const part = new ByteWriter();
        writeColMetadata(part, columns);
        for (const row of rows) writeRow(part, columns, row);
        w.bytes(part.toBuffer());
        count = count ?? rows.length;
      }
      if (isLast && lastIsFinal) beforeFinal(w);
      const status = (count !== null ? DoneStatus.COUNT : 0) | (isLast && lastIsFinal ? 0 : DoneStatus.MORE);
      writeDone(w, doneToken, status, hasResultSet ? CurCmd.SELECT : CurCmd.NONE, count ?? 0);
    });
  }

  private async serveBatch(session: SqlSession, payload: Buffer): Promise<Buffer> {
    const w = new ByteWriter();
    let sql: string;
    try {
      ({ sql } = parseSqlBatch(payload));
    } catch (err) {
      this.appendError(w, toClientError(err, this.log));
      writeDone(w, Token.DONE, DoneStatus.ERROR, CurCmd.NONE, 0);
      return w.toBuffer();
    }
    const { results, error, wasInTransaction } = await this.run(session, sql, []);
    const ended = error || /\brollback\b/i.test(sql) ? 'rollback' : 'commit';
    const txn = (out: ByteWriter) => this.transactionChange(out, wasInTransaction, session.inTransaction, ended);
    const failed = (e: ClientError): Buffer => {
      const out = new ByteWriter();
      this.appendError(out, e);
      txn(out);
      writeDone(out, Token.DONE, DoneStatus.ERROR, CurCmd.NONE, 0);
      return out.toBuffer();
    };
    if (error) return failed(error);
    try {
      if (results.length === 0) {
        txn(w);
        writeDone(w, Token.DONE, DoneStatus.FINAL, CurCmd.NONE, 0);
      } else {
        this.writeResults(w, results, Token.DONE, true, txn);
      }
      return w.toBuffer();
    } catch (err) {
      // A result the wire cannot carry: answer with an error instead of a half-written stream.
      return failed(toClientError(err, this.log));
    }
  }

  private async serveRpc(session: SqlSession, payload: Buffer): Promise<Buffer> {
    let wasInTransaction = session.inTransaction;
    let ended: 'commit' | 'rollback' = 'rollback';
    const failed = (e: ClientError): Buffer => {
      const out = new ByteWriter();
      this.appendError(out, e);
      this.transactionChange(out, wasInTransaction, session.inTransaction, ended);
      writeReturnStatus(out, 1);
      writeDone(out, Token.DONEPROC, DoneStatus.ERROR, CurCmd.NONE, 0);
      return out.toBuffer();
    };
    let call;
    try {
      const rpc = parseRpc(payload);
      if (!isSpExecuteSql(rpc.procedure)) {
        const name = rpc.procId !== undefined && rpc.procedure.startsWith('#') ? `procedure id ${rpc.procId}` : rpc.procedure;
        throw new RpcCallError(`Could not find stored procedure '${name}'.`, 2812);
      }
      call = toSpExecuteSql(rpc);
    } catch (err) {
      return failed(toClientError(err, this.log));
    }
    const outcome = await this.run(session, call.statement, call.parameters);
    wasInTransaction = outcome.wasInTransaction;
    ended = outcome.error || /\brollback\b/i.test(call.statement) ? 'rollback' : 'commit';
    if (outcome.error) return failed(outcome.error);
    try {
      const w = new ByteWriter();
      this.writeResults(w, outcome.results, Token.DONEINPROC, false, () => undefined);
      this.transactionChange(w, wasInTransaction, session.inTransaction, ended);
      writeReturnStatus(w, 0);
      writeDone(w, Token.DONEPROC, DoneStatus.FINAL, CurCmd.NONE, 0);
      return w.toBuffer();
    } catch (err) {
      return failed(toClientError(err, this.log));
    }
  }

  private async serveTransactionManager(session: SqlSession, payload: Buffer, w: ByteWriter): Promise<void> {
    let request: TransactionManagerRequest;
    try {
      request = parseTransactionManager(payload);
    } catch (err) {
      this.appendError(w, toClientError(err, this.log));
      writeDone(w, Token.DONE, DoneStatus.ERROR, CurCmd.TRANSACTION, 0);
      return;
    }
    const error = (number: number, message: string): ClientError => ({ number, message, severity: 16, state: 1, lineNumber: 1 });
    let failure: ClientError | undefined;
    try {
      switch (request.type) {
        case TmRequestType.BEGIN_XACT:
          await this.begin(session, request.name, w);
          break;
        case TmRequestType.COMMIT_XACT:
        case TmRequestType.ROLLBACK_XACT: {
          const commit = request.type === TmRequestType.COMMIT_XACT;
          if (!session.inTransaction) {
            failure = commit
              ? error(3902, 'The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION.')
              : error(3903, 'The ROLLBACK TRANSACTION request has no corresponding BEGIN TRANSACTION.');
            break;
          }
          try {
            if (commit) await session.commitTransaction();
            else await session.rollbackTransaction();
          } finally {
            // Report whatever state the engine ended in, also when it refused.
            this.transactionChange(w, true, session.inTransaction, commit ? 'commit' : 'rollback');
          }
          if (request.beginNew) await this.begin(session, request.beginNew.name, w);
          break;
        }
        case TmRequestType.SAVE_XACT:
          failure = error(50000, 'The FS stand-in does not support savepoints.');
          break;
        default:
          failure = error(50000, `The FS stand-in does not support transaction manager request ${request.type}.`);
      }
    } catch (err) {
      failure = toClientError(err, this.log);
    }
    if (failure) this.appendError(w, failure);
    this.log.debug({ request: request.type, name: request.name, inTransaction: session.inTransaction }, 'tds: transaction request');
    writeDone(w, Token.DONE, failure ? DoneStatus.ERROR : DoneStatus.FINAL, CurCmd.TRANSACTION, 0);
  }

  private async begin(session: SqlSession, name: string, w: ByteWriter): Promise<void> {
    await session.beginTransaction(name || undefined);
    this.transactionDescriptor = this.ctx.newTransactionDescriptor();
    writeEnvChangeBytes(w, EnvChange.BEGIN_TRAN, this.transactionDescriptor, EMPTY);
  }
}
