/** Accumulates a response payload; tokens are appended piece by piece and joined once at the end. */
export class ByteWriter {
  private chunks: Buffer[] = [];
  private size = 0;

  get length(): number {
    return this.size;
  }

  bytes(buffer: Buffer): this {
    this.chunks.push(buffer);
    this.size += buffer.length;
    return this;
  }

  u8(value: number): this {
    return this.bytes(Buffer.from([value & 0xff]));
  }

  u16le(value: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(value, 0);
    return this.bytes(b);
  }

  u16be(value: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(value, 0);
    return this.bytes(b);
  }

  u32le(value: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value, 0);
    return this.bytes(b);
  }

  i32le(value: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32LE(value, 0);
    return this.bytes(b);
  }

  u32be(value: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(value, 0);
    return this.bytes(b);
  }

  u64le(value: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(value, 0);
    return this.bytes(b);
  }

  /** Unsigned little-endian integer of `width` bytes (width <= 16). */
  uintLE(value: bigint, width: number): this {
    const b = Buffer.alloc(width);
    let v = value;
    for (let i = 0; i < width; i++) {
      b[i] = Number(v & 0xffn);
      v >>= 8n;
    }
    return this.bytes(b);
  }

  ucs2(text: string): this {
    return this.bytes(Buffer.from(text, 'utf16le'));
  }

  /** B_VARCHAR: length in characters (one byte), UTF-16LE. */
  bVarchar(text: string): this {
    const clipped = text.length > 255 ? text.slice(0, 255) : text;
    return this.u8(clipped.length).ucs2(clipped);
  }

  /** US_VARCHAR: length in characters (two bytes), UTF-16LE. */
  usVarchar(text: string): this {
    const clipped = text.length > 65535 ? text.slice(0, 65535) : text;
    return this.u16le(clipped.length).ucs2(clipped);
  }

  /** B_VARBYTE: length in bytes (one byte). */
  bVarbyte(data: Buffer): this {
    return this.u8(data.length).bytes(data);
  }

  toBuffer(): Buffer {
    return this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.size);
  }
}
