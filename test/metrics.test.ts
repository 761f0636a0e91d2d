import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { computeTpm, nearestRank, summarize, type MinuteBucket } from '../src/index.js';

describe('nearest-rank percentiles', () => {
  it('matches hand-computed ranks', () => {
    const xs = [15, 20, 35, 40, 50];
    // ceil(p/100 · 5) − 1: p50 → index 2, p90 → 4, p30 → 1, p100 → 4
    expect(nearestRank(xs, 50)).toBe(35);
    expect(nearestRank(xs, 90)).toBe(50);
    expect(nearestRank(xs, 30)).toBe(20);
    expect(nearestRank(xs, 100)).toBe(50);
    expect(nearestRank([], 50)).toBeUndefined();
    const one_to_100 = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(summarize(one_to_100)).toEqual({ p50: 50, p90: 90, p95: 95, p99: 99, max: 100, count: 100 });
    expect(summarize([])).toEqual({ p50: null, p90: null, p95: null, p99: null, max: null, count: 0 });
  });

  it('recovers the quantiles of a known distribution (exponential, λ = 1)', () => {
    // Inverse-CDF sample at evenly spaced probabilities: the p-th percentile is −ln(1 − p).
    const n = 100_000;
    const xs = Array.from({ length: n }, (_, i) => -Math.log(1 - (i + 0.5) / n));
    const s = summarize(xs);
    expect(s.p50).toBeCloseTo(Math.log(2), 3);
    expect(s.p90).toBeCloseTo(-Math.log(0.1), 2);
    expect(s.p99).toBeCloseTo(-Math.log(0.01), 1);
  });

  it('is monotone in p, bounded by min and max, and order-independent (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 200 }), (xs) => {
        const s = summarize(xs);
        const min = Math.min(...xs);
        expect(s.p50!).toBeLessThanOrEqual(s.p90!);
        expect(s.p90!).toBeLessThanOrEqual(s.p95!);
        expect(s.p95!).toBeLessThanOrEqual(s.p99!);
        expect(s.p99!).toBeLessThanOrEqual(s.max!);
        expect(s.p50!).toBeGreaterThanOrEqual(Math.round(min * 1000) / 1000 - 1e-9);
        expect(summarize([...xs].reverse())).toEqual(s);
      }),
    );
  });
});

describe('aggregate TPM', () => {
  const t0 = Date.UTC(2026, 10, 27, 12, 0, 0);
  const bucket = (minute: number, perShard: [number, number][]): MinuteBucket => ({
    minute,
    tokens: perShard.reduce((a, [, t]) => a + t, 0),
    perShard: new Map(perShard),
  });

  it('peaks over minutes fully inside the window, summing shards', () => {
    const m = t0 / 60_000;
    // Window 12:00:30 → 12:04:10: full minutes are 12:01, 12:02, 12:03.
    const buckets = [
      bucket(m, [[0, 9000]]),
      bucket(m + 1, [
        [0, 100],
        [1, 200],
      ]),
      bucket(m + 2, [
        [0, 300],
        [1, 400],
      ]),
      bucket(m + 3, [[0, 50]]),
      bucket(m + 4, [[0, 10_000]]),
    ];
    const t = computeTpm(buckets, t0 + 30_000, t0 + 4 * 60_000 + 10_000);
    expect(t.aggregate_peak).toBe(700);
    expect(t.aggregate_peak_minute).toBe('2026-11-27T12:02:00.000Z');
    expect(t.aggregate_peak_partial).toBe(false);
    expect(t.per_shard_peak).toEqual({ '0': 300, '1': 400 });
    expect(t.run_average).toBe((20_050 * 60_000) / (3 * 60_000 + 40_000));
    expect(t.per_minute[1]).toEqual({
      minute: '2026-11-27T12:01:00.000Z',
      completion_tokens: 300,
      per_shard: { '0': 100, '1': 200 },
    });
  });

  it('falls back to the best partial minute, scaled and flagged, for short runs', () => {
    const m = t0 / 60_000;
    // 40 s run from 12:00:10 to 12:00:50: 4000 tokens → 6000 per minute.
    const t = computeTpm([bucket(m, [[0, 4000]])], t0 + 10_000, t0 + 50_000);
    expect(t.aggregate_peak_partial).toBe(true);
    expect(t.aggregate_peak).toBe(6000);
    expect(t.run_average).toBe(6000);
  });

  it('per-minute tokens always sum to the total (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 5000 })),
          { maxLength: 100 },
        ),
        (rows) => {
          const map = new Map<number, MinuteBucket>();
          for (const [min, shard, tokens] of rows) {
            const b = map.get(min) ?? { minute: min, tokens: 0, perShard: new Map<number, number>() };
            b.tokens += tokens;
            b.perShard.set(shard, (b.perShard.get(shard) ?? 0) + tokens);
            map.set(min, b);
          }
          const t = computeTpm([...map.values()], 0, 31 * 60_000);
          const total = rows.reduce((a, r) => a + r[2], 0);
          expect(t.per_minute.reduce((a, p) => a + p.completion_tokens, 0)).toBe(total);
          for (const p of t.per_minute)
            expect(Object.values(p.per_shard).reduce((a, b) => a + b, 0)).toBe(p.completion_tokens);
          expect(t.aggregate_peak).toBe(Math.max(0, ...t.per_minute.map((p) => p.completion_tokens)));
        },
      ),
    );
  });
});
