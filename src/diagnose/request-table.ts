import { BUCKETS } from './report-types.js';

// Columns of one open request's state. Times are epoch ms; -1 means "not yet".
/** First enqueue (the request's e2e start). */
export const FIRST_ENQUEUE = 0;
/** Start of the current wait for a slot, or -1 when not waiting. */
export const WAIT_START = 1;
/** The free-slot integral when that wait began (splits the wait into queue_wait and admission_gap). */
export const WAIT_FREE = 2;
export const ATTEMPT_START = 3;
/** Connect time of the sockets the current attempt opened. */
export const ATTEMPT_CONNECT = 4;
export const FIRST_TOKEN = 5;
export const POST_START = 6;
export const SERVER_TTFT = 7;
export const E2E_TTFT = 8;
export const TPOT = 9;
/** First and last token of the successful attempt, to spread its tokens over the timeline. */
export const DECODE_START = 10;
export const DECODE_END = 11;
/** When the request began waiting for a down endpoint (its `paused` event), or -1. */
export const PAUSE_START = 12;
/** The endpoint-down integral when the current wait for a slot began (the outage part of that wait). */
export const WAIT_DOWN = 13;
/** The request's endpoint code (flat-event's ENDPOINT_CODES index + 1), 0 for chat (from its enqueue). */
export const ENDPOINT = 14;
/** Bucket i of BUCKETS is at BUCKET0 + i. */
export const BUCKET0 = 15;
/** Bucket columns by name, e.g. `B.queue_wait`. */
export const B = Object.fromEntries(BUCKETS.map((b, i) => [b, BUCKET0 + i])) as {
  readonly [K in (typeof BUCKETS)[number]]: number;
};
const WIDTH = BUCKET0 + BUCKETS.length;
const INITIAL = Float64Array.from([0, -1, 0, -1, 0, -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, ...BUCKETS.map(() => 0)]);

/**
 * Open requests' state as rows of one Float64Array, found by interned id. Why not an object per
 * request: a run with a deep backlog holds hundreds of thousands of requests open, and objects
 * that live that long are promoted and then swept by the GC. On the 1,000,000-event log of
 * bench/analyze.mjs (a 125,000-request backlog) the accumulator took 1.38 s with a 110 MB heap
 * with objects, 1.1 s with a 33 MB heap with rows. Rows of ended requests are reused.
 */
export class RequestTable {
  private data = new Float64Array(WIDTH * 1024);
  private rowOf = new Int32Array(1024).fill(-1);
  private free: number[] = [];
  private rows = 0;

  /** Base index of the request's row, or -1 when it is not open. */
  slot(rid: number): number {
    if (rid < 0 || rid >= this.rowOf.length) return -1;
    const row = this.rowOf[rid]!;
    return row < 0 ? -1 : row * WIDTH;
  }

  /** Base index of the request's row, opening it (first enqueue at `ts`) if needed. */
  open(rid: number, ts: number): number {
    const existing = this.slot(rid);
    if (existing >= 0) return existing;
    if (rid >= this.rowOf.length) {
      const bigger = new Int32Array(Math.max(rid + 1, this.rowOf.length * 2)).fill(-1);
      bigger.set(this.rowOf);
      this.rowOf = bigger;
    }
    let row = this.free.pop();
    if (row === undefined) {
      row = this.rows++;
      if (row * WIDTH >= this.data.length) {
        const bigger = new Float64Array(this.data.length * 2);
        bigger.set(this.data);
        this.data = bigger;
      }
    }
    this.rowOf[rid] = row;
    const base = row * WIDTH;
    // A loop: TypedArray#set costs ~0.2 µs a call on these sizes.
    const data = this.data;
    for (let c = 0; c < WIDTH; c++) data[base + c] = INITIAL[c]!;
    data[base + FIRST_ENQUEUE] = ts;
    return base;
  }

  /** Column `col` of the row at `base`. */
  get(base: number, col: number): number {
    return this.data[base + col]!;
  }

  set(base: number, col: number, v: number): void {
    this.data[base + col] = v;
  }

  add(base: number, col: number, v: number): void {
    this.data[base + col]! += v;
  }

  /** Forget the request (its row is reused); read its row before calling this. */
  close(rid: number): void {
    const base = this.slot(rid);
    if (base < 0) return;
    this.rowOf[rid] = -1;
    this.free.push(base / WIDTH);
  }
}
