import type { Clock } from '../../util/clock.js';

/**
 * Requests per block: chunks are cut on this grid of the input's requests, and a chunk's job is named
 * by its first block, so a coordinator started again finds the chunks a former one cut, whatever their size.
 */
export const BLOCK_SIZE = 256;
/** The most blocks a chunk holds (2,048 requests). */
export const MAX_CHUNK_BLOCKS = 8;
/** A chunk holds about this much of the run's pace (results a second), within 1 and MAX_CHUNK_BLOCKS blocks. */
export const CHUNK_PACE_MS = 250;
/** The pace is measured over at least this long. */
const PACE_WINDOW_MS = 1000;

/**
 * How many blocks the next chunk holds. A chunk costs a fixed ~0.75 ms of client CPU (the coordinator
 * adding it, a worker taking and completing it: `bench/chunk-cost.mjs`, 695 µs + 733 µs for 256
 * requests against 1,417 + 2,070 for 1,024), ~3 µs a request at one block and under 1 at four; that
 * matters only when the client is busy, that is when results come fast. Slow requests keep small
 * chunks: a chunk is work no other worker can take while one holds it, and at the run's end a worker's
 * last two chunks are its tail. So a chunk holds about CHUNK_PACE_MS of the run's current pace: one
 * block under 2,048 results a second, eight from 8,192 (this VM's worker per core runs ~9,000 each).
 * Two workers against two local shards, started together (`bench/distributed.mjs --set per-core
 * --order together`): +10.6% client CPU a request with chunks of one block, +6.3% and +9.1% with up to
 * four, +2.9% to +6.0% (four runs) with up to eight, +4.3% with up to sixteen.
 */
export class ChunkSizer {
  private sinceMs: number;
  private sinceCount = 0;
  private perS = 0;

  constructor(private readonly clock: Clock) {
    this.sinceMs = clock();
  }

  /** Blocks for the next chunk, given how many results the run has received so far. */
  blocks(results: number): number {
    const now = this.clock();
    if (now - this.sinceMs >= PACE_WINDOW_MS) {
      this.perS = ((results - this.sinceCount) * 1000) / (now - this.sinceMs);
      this.sinceMs = now;
      this.sinceCount = results;
    }
    const fit = Math.floor((this.perS * CHUNK_PACE_MS) / 1000 / BLOCK_SIZE);
    return Math.max(1, Math.min(MAX_CHUNK_BLOCKS, fit));
  }
}
