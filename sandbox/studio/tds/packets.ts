/**
 * TDS packet framing (MS-TDS 2.2.3): an 8-byte header (type, status, big-endian length, SPID,
 * packet id, window) in front of each packet; a message is the packets up to the one with EOM.
 */
import { TdsProtocolError } from './reader.ts';

export const HEADER_LENGTH = 8;

export const PacketType = {
  SQL_BATCH: 0x01,
  RPC_REQUEST: 0x03,
  TABULAR_RESULT: 0x04,
  ATTENTION: 0x06,
  BULK_LOAD: 0x07,
  FEDAUTH_TOKEN: 0x08,
  TRANSACTION_MANAGER: 0x0e,
  LOGIN7: 0x10,
  SSPI: 0x11,
  PRELOGIN: 0x12,
} as const;

const knownTypes = new Set<number>(Object.values(PacketType));

export const PacketStatus = {
  EOM: 0x01,
  IGNORE: 0x02,
  RESET_CONNECTION: 0x08,
  RESET_CONNECTION_SKIP_TRAN: 0x10,
} as const;

/** Smallest and largest packet sizes SQL Server accepts in LOGIN7. */
export const MIN_PACKET_SIZE = 512;
export const MAX_PACKET_SIZE = 32767;
export const DEFAULT_PACKET_SIZE = 4096;

export interface TdsMessage {
  type: number;
  /** the first packet asked for a session reset (sp_reset_connection semantics) */
  resetConnection: boolean;
  payload: Buffer;
}

/**
 * Turns a byte stream into whole messages. Framing errors throw TdsProtocolError; after that the
 * stream cannot be trusted and the caller closes the connection.
 */
export class MessageAssembler {
  private pending: Buffer = Buffer.alloc(0);
  private parts: Buffer[] = [];
  private partsBytes = 0;
  private currentType: number | undefined;
  private currentReset = false;

  constructor(private readonly maxMessageBytes = 64 * 1024 * 1024) {}

  /** Feeds received bytes; returns the messages they completed. */
  push(chunk: Buffer): TdsMessage[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const messages: TdsMessage[] = [];
    while (this.pending.length >= HEADER_LENGTH) {
      const type = this.pending[0];
      const status = this.pending[1];
      const length = this.pending.readUInt16BE(2);
      if (!knownTypes.has(type)) throw new TdsProtocolError(`unknown packet type 0x${type.toString(16)}`);
      if (length < HEADER_LENGTH) throw new TdsProtocolError(`packet length ${length} is shorter than its header`);
      if (this.pending.length < length) break;
      const data = this.pending.subarray(HEADER_LENGTH, length);
      this.pending = this.pending.subarray(length);

      if (type === PacketType.ATTENTION) {
        // A cancel may cut into a message the client was still sending; that message is dropped.
        this.resetPartial();
        messages.push({ type, resetConnection: false, payload: Buffer.alloc(0) });
        continue;
      }
      if (this.currentType === undefined) {
        this.currentType = type;
        this.currentReset = (status & (PacketStatus.RESET_CONNECTION | PacketStatus.RESET_CONNECTION_SKIP_TRAN)) !== 0;
      } else if (this.currentType !== type) {
        throw new TdsProtocolError(`packet type 0x${type.toString(16)} inside a message of type 0x${this.currentType.toString(16)}`);
      }
      this.parts.push(data);
      this.partsBytes += data.length;
      if (this.partsBytes > this.maxMessageBytes) throw new TdsProtocolError('message too large');
      if (status & PacketStatus.EOM) {
        const message: TdsMessage = {
          type: this.currentType,
          resetConnection: this.currentReset,
          payload: this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts),
        };
        this.resetPartial();
        // IGNORE with EOM: the client abandoned this message (it follows with an attention).
        if (!(status & PacketStatus.IGNORE)) messages.push(message);
      }
    }
    return messages;
  }

  private resetPartial(): void {
    this.parts = [];
    this.partsBytes = 0;
    this.currentType = undefined;
    this.currentReset = false;
  }
}

/** Splits one message into packets of at most `packetSize` bytes (header included). */
export function framePackets(type: number, payload: Buffer, packetSize: number, spid: number): Buffer {
  const room = Math.max(packetSize, MIN_PACKET_SIZE) - HEADER_LENGTH;
  const count = Math.max(1, Math.ceil(payload.length / room));
  const out = Buffer.alloc(payload.length + count * HEADER_LENGTH);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const part = payload.subarray(i * room, (i + 1) * room);
    const last = i === count - 1;
    out.writeUInt8(type, at);
    out.writeUInt8(last ? PacketStatus.EOM : 0, at + 1);
    out.writeUInt16BE(part.length + HEADER_LENGTH, at + 2);
    out.writeUInt16BE(spid & 0xffff, at + 4);
    out.writeUInt8((i + 1) % 256, at + 6);
    out.writeUInt8(0, at + 7);
    part.copy(out, at + HEADER_LENGTH);
    at += part.length + HEADER_LENGTH;
  }
  return out;
}
