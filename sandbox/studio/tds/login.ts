/** PRELOGIN (MS-TDS 2.2.6.5) and LOGIN7 (2.2.6.4) decoding, and the PRELOGIN answer. */
import { PayloadReader, TdsProtocolError } from './reader.ts';
import { ByteWriter } from './writer.ts';

export const PreloginOption = {
  VERSION: 0x00,
  ENCRYPTION: 0x01,
  INSTOPT: 0x02,
  THREADID: 0x03,
  MARS: 0x04,
  TRACEID: 0x05,
  FEDAUTHREQUIRED: 0x06,
  TERMINATOR: 0xff,
} as const;

export const Encryption = { OFF: 0x00, ON: 0x01, NOT_SUP: 0x02, REQ: 0x03 } as const;

export interface Prelogin {
  encryption: number | undefined;
}

export function parsePrelogin(payload: Buffer): Prelogin {
  const r = new PayloadReader(payload);
  let encryption: number | undefined;
  for (let i = 0; i < 64; i++) {
    const option = r.uint8('prelogin option');
    if (option === PreloginOption.TERMINATOR) return { encryption };
    const header = r.bytes(4, 'prelogin option header');
    const offset = header.readUInt16BE(0);
    const length = header.readUInt16BE(2);
    if (offset + length > payload.length) throw new TdsProtocolError('prelogin option points outside the payload');
    if (option === PreloginOption.ENCRYPTION && length >= 1) encryption = payload[offset];
  }
  throw new TdsProtocolError('prelogin option list has no terminator');
}

/** The PRELOGIN answer: a SQL Server 2022-like version, no encryption, no MARS. */
export function preloginResponse(threadId: number): Buffer {
  const options: Array<[number, Buffer]> = [
    [PreloginOption.VERSION, Buffer.from([16, 0, 0x03, 0xe8, 0, 0])],
    [PreloginOption.ENCRYPTION, Buffer.from([Encryption.NOT_SUP])],
    [PreloginOption.INSTOPT, Buffer.from([0])],
    [PreloginOption.THREADID, (() => { const b = Buffer.alloc(4); b.writeUInt32BE(threadId >>> 0); return b; })()],
    [PreloginOption.MARS, Buffer.from([0])],
  ];
  const w = new ByteWriter();
  let dataOffset = options.length * 5 + 1;
  for (const [option, data] of options) {
    w.u8(option).u16be(dataOffset).u16be(data.length);
    dataOffset += data.length;
  }
  w.u8(PreloginOption.TERMINATOR);
  for (const [, data] of options) w.bytes(data);
  return w.toBuffer();
}

export interface Login7 {
  tdsVersion: number;
  packetSize: number;
  integratedSecurity: boolean;
  hostName: string;
  userName: string;
  password: string;
  appName: string;
  serverName: string;
  libraryName: string;
  language: string;
  database: string;
}

/** Passwords travel with each byte's nibbles swapped and XORed with 0xA5. */
export function unscramblePassword(scrambled: Buffer): string {
  const plain = Buffer.alloc(scrambled.length);
  for (let i = 0; i < scrambled.length; i++) {
    const x = scrambled[i] ^ 0xa5;
    plain[i] = ((x & 0x0f) << 4) | (x >> 4);
  }
  return plain.toString('utf16le');
}

export function parseLogin7(payload: Buffer): Login7 {
  if (payload.length < 94) throw new TdsProtocolError('LOGIN7 shorter than its fixed part');
  const declared = payload.readUInt32LE(0);
  if (declared > payload.length) throw new TdsProtocolError('LOGIN7 length exceeds the message');
  const text = (at: number, what: string): string => {
    const offset = payload.readUInt16LE(at);
    const chars = payload.readUInt16LE(at + 2);
    return new PayloadReader(payload, offset).ucs2(chars, what);
  };
  const passwordOffset = payload.readUInt16LE(44);
  const passwordChars = payload.readUInt16LE(46);
  const scrambled = new PayloadReader(payload, passwordOffset).bytes(passwordChars * 2, 'password');
  const optionFlags2 = payload[25];
  const sspiLength = payload.readUInt16LE(80);
  return {
    tdsVersion: payload.readUInt32LE(4),
    packetSize: payload.readUInt32LE(8),
    integratedSecurity: (optionFlags2 & 0x80) !== 0 || sspiLength > 0,
    hostName: text(36, 'host name'),
    userName: text(40, 'user name'),
    password: unscramblePassword(scrambled),
    appName: text(48, 'app name'),
    serverName: text(52, 'server name'),
    libraryName: text(60, 'library name'),
    language: text(64, 'language'),
    database: text(68, 'database'),
  };
}
