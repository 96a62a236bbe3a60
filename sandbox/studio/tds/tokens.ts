/** Response tokens (MS-TDS 2.2.7). Each function appends one token to a ByteWriter. */
import { type WireColumn, writeTypeInfo, writeValue } from './values.ts';
import { ByteWriter } from './writer.ts';

export const Token = {
  RETURNSTATUS: 0x79,
  COLMETADATA: 0x81,
  ERROR: 0xaa,
  INFO: 0xab,
  LOGINACK: 0xad,
  ROW: 0xd1,
  ENVCHANGE: 0xe3,
  DONE: 0xfd,
  DONEPROC: 0xfe,
  DONEINPROC: 0xff,
} as const;

export const DoneStatus = {
  FINAL: 0x00,
  MORE: 0x01,
  ERROR: 0x02,
  INXACT: 0x04,
  COUNT: 0x10,
  ATTN: 0x20,
  SRVERROR: 0x100,
} as const;

export const EnvChange = {
  DATABASE: 1,
  LANGUAGE: 2,
  PACKET_SIZE: 4,
  SQL_COLLATION: 7,
  BEGIN_TRAN: 8,
  COMMIT_TRAN: 9,
  ROLLBACK_TRAN: 10,
  RESET_CONNECTION_ACK: 18,
} as const;

/** TDS 7.4 as LOGINACK spells it (big-endian). */
export const TDS_VERSION_7_4 = 0x74000004;

/** CurCmd values SQL Server puts in DONE tokens; clients only log them. */
export const CurCmd = { NONE: 0x00, SELECT: 0xc1, TRANSACTION: 0xd4 } as const;

function withLength(w: ByteWriter, token: number, body: ByteWriter): void {
  w.u8(token).u16le(body.length).bytes(body.toBuffer());
}

export function writeLoginAck(w: ByteWriter, programName: string, version: [number, number, number, number]): void {
  const body = new ByteWriter()
    .u8(1) // interface: SQL_TSQL
    .u32be(TDS_VERSION_7_4)
    .bVarchar(programName);
  for (const part of version) body.u8(part);
  withLength(w, Token.LOGINACK, body);
}

export function writeEnvChangeText(w: ByteWriter, type: number, newValue: string, oldValue: string): void {
  withLength(w, Token.ENVCHANGE, new ByteWriter().u8(type).bVarchar(newValue).bVarchar(oldValue));
}

export function writeEnvChangeBytes(w: ByteWriter, type: number, newValue: Buffer, oldValue: Buffer): void {
  withLength(w, Token.ENVCHANGE, new ByteWriter().u8(type).bVarbyte(newValue).bVarbyte(oldValue));
}

export interface MessageFields {
  number: number;
  state: number;
  severity: number;
  message: string;
  serverName: string;
  procName?: string;
  lineNumber: number;
}

function writeMessage(w: ByteWriter, token: number, m: MessageFields): void {
  const body = new ByteWriter()
    .i32le(m.number)
    .u8(m.state & 0xff)
    .u8(m.severity & 0xff)
    .usVarchar(m.message)
    .bVarchar(m.serverName)
    .bVarchar(m.procName ?? '')
    .u32le(m.lineNumber >>> 0);
  withLength(w, token, body);
}

export function writeError(w: ByteWriter, m: MessageFields): void {
  writeMessage(w, Token.ERROR, m);
}

export function writeInfo(w: ByteWriter, m: MessageFields): void {
  writeMessage(w, Token.INFO, m);
}

export function writeDone(
  w: ByteWriter,
  token: typeof Token.DONE | typeof Token.DONEPROC | typeof Token.DONEINPROC,
  status: number,
  curCmd: number,
  rowCount: number,
): void {
  w.u8(token).u16le(status).u16le(curCmd).u64le(BigInt(Math.max(0, rowCount)));
}

export function writeReturnStatus(w: ByteWriter, value: number): void {
  w.u8(Token.RETURNSTATUS).i32le(value);
}

export function writeColMetadata(w: ByteWriter, columns: WireColumn[]): void {
  w.u8(Token.COLMETADATA).u16le(columns.length);
  for (const column of columns) {
    // flags: nullable (bit 0), updateable "unknown" (bits 2-3 = 2)
    w.u32le(0).u16le((column.nullable ? 0x0001 : 0) | 0x0008);
    writeTypeInfo(w, column);
    w.bVarchar(column.name);
  }
}

export function writeRow(w: ByteWriter, columns: WireColumn[], row: unknown[]): void {
  w.u8(Token.ROW);
  for (let i = 0; i < columns.length; i++) writeValue(w, columns[i], row[i]);
}
