import { describe, expect, it } from 'vitest';
import { ByteBuilder } from '../src/util/byte-builder.js';

describe('ByteBuilder', () => {
  it('appends text as UTF-8 and bytes as they are, growing past its first buffer', () => {
    const b = new ByteBuilder(16);
    const parts: (string | Uint8Array)[] = [];
    for (let i = 0; i < 200; i++)
      parts.push(i % 3 === 0 ? `naïve — 東京 ${i}\n` : new TextEncoder().encode(`bytes ${i}\n`));
    for (const p of parts) b.append(p);
    const expected = Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));
    expect(b.length).toBe(expected.length);
    expect(b.view().equals(expected)).toBe(true);
  });

  it('appends single bytes, growing at a full buffer', () => {
    const b = new ByteBuilder(4);
    b.append('abcd');
    b.appendByte(0x0a);
    b.append('é');
    b.appendByte(0x0a);
    expect(b.view().toString()).toBe('abcd\né\n');
  });

  it('starts again empty on clear, reusing its buffer', () => {
    const b = new ByteBuilder(16);
    b.append('first batch');
    const before = b.view();
    b.clear();
    expect(b.length).toBe(0);
    b.append('second');
    expect(b.view().toString()).toBe('second');
    // The same memory: a flush hands it to a synchronous write, and nothing is allocated per batch.
    expect(b.view().buffer).toBe(before.buffer);
  });
});
