import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { analyze, parseProfile, startSim, type RunningSim } from '../src/index.js';
import { AdaptiveLimit } from '../src/runner/pacing/adaptive-limit.js';
import { runCli } from './helpers/cli.js';
import { loadEvents, ofType, tempDir, writeInput } from './helpers/run-dir.js';

/** One round at `limit`: every attempt started at `startMs`, ending with the given TTFT (ms). */
function round(
  a: AdaptiveLimit,
  startMs: number,
  endMs: number,
  ttftMs: number | ((i: number) => number),
  cause?: string,
) {
  const n = a.limit;
  for (let i = 0; i < n; i++) a.noteStart(i + 1);
  let change;
  for (let i = 0; i < n; i++)
    change = a.noteEnd(startMs, typeof ttftMs === 'number' ? ttftMs : ttftMs(i), cause, endMs) ?? change;
  return change;
}

describe('adaptive limit (pure)', () => {
  it('grows by √limit a round while the server answers at its floor', () => {
    const a = new AdaptiveLimit({ min: 1, max: 100, start: 4 }, 0);
    expect(round(a, 0, 200, 30)).toEqual({ old: 4, new: 6, reason: 'probe' });
    expect(round(a, 200, 400, 30)).toEqual({ old: 6, new: 8, reason: 'probe' });
    expect(round(a, 400, 600, 30)).toEqual({ old: 8, new: 11, reason: 'probe' });
  });

  it('grows only when the limit was used', () => {
    const a = new AdaptiveLimit({ min: 1, max: 100, start: 4 }, 0);
    for (let i = 0; i < 4; i++) a.noteStart(1);
    let change;
    for (let i = 0; i < 4; i++) change = a.noteEnd(0, 30, undefined, 200) ?? change;
    expect(change).toBeUndefined();
    expect(a.limit).toBe(4);
  });

  it('cuts by 0.7 on a 429, 5xx or timeout', () => {
    const a = new AdaptiveLimit({ min: 1, max: 100, start: 20 }, 0);
    expect(round(a, 0, 200, 30, 'http_429')).toEqual({ old: 20, new: 14, reason: 'overload' });
    expect(round(a, 200, 400, 30, 'timeout_ttft')).toEqual({ old: 14, new: 10, reason: 'overload' });
  });

  it('goes straight to the gradient target deep in the server queue, and a fifth of the way near the knee', () => {
    const a = new AdaptiveLimit({ min: 1, max: 400, start: 100 }, 0);
    // The floor: one idle answer in 30 ms; the rest waited ~1 s: mean/floor ≫ 3 → 100 × 0.5 + 10.
    expect(round(a, 0, 200, (i) => (i === 0 ? 30 : 1000))).toEqual({ old: 100, new: 60, reason: 'ttft_gradient' });
    // Mean 60 ms = 2 × floor: gradient 0.75, target 60 × 0.75 + √60 = 52.7, a fifth of the way: 58.5 → 59.
    expect(round(a, 200, 400, 60)).toEqual({ old: 60, new: 59, reason: 'ttft_gradient' });
  });

  it(
    'comes down by the count of attempts that waited in the server queue, and holds at that knee before ' +
      'probing past it',
    () => {
      const a = new AdaptiveLimit({ min: 1, max: 100, start: 26 }, 0);
      // Rounds of 26 attempts over 400 ms: floor 30 ms; two waited ~300 ms for a slot (> 3 × floor and > floor +
      // 400/5).
      expect(round(a, 0, 400, (i) => (i < 2 ? 300 : 30))).toEqual({ old: 26, new: 24, reason: 'ttft_gradient' });
      let t = 400;
      const clean = () => {
        const c = round(a, t, t + 400, 30);
        t += 400;
        return c;
      };
      // Four clean rounds at the knee, then one step past it.
      for (let i = 0; i < 3; i++) expect(clean()).toBeUndefined();
      expect(clean()).toEqual({ old: 24, new: 25, reason: 'probe' });
      // The probe queued one: back to 24 at its first queued answer, and the next probe waits twice as long.
      expect(round(a, t, t + 400, (i) => (i === 0 ? 300 : 30))).toEqual({ old: 25, new: 24, reason: 'ttft_gradient' });
      t += 400;
      for (let i = 0; i < 7; i++) expect(clean()).toBeUndefined();
      expect(clean()).toEqual({ old: 24, new: 25, reason: 'probe' });
    },
  );

  it('ignores a TTFT rise of a few ms against a fast server', () => {
    const a = new AdaptiveLimit({ min: 1, max: 100, start: 4 }, 0);
    // Floor 4 ms; the other answers 9.5 ms (2.4× the floor, but 5.5 ms): no gradient, the limit grows.
    expect(round(a, 0, 200, (i) => (i === 0 ? 4 : 9.5))).toEqual({ old: 4, new: 6, reason: 'probe' });
  });

  it('takes one slow answer in a round at the known knee for noise', () => {
    const a = new AdaptiveLimit({ min: 1, max: 100, start: 26 }, 0);
    expect(round(a, 0, 400, (i) => (i < 2 ? 300 : 30))).toEqual({ old: 26, new: 24, reason: 'ttft_gradient' });
    expect(round(a, 400, 800, (i) => (i === 0 ? 300 : 30))).toBeUndefined();
    expect(a.limit).toBe(24);
  });

  it('takes a stall of one round at a settled knee for noise, and a slowdown in two rounds running for a queue', () => {
    const a = new AdaptiveLimit({ min: 1, max: 100, start: 26 }, 0);
    expect(round(a, 0, 400, (i) => (i < 2 ? 300 : 30))).toEqual({ old: 26, new: 24, reason: 'ttft_gradient' });
    expect(round(a, 400, 800, 30)).toBeUndefined();
    // A stall after a clean round: six answers of one round slow at once. Nothing moves.
    const stall = (i: number) => (i < 6 ? 300 : 30);
    expect(round(a, 800, 1200, stall)).toBeUndefined();
    expect(round(a, 1200, 1600, 30)).toBeUndefined();
    expect(round(a, 1600, 2000, stall)).toBeUndefined();
    expect(a.limit).toBe(24);
    // The same again the next round: the server is slower, and the limit goes to the gradient's target
    // (mean 97.5 ms less 5 ms of slack over the 30 ms floor: 3.08 > 2 × 1.5; 24 × 1.5 / 3.08 + √24 = 16.6).
    expect(round(a, 2000, 2400, stall)).toEqual({ old: 24, new: 17, reason: 'ttft_gradient' });
    // Still slow at 17, with no clean round since that cut: it comes down again at once.
    expect(round(a, 2400, 2800, stall)?.new).toBeLessThan(17);
  });

  it("counts queued answers from the server's own timings when it sends them, whatever the floor", () => {
    const a = new AdaptiveLimit({ min: 1, max: 100, start: 8 }, 0);
    // Started above a knee of 4: every TTFT is contended (the floor is never an idle server's), so
    // TTFTs of 85 ms look flat; the server's timings say half of them waited 100 ms for a slot.
    let change;
    for (let i = 0; i < 8; i++) a.noteStart(i + 1);
    for (let i = 0; i < 8; i++) change = a.noteEnd(0, 85, undefined, 400, 2.5, i < 4 ? 100 : 2) ?? change;
    expect(change).toEqual({ old: 8, new: 4, reason: 'ttft_gradient' });
  });

  it("does not take a long prompt's slower first token for a queue", () => {
    const a = new AdaptiveLimit({ min: 1, max: 100, start: 20 }, 0);
    // Answers take 2 s; one prompt's prefill takes 150 ms (5 × floor), far below floor + 2000/5.
    expect(round(a, 0, 2000, (i) => (i === 0 ? 150 : 30))).toEqual({ old: 20, new: 24, reason: 'probe' });
  });

  it('leaves out attempts started under the old limit', () => {
    const a = new AdaptiveLimit({ min: 1, max: 100, start: 10 }, 0);
    expect(round(a, 0, 200, 30)).toMatchObject({ new: 13 });
    // Started at 100, before the round that began at 200: they say nothing about 13.
    for (let i = 0; i < 50; i++) expect(a.noteEnd(100, 5000, undefined, 300)).toBeUndefined();
    expect(a.limit).toBe(13);
  });

  it('stays within its range', () => {
    const a = new AdaptiveLimit({ min: 8, max: 10, start: 4 }, 0);
    expect(a.limit).toBe(8);
    round(a, 0, 200, 30);
    round(a, 200, 400, 30);
    expect(a.limit).toBe(10);
    for (let t = 400; t < 2000; t += 200) round(a, t, t + 200, 30, 'http_5xx');
    expect(a.limit).toBe(8);
  });
});

let sim: RunningSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

/** The limit's time-weighted mean over [fromMs, toMs], from shard_start and limit events. */
function meanLimit(out: string, fromFraction: number): { mean: number; last: number; changes: number } {
  const events = loadEvents(out).filter((e) => e.shard === 0);
  const start = ofType(events, 'shard_start')[0]!;
  const limits = ofType(events, 'limit');
  const endTs = events[events.length - 1]!.ts;
  const from = start.ts + (endTs - start.ts) * fromFraction;
  const steps = [{ ts: start.ts, v: start.concurrency }, ...limits.map((e) => ({ ts: e.ts, v: e.new }))];
  let area = 0;
  for (let i = 0; i < steps.length; i++) {
    const lo = Math.max(from, steps[i]!.ts);
    const hi = i + 1 < steps.length ? steps[i + 1]!.ts : endTs;
    if (hi > lo) area += steps[i]!.v * (hi - lo);
  }
  return { mean: area / (endTs - from), last: steps[steps.length - 1]!.v, changes: limits.length };
}

describe('--concurrency auto against a server with a knee at 24 in flight', () => {
  // The quota profile without its quotas: 24 slots; past 24 in flight, requests wait in the server's queue.
  const knee = parseProfile({ base: 'quota', faults: { rate_limit: { tokens_per_min: 0, requests_per_min: 0 } } });

  for (const [start, requests] of [
    [4, 700],
    [200, 1400],
  ] as const) {
    it(`settles within ±30% of the knee from a start of ${start}`, { timeout: 120_000 }, async () => {
      sim = await startSim({ profile: knee });
      const dir = tempDir();
      const out = join(dir, 'out');
      const r = await runCli(
        [
          'run',
          writeInput(dir, requests, { max_tokens: 32 }),
          '--endpoint',
          `${sim.url}/v1`,
          '--out',
          out,
          '--concurrency',
          `auto:1-400:${start}`,
          '--progress',
          'off',
        ],
        { timeoutMs: 110_000 },
      );
      expect(r.code, r.stderr).toBe(0);
      const { mean, last, changes } = meanLimit(out, 0.6);
      expect(changes).toBeGreaterThan(3);
      expect(mean).toBeGreaterThanOrEqual(24 * 0.7);
      expect(mean).toBeLessThanOrEqual(24 * 1.3);
      expect(last).toBeGreaterThanOrEqual(24 * 0.7);
      expect(last).toBeLessThanOrEqual(24 * 1.3);
      // The report follows the limit over time.
      const report = await analyze([out]);
      const seen = new Set(report.utilization.timeline.map((b) => b.limit));
      expect(seen.size).toBeGreaterThan(2);
    });
  }
});
