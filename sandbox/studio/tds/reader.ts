/**
 * Bounds-checked reading of request payloads. Every read past the end throws a TdsProtocolError,
 * so a truncated or lying client payload becomes a clean error instead of a RangeError deep inside.
 */

/** A request the server cannot make sense of at the byte level. */
export class TdsProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TdsProtocolError';
  }
}

export class PayloadReader {
  offset: number;

  constructor(readonly buffer: Buffer, offset = 0) {
    this.offset = offset;
  }

  get remaining(): number {
    return this.buffer.length - this.offset;
  }

  private need(bytes: number, what: string): void {
    if (bytes < 0 || this.offset + bytes > this.buffer.length) {
      throw new TdsProtocolError(`truncated payload while reading ${what}`);
    }
  }

  uint8(what = 'byte'): number {
    this.need(1, what);
    return this.buffer.readUInt8(this.offset++);
  }

  uint16le(what = 'ushort'): number {
    this.need(2, what);
    const value = this.buffer.readUInt16LE(this.offset);
    this.offset += 2;
    return value;
  }

  uint32le(what = 'ulong'): number {
    this.need(4, what);
    const value = this.buffer.readUInt32LE(this.offset);
    this.offset += 4;
    return value;
  }

  uint64le(what = 'ulonglong'): bigint {
    this.need(8, what);
    const value = this.buffer.readBigUInt64LE(this.offset);
    this.offset += 8;
    return value;
  }

  bytes(length: number, what = 'bytes'): Buffer {
    this.need(length, what);
    const value = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  /** UTF-16LE text of `chars` characters. */
  ucs2(chars: number, what = 'text'): string {
    return this.bytes(chars * 2, what).toString('utf16le');
  }

  /** B_VARCHAR: one length byte (characters), UTF-16LE. */
  bVarchar(what = 'b_varchar'): string {
    return this.ucs2(this.uint8(what), what);
  }

  /** US_VARCHAR: two length bytes (characters), UTF-16LE. */
  usVarchar(what = 'us_varchar'): string {
    return this.ucs2(this.uint16le(what), what);
  }

  /** B_VARBYTE: one length byte (bytes). */
  bVarbyte(what = 'b_varbyte'): Buffer {
    return this.bytes(this.uint8(what), what);
  }
}
