import type { DoneItem, FromShard } from '../ipc-messages.js';
import { byteLengthOf, putBytes } from '../../util/put-bytes.js';

/**
 * The descriptor a forked shard sends its messages on (a pipe beside the IPC channel, which then
 * carries the coordinator's messages only): one stream keeps the shard's messages in order.
 */
export const SHARD_DATA_FD = 4;

/**
 * Why not `process.send`: the IPC channel is JSON, so a result line (a JSON document) crosses it as
 * an escaped string — stringified in the shard, parsed back in the coordinator, encoded again to be
 * written. For an embeddings answer (16 base64 vectors, 3.7 KB) that round trip was ~18 µs a result
 * and a copy of every body on the coordinator's heap. Here a frame is
 *
 *     u32 frame length | u32 head length | head (JSON, lines left out) | lines (UTF-8, back to back)
 *
 * and the coordinator slices each line's bytes out and appends them to results.jsonl as they came
 * (`node bench/embeddings.mjs`; BENCHMARKS.md, "Embeddings").
 */
interface DoneHead {
  t: 'done';
  items: DoneItem[];
  /** Byte length of each item's line, index for index. */
  lens: number[];
}

const HEADER_BYTES = 8;

/** Encode one shard message as a frame (a `done` message's lines as raw bytes). */
export function encodeFrame(msg: FromShard): Buffer {
  let lines: (string | Uint8Array)[] = [];
  let lens: number[] = [];
  let head: Buffer;
  if (msg.t === 'done') {
    lines = msg.items.map((d) => d.resultLine);
    lens = lines.map(byteLengthOf);
    // The items are the shard's own, sent once: blank their lines for the head rather than copy them.
    for (const d of msg.items) d.resultLine = '';
    head = Buffer.from(JSON.stringify({ t: 'done', items: msg.items, lens } satisfies DoneHead));
  } else head = Buffer.from(JSON.stringify(msg));
  let total = HEADER_BYTES + head.length;
  for (const n of lens) total += n;
  const out = Buffer.allocUnsafe(total);
  out.writeUInt32LE(total, 0);
  out.writeUInt32LE(head.length, 4);
  let off = HEADER_BYTES + head.copy(out, HEADER_BYTES);
  for (const l of lines) off = putBytes(out, l, off);
  return out;
}

/** Decode one whole frame; a `done` message's lines are views into `frame` (no copy, no text). */
export function decodeFrame(frame: Buffer): FromShard {
  const headLen = frame.readUInt32LE(4);
  const msg = JSON.parse(frame.toString('utf8', HEADER_BYTES, HEADER_BYTES + headLen)) as FromShard | DoneHead;
  if (msg.t !== 'done' || !('lens' in msg)) return msg as FromShard;
  let off = HEADER_BYTES + headLen;
  msg.items.forEach((d, i) => {
    const n = msg.lens[i] ?? 0;
    d.resultLine = frame.subarray(off, off + n);
    off += n;
  });
  return { t: 'done', items: msg.items };
}

/**
 * Cuts a byte stream into frames. Chunks are kept until a frame is whole; a frame inside one
 * chunk is a view of it, one across chunks is copied out once.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly onMessage: (msg: FromShard) => void) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.buffered < HEADER_BYTES) return;
      // A length cut across chunks: join the front ones once, so the next look reads it at once.
      if (this.chunks[0]!.length < 4) this.chunks = [Buffer.concat(this.chunks)];
      const need = this.chunks[0]!.readUInt32LE(0);
      if (need < HEADER_BYTES) throw new Error(`shard frame of ${need} bytes: the shard's data stream is corrupt`);
      if (this.buffered < need) return;
      this.onMessage(decodeFrame(this.take(need)));
    }
  }

  /** Bytes left over that make no whole frame (a shard killed mid-write). */
  get pending(): number {
    return this.buffered;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    this.buffered -= n;
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    if (first.length === n) return this.chunks.shift()!;
    const all = Buffer.concat(this.chunks);
    this.chunks = all.length > n ? [all.subarray(n)] : [];
    return all.subarray(0, n);
  }
}
