import { putBytes } from './put-bytes.js';

/**
 * Bytes appended as they come (text as UTF-8) into one buffer that is reused, off the JS heap: what
 * waits in it is not copied by each young-generation scavenge it lives through, nor promoted, as the
 * strings it was built from would be if they were kept instead.
 */
export class ByteBuilder {
  private buf: Buffer;
  private len = 0;

  /** @param initialBytes first allocation; it doubles as needed. @default 16384 */
  constructor(initialBytes = 16_384) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  get length(): number {
    return this.len;
  }

  /** Append text (as UTF-8) or bytes. */
  append(data: string | Uint8Array): void {
    // Text takes at most 3 UTF-8 bytes per UTF-16 unit: room for that, then putBytes writes exactly what it takes.
    this.reserve(typeof data === 'string' ? data.length * 3 : data.length);
    this.len = putBytes(this.buf, data, this.len);
  }

  /** Append one byte (a separator), without a call into Buffer's native code. */
  appendByte(byte: number): void {
    this.reserve(1);
    this.buf[this.len++] = byte;
  }

  /** The bytes so far, to be used before the next append (a synchronous write); `clear` then reuses them. */
  view(): Buffer {
    return this.buf.subarray(0, this.len);
  }

  clear(): void {
    this.len = 0;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
}
