import { describe, expect, it } from 'vitest';
import { BLOCK_SIZE, ChunkSizer, MAX_CHUNK_BLOCKS } from '../src/runner/distributed/chunk-sizer.js';

describe('ChunkSizer: a chunk holds about a quarter of a second of the run', () => {
  it('cuts one block until a second of pace is known, then follows it within 1 and 4 blocks', () => {
    let now = 0;
    const sizer = new ChunkSizer(() => now);
    expect(sizer.blocks(0)).toBe(1);
    // 50,000 results in the first half second: not a second of pace yet.
    now = 500;
    expect(sizer.blocks(50_000)).toBe(1);
    // 2,048 a second: 512 in 250 ms, two blocks.
    now = 1000;
    expect(sizer.blocks(2048)).toBe(2);
    // Kept between measurements (the window is a second).
    now = 1500;
    expect(sizer.blocks(2048)).toBe(2);
    // 20,000 a second: 5,000 in 250 ms, capped at eight blocks.
    now = 2000;
    expect(sizer.blocks(2048 + 20_000)).toBe(MAX_CHUNK_BLOCKS);
    // A run slowed to 100 a second (a real model; an endpoint gone): one block again.
    now = 3000;
    expect(sizer.blocks(22_048 + 100)).toBe(1);
  });

  it('takes the boundaries exactly: one block under 2,048 results a second, two from 2,048, eight from 8,192', () => {
    const at = (perS: number): number => {
      let now = 0;
      const sizer = new ChunkSizer(() => now);
      now = 1000;
      return sizer.blocks(perS);
    };
    expect([BLOCK_SIZE, MAX_CHUNK_BLOCKS]).toEqual([256, 8]);
    expect([1000, 2047, 2048, 3071, 3072, 8191, 8192, 1e6].map(at)).toEqual([1, 1, 2, 2, 3, 7, 8, 8]);
  });
});
