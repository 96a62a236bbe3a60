/**
 * Client requests after login: SQL batch (MS-TDS 2.2.6.7), RPC (2.2.6.6) and Transaction Manager
 * (2.2.6.9), each behind ALL_HEADERS (2.2.5.3).
 */
import type { SqlParameter } from '../engine.ts';
import { PayloadReader, TdsProtocolError } from './reader.ts';
import { readParamTypeInfo, readParamValue } from './values.ts';

export interface AllHeaders {
  /** the 8-byte transaction descriptor the client believes is current (zeros outside a transaction) */
  transactionDescriptor: Buffer | undefined;
}

const TXN_DESCRIPTOR_HEADER = 2;

export function readAllHeaders(r: PayloadReader): AllHeaders {
  const start = r.offset;
  const total = r.uint32le('ALL_HEADERS length');
  if (total < 4 || start + total > r.buffer.length) throw new TdsProtocolError('ALL_HEADERS length does not fit the request');
  let transactionDescriptor: Buffer | undefined;
  while (r.offset < start + total) {
    const headerStart = r.offset;
    const length = r.uint32le('header length');
    if (length < 6 || headerStart + length > start + total) throw new TdsProtocolError('header length does not fit ALL_HEADERS');
    const type = r.uint16le('header type');
    const data = r.bytes(length - 6, 'header data');
    if (type === TXN_DESCRIPTOR_HEADER && data.length >= 8) transactionDescriptor = Buffer.from(data.subarray(0, 8));
  }
  return { transactionDescriptor };
}

export interface SqlBatchRequest {
  headers: AllHeaders;
  sql: string;
}

export function parseSqlBatch(payload: Buffer): SqlBatchRequest {
  const r = new PayloadReader(payload);
  const headers = readAllHeaders(r);
  if (r.remaining % 2 !== 0) throw new TdsProtocolError('SQL batch text is not UTF-16');
  return { headers, sql: r.bytes(r.remaining).toString('utf16le') };
}

export interface RpcParameter {
  /** as sent, without the leading '@'; '' for positional parameters */
  name: string;
  output: boolean;
  type: SqlParameter['type'];
  value: unknown;
}

export interface RpcRequest {
  headers: AllHeaders;
  /** lower-case procedure name, or `#<id>` for a well-known procedure id */
  procedure: string;
  procId: number | undefined;
  parameters: RpcParameter[];
}

export const SP_EXECUTESQL_ID = 10;

export function parseRpc(payload: Buffer): RpcRequest {
  const r = new PayloadReader(payload);
  const headers = readAllHeaders(r);
  const nameLength = r.uint16le('procedure name length');
  let procedure: string;
  let procId: number | undefined;
  if (nameLength === 0xffff) {
    procId = r.uint16le('procedure id');
    procedure = procId === SP_EXECUTESQL_ID ? 'sp_executesql' : `#${procId}`;
  } else {
    procedure = r.ucs2(nameLength, 'procedure name');
  }
  r.uint16le('rpc option flags');
  const parameters: RpcParameter[] = [];
  while (r.remaining > 0) {
    const next = r.buffer[r.offset];
    // 0x80/0xFF/0xFE separate batched RPC calls; only the first call is served.
    if (next === 0x80 || next === 0xff || next === 0xfe) break;
    const name = r.bVarchar('parameter name').replace(/^@/, '');
    const status = r.uint8('parameter status');
    const info = readParamTypeInfo(r);
    const value = readParamValue(r, info);
    parameters.push({ name, output: (status & 0x01) !== 0, type: info.name, value });
  }
  return { headers, procedure, procId, parameters };
}

/** Is this procedure name sp_executesql (optionally schema- or database-qualified, bracketed)? */
export function isSpExecuteSql(procedure: string): boolean {
  const last = procedure.split('.').pop() ?? '';
  return last.replace(/^\[|\]$/g, '').toLowerCase() === 'sp_executesql';
}

export interface DeclaredParameter {
  name: string;
  declaration: string;
  output: boolean;
}

/** Splits an sp_executesql `@params` text ("@a int, @b decimal(18, 4) OUTPUT") into declarations. */
export function parseParamsDeclaration(text: string): DeclaredParameter[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth = Math.max(0, depth - 1);
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  const declared: DeclaredParameter[] = [];
  for (const part of parts) {
    const match = /^\s*@([^\s]+)\s+(.*?)\s*$/s.exec(part);
    if (!match) continue;
    const output = /\s+(OUTPUT|OUT)$/i.test(match[2]);
    declared.push({ name: match[1], declaration: match[2].replace(/\s+(OUTPUT|OUT)$/i, ''), output });
  }
  return declared;
}

export interface SpExecuteSqlCall {
  statement: string;
  parameters: SqlParameter[];
}

/** An RPC call this server refuses, with the SQL Server error a client would see. */
export class RpcCallError extends Error {
  constructor(message: string, readonly number: number) {
    super(message);
  }
}

export function toSpExecuteSql(rpc: RpcRequest): SpExecuteSqlCall {
  const [statementParam, paramsParam, ...rest] = rpc.parameters;
  if (!statementParam || typeof statementParam.value !== 'string') {
    throw new RpcCallError("Procedure expects parameter '@statement' of type 'ntext/nchar/nvarchar'.", 214);
  }
  if (rest.length > 0 && (!paramsParam || typeof paramsParam.value !== 'string')) {
    throw new RpcCallError("Procedure expects parameter '@params' of type 'ntext/nchar/nvarchar'.", 214);
  }
  const declared = paramsParam && typeof paramsParam.value === 'string' ? parseParamsDeclaration(paramsParam.value) : [];
  const parameters: SqlParameter[] = rest.map((p, i) => {
    const name = p.name || declared[i]?.name;
    if (!name) throw new RpcCallError(`Parameter ${i + 3} has no name and no declaration.`, 8144);
    const parameter: SqlParameter = { name, type: p.type, value: p.value };
    if (p.output) parameter.output = true;
    return parameter;
  });
  return { statement: statementParam.value, parameters };
}

export const TmRequestType = {
  GET_DTC_ADDRESS: 0,
  PROPAGATE_XACT: 1,
  BEGIN_XACT: 5,
  PROMOTE_XACT: 6,
  COMMIT_XACT: 7,
  ROLLBACK_XACT: 8,
  SAVE_XACT: 9,
} as const;

export interface TransactionManagerRequest {
  headers: AllHeaders;
  type: number;
  name: string;
  isolationLevel: number;
  /** commit/rollback that also begins a new transaction (fBeginXact) */
  beginNew: { isolationLevel: number; name: string } | undefined;
}

/** Transaction names travel as a byte-length-prefixed UTF-16 string. */
function readTxnName(r: PayloadReader): string {
  const data = r.bVarbyte('transaction name');
  if (data.length % 2 !== 0) throw new TdsProtocolError('transaction name is not UTF-16');
  return data.toString('utf16le');
}

export function parseTransactionManager(payload: Buffer): TransactionManagerRequest {
  const r = new PayloadReader(payload);
  const headers = readAllHeaders(r);
  const type = r.uint16le('transaction request type');
  let name = '';
  let isolationLevel = 0;
  let beginNew: TransactionManagerRequest['beginNew'];
  if (type === TmRequestType.BEGIN_XACT) {
    isolationLevel = r.uint8('isolation level');
    if (r.remaining > 0) name = readTxnName(r);
  } else if (type === TmRequestType.COMMIT_XACT || type === TmRequestType.ROLLBACK_XACT) {
    if (r.remaining > 0) name = readTxnName(r);
    if (r.remaining > 0 && r.uint8('fBeginXact') === 1) {
      const level = r.uint8('new isolation level');
      beginNew = { isolationLevel: level, name: r.remaining > 0 ? readTxnName(r) : '' };
    }
  } else if (type === TmRequestType.SAVE_XACT) {
    if (r.remaining > 0) name = readTxnName(r);
  }
  return { headers, type, name, isolationLevel, beginNew };
}
