import { describe, expect, it } from 'vitest';
import { LimitTimeline, levelsByLimit } from '../src/diagnose/limit-timeline.js';

// The limit timeline behind `detail.by_limit`: segments at the events' resolution, tokens spread
// over each request's decode, TTFT filed under the level its attempt started at.

describe('LimitTimeline', () => {
  it('opens a segment only when the limit changes', () => {
    const t = new LimitTimeline();
    t.note(0, 4);
    t.note(10, 4);
    t.note(20, 6);
    t.note(30, 6);
    t.note(40, 0);
    t.note(50, 6);
    expect(t.segments.map((s) => [s.t, s.limit])).toEqual([
      [0, 4],
      [20, 6],
      [40, 0],
      [50, 6],
    ]);
  });

  it('spreads a request’s tokens over the levels its decode crossed, in proportion to time', () => {
    const t = new LimitTimeline();
    t.note(1000, 4);
    t.note(2000, 8);
    t.note(2500, 6);
    // 300 tokens decoded over 1500–2700: 500 ms at 4, 500 at 8, 200 at 6.
    t.addTokens(1500, 2700, 300);
    // No decode span (a plain answer): all at its one instant; before the first level: dropped.
    t.addTokens(2600, 2600, 7);
    t.addTokens(500, 500, 99);
    // Partly before the first level: only the part after it counts.
    t.addTokens(0, 2000, 100);
    expect(t.segments.map((s) => s.tokens)).toEqual([125 + 50, 125, 50 + 7]);
  });

  it('files TTFT under the level in force when the attempt started', () => {
    const t = new LimitTimeline();
    for (let i = 0; i < 20; i++) t.note(i * 100, i + 1);
    t.addTtft(1999, 5);
    t.addTtft(0, 1);
    t.addTtft(750, 8);
    t.addTtft(-1, 9);
    expect(t.segments[19]!.ttft).toEqual([5]);
    expect(t.segments[0]!.ttft).toEqual([1]);
    expect(t.segments[7]!.ttft).toEqual([8]);
    expect(t.segments.flatMap((s) => s.ttft)).toHaveLength(3);
  });

  it('totals each level’s time across its stretches, the last one running to the end', () => {
    const t = new LimitTimeline();
    t.note(0, 10);
    t.note(4000, 9);
    t.note(5000, 10);
    t.note(9000, 0);
    t.note(9500, 9);
    t.addTokens(0, 9000, 900);
    const levels = levelsByLimit(t.segments, 9800);
    expect(levels.map((l) => [l.limit, l.seconds])).toEqual([
      [9, 1.3],
      [10, 8],
    ]);
    // 800 of the 900 tokens in the 8 s at 10: 6,000 a minute; 100 in the 1.3 s at 9.
    expect(levels[1]!.tpm).toBe(6000);
    expect(levels[0]!.tpm).toBeCloseTo((100 * 60_000) / 1300, 9);
    expect(levels[0]!.ttft_p50).toBeNull();
  });
});
