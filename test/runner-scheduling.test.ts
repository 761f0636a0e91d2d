import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { analyze, parseProfile, run, startSim, type RunningSim, type ShardlineEvent } from '../src/index.js';
import { loadEvents, loadResults, ofType, tempDir, writeInput } from './helpers/run-dir.js';

let sim: RunningSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

/**
 * Walk the merged log keeping per-shard in-flight, the global backlog (enqueued, not yet started) and
 * the slots that exist (a shard's slots count from its shard_start), collecting every interval in
 * which a slot was free while work waited: an admission gap.
 */
function replay(events: ShardlineEvent[]) {
  const inFlight = new Map<number, number>();
  const maxInFlight = new Map<number, number>();
  let backlog = 0;
  let total = 0;
  let limit = 0;
  const gaps: number[] = [];
  let gapStart: number | undefined;
  for (const e of events) {
    if (e.type === 'shard_start' && e.replaces === undefined) limit += e.concurrency;
    if (e.type === 'enqueue') backlog++;
    if (e.type === 'attempt_start') {
      backlog--;
      const n = (inFlight.get(e.shard) ?? 0) + 1;
      inFlight.set(e.shard, n);
      maxInFlight.set(e.shard, Math.max(maxInFlight.get(e.shard) ?? 0, n));
      total++;
    }
    if (e.type === 'attempt_end') {
      inFlight.set(e.shard, inFlight.get(e.shard)! - 1);
      total--;
    }
    if (total < limit && backlog > 0) gapStart ??= e.ts;
    else if (gapStart !== undefined) {
      gaps.push(e.ts - gapStart);
      gapStart = undefined;
    }
  }
  return { maxInFlight, gaps };
}

describe('runner scheduling, proven from the event log', () => {
  it('never exceeds the in-flight bound per shard and leaves no admission gaps', async () => {
    // More work than slots, requests of ~100 ms with jitter: a dispatcher that waited for a batch, or
    // for a shard to drain, would show gaps of a request's length; pull dispatch shows IPC latency.
    sim = await startSim({
      profile: parseProfile({
        base: 'realistic',
        slots: 256,
        jitter: 0.5,
        prefill_ms_base: 5,
        step_ms_base: 10,
        step_ms_per_seq: 0,
      }),
    });
    const dir = tempDir();
    const out = join(dir, 'out');
    const summary = await run({
      input: writeInput(dir, 300, { max_tokens: 9 }),
      endpoint: `${sim.url}/v1`,
      out,
      shards: 2,
      concurrency: 6,
      progress: 'off',
    });
    expect(summary.requests.succeeded).toBe(300);
    const events = loadEvents(out);
    const { maxInFlight, gaps } = replay(events);
    expect([...maxInFlight.keys()].sort()).toEqual([0, 1]);
    for (const [, max] of maxInFlight) expect(max).toBe(6);
    // A free slot with work waiting lasts a hop inside the shard (its next item is prefetched), not
    // a request's length: compared with this run's own attempts, so a slow machine slows both.
    gaps.sort((a, b) => a - b);
    const p99 = gaps.length ? gaps[Math.ceil(gaps.length * 0.99) - 1]! : 0;
    const starts = new Map(ofType(events, 'attempt_start').map((e) => [`${e.id}#${e.attempt}`, e.ts]));
    const attemptMs = ofType(events, 'attempt_end')
      .map((e) => e.ts - starts.get(`${e.id}#${e.attempt}`)!)
      .sort((a, b) => a - b);
    const medianAttemptMs = attemptMs[Math.floor(attemptMs.length / 2)]!;
    expect(medianAttemptMs).toBeGreaterThan(0);
    expect(p99).toBeLessThan(0.3 * medianAttemptMs);
  });

  it('keeps a full set of next items in each shard, so a freed slot never waits for the coordinator', async () => {
    sim = await startSim({
      profile: parseProfile({
        base: 'fast',
        tokens_per_step: 1,
        step_ms_base: 10,
        step_ms_per_seq: 0,
        prefill_ms_base: 0,
      }),
    });
    const dir = tempDir();
    const shardBacklogs = async (prefetch?: number): Promise<number[]> => {
      const out = join(dir, `out-${prefetch ?? 'default'}`);
      const summary = await run({
        input: writeInput(dir, 160, { max_tokens: 3 }),
        endpoint: `${sim!.url}/v1`,
        out,
        shards: 2,
        concurrency: 4,
        gaugeIntervalMs: 20,
        progress: 'off',
        ...(prefetch !== undefined ? { prefetch } : {}),
      });
      expect(summary.requests.succeeded).toBe(160);
      return ofType(loadEvents(out), 'gauge')
        .filter((g) => g.shard >= 0)
        .map((g) => g.backlog);
    };
    // Default: one prefetched item per slot; a shard's gauge counts them as its own backlog.
    const held = await shardBacklogs();
    expect(held.length).toBeGreaterThan(10);
    expect(Math.max(...held)).toBe(4);
    expect(Math.min(...held)).toBeGreaterThanOrEqual(0);
    // Pure pull: nothing waits in a shard, every item starts the moment it arrives.
    const none = await shardBacklogs(0);
    expect(none.length).toBeGreaterThan(10);
    expect(none.every((b) => b === 0)).toBe(true);
  });

  it('hands a shard more work than one message holds (256 items) without losing any', async () => {
    // 300 slots + 300 prefetched: the first dispatch is split across several IPC messages.
    sim = await startSim({ profile: parseProfile({ base: 'fast' }) });
    const dir = tempDir();
    const out = join(dir, 'out');
    const summary = await run({
      input: writeInput(dir, 900, { max_tokens: 2 }),
      endpoint: `${sim.url}/v1`,
      out,
      concurrency: 300,
      progress: 'off',
    });
    expect(summary.requests.succeeded).toBe(900);
    const ids = loadResults(out).map((r) => r.custom_id);
    expect(new Set(ids).size).toBe(900);
    const { maxInFlight } = replay(loadEvents(out));
    expect(maxInFlight.get(0)).toBeLessThanOrEqual(300);
  });

  it('counts prefetched, unstarted items in the live backlog', async () => {
    // 200 ms answers, 4 slots, a read-ahead of 8: mid-run the coordinator holds 8 items and the shard
    // 4 more it has prefetched; the progress line's backlog must show all 12 waiting.
    sim = await startSim({
      profile: parseProfile({
        base: 'fast',
        tokens_per_step: 1,
        step_ms_base: 20,
        step_ms_per_seq: 0,
        prefill_ms_base: 0,
      }),
    });
    const dir = tempDir();
    const backlogs: number[] = [];
    const summary = await run(
      {
        input: writeInput(dir, 60, { max_tokens: 10 }),
        endpoint: `${sim.url}/v1`,
        out: join(dir, 'out'),
        concurrency: 4,
        readAhead: 8,
        gaugeIntervalMs: 50,
        progress: 'off',
      },
      { onProgress: (p) => backlogs.push(p.backlog) },
    );
    expect(summary.requests.succeeded).toBe(60);
    expect(backlogs.length).toBeGreaterThan(1);
    expect(Math.max(...backlogs)).toBe(12);
  });

  it('backs off with full jitter under the doubling cap, and honours longer Retry-After', async () => {
    sim = await startSim({
      profile: parseProfile({
        base: 'fast',
        faults: { errors: { p_503: 0.2 }, rate_limit: { random_429_p: 0.1, retry_after_s: 0.3 } },
      }),
      seed: 3,
    });
    const dir = tempDir();
    const out = join(dir, 'out');
    const baseS = 0.02;
    const capS = 0.1;
    const summary = await run({
      input: writeInput(dir, 200, { max_tokens: 2 }),
      endpoint: `${sim.url}/v1`,
      out,
      concurrency: 16,
      maxAttempts: 12,
      retryBackoffS: baseS,
      retryBackoffMaxS: capS,
      retryBudget: 1,
      seed: 9,
      progress: 'off',
    });
    expect(summary.requests.succeeded).toBe(200);
    const events = loadEvents(out);
    const ends = new Map(ofType(events, 'attempt_end').map((e) => [`${e.id}#${e.attempt}`, e]));
    const backoffs = ofType(events, 'backoff');
    expect(backoffs.length).toBeGreaterThan(50);
    const ratios: number[] = [];
    for (const b of backoffs) {
      const end = ends.get(`${b.id}#${b.attempt}`)!;
      expect(end.outcome).toBe('error');
      expect(b.cause).toBe(end.cause);
      const ceiling = Math.min(capS, baseS * 2 ** (b.attempt - 1)) * 1000;
      if (end.retry_after_ms !== undefined && end.retry_after_ms > ceiling) {
        expect(b.cause).toBe('http_429');
        expect(b.delay_ms).toBe(end.retry_after_ms);
      } else {
        expect(b.delay_ms).toBeGreaterThanOrEqual(0);
        expect(b.delay_ms).toBeLessThanOrEqual(ceiling);
        ratios.push(b.delay_ms / ceiling);
      }
    }
    expect(backoffs.some((b) => b.cause === 'http_429' && b.delay_ms === 300)).toBe(true);
    // Full jitter: delay / ceiling is uniform on [0, 1): mean ½ within ±3σ (σ = 1/√(12n)).
    const mean = ratios.reduce((a, b) => a + b, 0) / ratios.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(3 / Math.sqrt(12 * ratios.length));
    // The retry really waited: the next attempt starts no earlier than the backoff allows.
    const starts = new Map(ofType(events, 'attempt_start').map((e) => [`${e.id}#${e.attempt}`, e.ts]));
    for (const b of backoffs)
      expect(starts.get(`${b.id}#${b.attempt + 1}`)! - b.ts).toBeGreaterThanOrEqual(b.delay_ms - 0.01);
  });

  it('when the retry budget is spent, failures back off to the cap', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast', faults: { errors: { p_500: 0.5 } } }) });
    const dir = tempDir();
    const out = join(dir, 'out');
    await run({
      input: writeInput(dir, 40, { max_tokens: 2 }),
      endpoint: `${sim.url}/v1`,
      out,
      retryBackoffS: 0.01,
      retryBackoffMaxS: 0.05,
      retryBudget: 0,
      retryBudgetMinRetries: 2,
      maxAttempts: 3,
      progress: 'off',
    });
    const backoffs = ofType(loadEvents(out), 'backoff');
    const exhausted = backoffs.filter((b) => b.budget_exhausted);
    expect(exhausted.length).toBeGreaterThan(0);
    for (const b of exhausted) expect(b.delay_ms).toBe(50);
    expect(backoffs.filter((b) => !b.budget_exhausted).length).toBeLessThanOrEqual(2);
  });

  it('does not park a request for a Retry-After over --retry-after-max-s: it fails at once, saying why', async () => {
    // Every request is told to come back in ten minutes, as a spent quota is.
    sim = await startSim({
      profile: parseProfile({ base: 'fast', faults: { rate_limit: { random_429_p: 1, retry_after_s: 600 } } }),
    });
    const dir = tempDir();
    const out = join(dir, 'out');
    const summary = await run({
      input: writeInput(dir, 6),
      endpoint: `${sim.url}/v1`,
      out,
      retryAfterMaxS: 120,
      progress: 'off',
    });
    expect(summary.requests.failed).toBe(6);
    expect(summary.failure_causes).toEqual({ http_429: 6 });
    expect(summary.duration_s).toBeLessThan(30);
    expect(summary.hints).toContain(
      '6 requests were not retried: the server asked to wait up to 600 s, over --retry-after-max-s 120 (a spent ' +
        'quota?); run again later with --retry-failed, or raise --retry-after-max-s to wait it out',
    );
    const events = loadEvents(out);
    expect(ofType(events, 'backoff')).toHaveLength(0);
    for (const e of ofType(events, 'attempt_end'))
      expect(e).toMatchObject({ outcome: 'error', status: 429, retry_after_ms: 600_000 });
    for (const r of loadResults(out))
      expect(r.error!.message).toMatch(
        /\(not retried: the server asked to wait 600 s, over --retry-after-max-s 120\)$/,
      );
    // The report, from the events alone, says it is a quota to wait out, not a pace to stay under.
    const report = await analyze([out]);
    expect(report.detail.max_retry_after_ms).toBe(600_000);
    const errors = report.verdict.findings.find((f) => f.mode === 'errors')!;
    expect(errors.action).toMatch(/^the server asked to wait up to 600 s before retrying — a spent quota/);
    expect(errors.action).toContain('--retry-failed http_429');
    // A short Retry-After is a pace to stay under: the same failures get the rate-limit advice.
    await sim.close();
    sim = await startSim({
      profile: parseProfile({ base: 'fast', faults: { rate_limit: { random_429_p: 1, retry_after_s: 2 } } }),
    });
    const paced = join(dir, 'paced');
    await run({
      input: writeInput(dir, 6, {}, 'paced.jsonl'),
      endpoint: `${sim.url}/v1`,
      out: paced,
      maxAttempts: 1,
      progress: 'off',
    });
    const pacedReport = await analyze([paced]);
    expect(pacedReport.detail.max_retry_after_ms).toBe(2000);
    expect(pacedReport.verdict.findings.find((f) => f.mode === 'errors')!.action).toMatch(/^stay under the rate limit/);
  });

  it('fails non-retryable errors on the first attempt', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast' }) });
    const dir = tempDir();
    const out = join(dir, 'out');
    // max_tokens 0 makes the server answer 400: a client error that retrying cannot fix.
    const summary = await run({
      input: writeInput(dir, 5, { max_tokens: 0 }),
      endpoint: `${sim.url}/v1`,
      out,
      progress: 'off',
    });
    expect(summary.requests.failed).toBe(5);
    expect(summary.failure_causes).toEqual({ http_4xx: 5 });
    expect(summary.exit_code).toBe(3);
    const events = loadEvents(out);
    expect(ofType(events, 'attempt_start')).toHaveLength(5);
    expect(ofType(events, 'backoff')).toHaveLength(0);
    for (const e of ofType(events, 'request_end'))
      expect(e).toMatchObject({ outcome: 'failed', attempts: 1, cause: 'http_4xx' });
  });
});
