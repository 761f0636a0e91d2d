import { describe, expect, it } from 'vitest';
import { BLOCK_SIZE, ChunkSizer, MAX_CHUNK_BLOCKS } from '../src/runner/distributed/chunk-sizer.js';

describe('ChunkSizer: a chunk holds about a tenth of a second of the run', () => {
  it('cuts one block until a second of pace is known, then follows it within 1 and 4 blocks', () => {
    let now = 0;
    const sizer = new ChunkSizer(() => now);
    expect(sizer.blocks(0)).toBe(1);
    // 50,000 results in the first half second: not a second of pace yet.
    now = 500;
    expect(sizer.blocks(50_000)).toBe(1);
    // 5,120 a second: 512 in 100 ms, two blocks.
    now = 1000;
    expect(sizer.blocks(5120)).toBe(2);
    // Kept between measurements (the window is a second).
    now = 1500;
    expect(sizer.blocks(5120)).toBe(2);
    // 20,000 a second: 2,000 in 100 ms, capped at four blocks.
    now = 2000;
    expect(sizer.blocks(5120 + 20_000)).toBe(MAX_CHUNK_BLOCKS);
    // A run slowed to 100 a second (a real model; an endpoint gone): one block again.
    now = 3000;
    expect(sizer.blocks(25_120 + 100)).toBe(1);
  });

  it('takes the boundaries exactly: one block under 5,120 results a second, two from 5,120, four from 10,240', () => {
    const at = (perS: number): number => {
      let now = 0;
      const sizer = new ChunkSizer(() => now);
      now = 1000;
      return sizer.blocks(perS);
    };
    expect(BLOCK_SIZE).toBe(256);
    expect([2559, 5119, 5120, 7679, 7680, 10_239, 10_240, 1e6].map(at)).toEqual([1, 1, 2, 2, 3, 3, 4, 4]);
  });
});
