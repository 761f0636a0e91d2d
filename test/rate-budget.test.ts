import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { builtinProfiles, parseProfile, startSim, type RunningSim } from '../src/index.js';
import { parseResetDuration, quotaFromHeaders, RateBudget } from '../src/runner/pacing/rate-budget.js';
import { runCli } from './helpers/cli.js';
import { loadEvents, loadResults, ofType, tempDir, writeInput } from './helpers/run-dir.js';

describe('rate budget (pure)', () => {
  it('reads the reset durations OpenAI writes', () => {
    expect(parseResetDuration('6m0s')).toBe(360_000);
    expect(parseResetDuration('1s')).toBe(1000);
    expect(parseResetDuration('20ms')).toBe(20);
    expect(parseResetDuration('1m30.5s')).toBe(90_500);
    expect(parseResetDuration('2.5')).toBe(2500);
    expect(parseResetDuration('soon')).toBeUndefined();
    expect(parseResetDuration('1s junk')).toBeUndefined();
  });

  it('takes the x-ratelimit-* state from headers, and nothing when they are absent', () => {
    const q = quotaFromHeaders(
      {
        'x-ratelimit-limit-tokens': '60000',
        'x-ratelimit-remaining-tokens': '120',
        'x-ratelimit-reset-tokens': '1.2s',
      },
      5,
    );
    expect(q).toEqual([{ kind: 'tokens', limit: 60_000, remaining: 120, resetMs: 1200, ts: 5 }]);
    expect(quotaFromHeaders({ 'content-type': 'application/json' }, 5)).toEqual([]);
  });

  it('starts empty, then paces requests at the per-minute rate with at most one second of budget', () => {
    const b = new RateBudget({ rpm: 600 }, 0);
    expect(b.tryTake(0, 0)).toBeGreaterThan(0);
    // Idle for 5 s: still only one second (10 requests) in the bucket.
    for (let i = 0; i < 10; i++) expect(b.tryTake(0, 5000)).toBe(0);
    expect(b.tryTake(0, 5000)).toBeGreaterThan(0);
    // One request's worth refills in 100 ms at 600/min.
    expect(b.tryTake(0, 5100)).toBe(0);
    expect(b.tryTake(0, 5100)).toBeGreaterThan(0);
  });

  it('lets a request larger than the bucket through, then makes the next wait it off', () => {
    const b = new RateBudget({ tpm: 6000 }, 0); // 100 tokens/s, at most 100 in the bucket
    expect(b.tryTake(300, 1000)).toBe(0);
    expect(b.tryTake(10, 1000)).toBe(1000); // 200 in debt: 2 s, re-checked after at most 1 s
    expect(b.tryTake(10, 3000)).toBeGreaterThan(0);
    expect(b.tryTake(10, 3001)).toBe(0);
  });

  it('keeps under what the provider says is left, refilled at its limit', () => {
    const b = new RateBudget({ tpm: 1_000_000 }, 0);
    b.observe({ kind: 'tokens', limit: 60_000, remaining: 50, resetMs: 60_000, ts: 1000 });
    expect(b.tryTake(40, 1000)).toBe(0);
    // 10 left by the provider's count, 1 token/ms refill: 30 more needs 30 ms.
    expect(b.tryTake(40, 1000)).toBe(30);
    expect(b.tryTake(40, 1030)).toBe(0);
  });

  it('corrects a charge by usage', () => {
    const b = new RateBudget({ tpm: 6000 }, 0);
    expect(b.tryTake(100, 1000)).toBe(0);
    expect(b.tryTake(1, 1000)).toBeGreaterThan(0);
    b.adjust(-50); // the prompt was 50 tokens shorter than estimated
    expect(b.tryTake(1, 1000)).toBe(0);
  });

  it('does nothing without a budget', () => {
    const b = new RateBudget({}, 0);
    b.observe({ kind: 'requests', limit: 1, remaining: 0, resetMs: 60_000, ts: 0 });
    for (let i = 0; i < 1000; i++) expect(b.tryTake(1e6, 0)).toBe(0);
  });
});

let sim: RunningSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

function status429Share(out: string): { attempts: number; refused: number } {
  const ends = ofType(loadEvents(out), 'attempt_end');
  return { attempts: ends.length, refused: ends.filter((e) => e.status === 429).length };
}

describe("--tpm against a provider quota (the simulator's quota profile)", () => {
  it(
    'runs just under the quota: under 1% of attempts refused, where a fixed bound bounces off it',
    { timeout: 120_000 },
    async () => {
      const quota = builtinProfiles.get('quota')!;
      expect(quota.faults.rate_limit.headers).toBe(true);
      // The quota profile with a token quota below the server's capacity and a 1 s bucket, so a
      // fixed bound meets the quota at once and goes on meeting it.
      sim = await startSim({
        profile: parseProfile({
          base: 'quota',
          faults: { rate_limit: { tokens_per_min: 90_000, requests_per_min: 60_000, burst_s: 1, headers: true } },
        }),
      });
      const dir = tempDir();
      const input = writeInput(dir, 120, { max_tokens: 32 });
      const common = [
        '--endpoint',
        `${sim.url}/v1`,
        '--concurrency',
        '32',
        '--max-attempts',
        '20',
        '--retry-backoff-s',
        '0.1',
        '--progress',
        'off',
      ];
      const fixed = await runCli(['run', input, '--out', join(dir, 'fixed'), ...common], { timeoutMs: 100_000 });
      expect([0, 3], fixed.stderr).toContain(fixed.code);
      const budgeted = await runCli(['run', input, '--out', join(dir, 'tpm'), ...common, '--tpm', '90000'], {
        timeoutMs: 100_000,
      });
      expect(budgeted.code, budgeted.stderr).toBe(0);
      expect(loadResults(join(dir, 'tpm'))).toHaveLength(120);
      const a = status429Share(join(dir, 'fixed'));
      const b = status429Share(join(dir, 'tpm'));
      expect(b.refused / b.attempts).toBeLessThan(0.01);
      expect(a.refused / a.attempts).toBeGreaterThan(0.1);
    },
  );
});
