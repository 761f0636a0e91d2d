/**
 * Maps request ids, given as UTF-8 bytes straight out of an event file, to dense integers 0, 1, 2, …
 * so the report keeps per-request state in arrays instead of string-keyed maps.
 *
 * Why not a `Map<string, number>`: that needs a JS string per event line first. On the
 * 1,000,000-event log of bench/analyze.mjs, decoding plus slicing the id and a Map lookup cost
 * 0.63 µs a line; decoding plus hashing the bytes in place into this open-addressed table 0.45 µs
 * (one run, quoted in BENCHMARKS.md), and the ids are kept as bytes in one arena rather than as
 * one heap string each. Strings are made only for the few ids a report names.
 */
export class IdInterner {
  private slots: Int32Array;
  private mask: number;
  private hashes = new Int32Array(1024);
  private offsets = new Int32Array(1024);
  private lengths = new Int32Array(1024);
  private arena = Buffer.allocUnsafe(1 << 16);
  private arenaLen = 0;
  private count = 0;

  constructor(initialSlots = 1 << 12) {
    const cap = 1 << Math.ceil(Math.log2(Math.max(16, initialSlots)));
    this.slots = new Int32Array(cap).fill(-1);
    this.mask = cap - 1;
  }

  /** Number of distinct ids seen. */
  get size(): number {
    return this.count;
  }

  /** The index of the id in `buf[start, end)`, adding it if new. */
  intern(buf: Uint8Array, start: number, end: number): number {
    const h = hashBytes(buf, start, end);
    const len = end - start;
    const slots = this.slots;
    const mask = this.mask;
    for (let slot = h & mask; ; slot = (slot + 1) & mask) {
      const idx = slots[slot]!;
      if (idx === -1) {
        const added = this.add(buf, start, end, h);
        slots[slot] = added;
        // Keep the load under one half so probe runs stay short.
        if (this.count * 2 > slots.length) this.rehash();
        return added;
      }
      if (this.hashes[idx] === h && this.lengths[idx] === len && this.sameBytes(idx, buf, start, len)) return idx;
    }
  }

  /** The index of a string id (the slow path: lines that went through `JSON.parse`). */
  internString(id: string): number {
    const bytes = Buffer.from(id, 'utf8');
    return this.intern(bytes, 0, bytes.length);
  }

  /** The index of a string id, or -1 if it was never interned (adds nothing). */
  find(id: string): number {
    const bytes = Buffer.from(id, 'utf8');
    const h = hashBytes(bytes, 0, bytes.length);
    for (let slot = h & this.mask; ; slot = (slot + 1) & this.mask) {
      const idx = this.slots[slot]!;
      if (idx === -1) return -1;
      if (this.hashes[idx] === h && this.lengths[idx] === bytes.length && this.sameBytes(idx, bytes, 0, bytes.length))
        return idx;
    }
  }

  /** The id string of an index. */
  name(idx: number): string {
    const off = this.offsets[idx]!;
    return this.arena.toString('utf8', off, off + this.lengths[idx]!);
  }

  private sameBytes(idx: number, buf: Uint8Array, start: number, len: number): boolean {
    const arena = this.arena;
    const off = this.offsets[idx]!;
    for (let i = 0; i < len; i++) if (arena[off + i] !== buf[start + i]) return false;
    return true;
  }

  private add(buf: Uint8Array, start: number, end: number, h: number): number {
    const idx = this.count++;
    if (idx === this.hashes.length) {
      this.hashes = grow(this.hashes);
      this.offsets = grow(this.offsets);
      this.lengths = grow(this.lengths);
    }
    const len = end - start;
    if (this.arenaLen + len > this.arena.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.arena.length * 2, this.arenaLen + len));
      this.arena.copy(bigger, 0, 0, this.arenaLen);
      this.arena = bigger;
    }
    this.arena.set(buf.subarray(start, end), this.arenaLen);
    this.hashes[idx] = h;
    this.offsets[idx] = this.arenaLen;
    this.lengths[idx] = len;
    this.arenaLen += len;
    return idx;
  }

  private rehash(): void {
    const cap = this.slots.length * 2;
    const slots = new Int32Array(cap).fill(-1);
    const mask = cap - 1;
    for (let idx = 0; idx < this.count; idx++) {
      let slot = this.hashes[idx]! & mask;
      while (slots[slot] !== -1) slot = (slot + 1) & mask;
      slots[slot] = idx;
    }
    this.slots = slots;
    this.mask = mask;
  }
}

/** FNV-1a over the bytes. */
function hashBytes(buf: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  return h;
}

function grow(a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}
