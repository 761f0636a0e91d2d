import { describe, expect, it } from 'vitest';
import { CpuWait } from '../src/runner/live/cpu-wait.js';
import { HostCpu } from '../src/runner/live/host-cpu.js';
import { LiveMetrics } from '../src/runner/live/live-metrics.js';
import { RollingStats } from '../src/runner/live/rolling-stats.js';
import { builtinProfiles } from '../src/sim/builtin-profiles.js';
import { capacityTpm, decodeCapacityTpm, prefillMs, stepMs } from '../src/sim/capacity.js';
import { TokenBucket } from '../src/sim/token-bucket.js';
import { completionText, countPromptTokens, tokenText, WORDS } from '../src/sim/token-text.js';
import { parseProfile } from '../src/sim/load-profile.js';

// Live figures (what the progress line and /metrics show) and the simulator's building blocks,
// each on its own against hand-worked numbers.

describe('rolling stats', () => {
  it('sums the last 60 s of tokens, scaled up while the run is younger than a minute', () => {
    const s = new RollingStats();
    const t0 = 1_000_000;
    s.addTokens(t0, 100);
    s.addTokens(t0 + 500, 50);
    s.addTokens(t0 + 10_000, 150);
    // 10 s into the run: 300 tokens in 10 s is 1,800 a minute.
    expect(s.tokensPerMinute(t0 + 10_000, t0)).toBe(1800);
    // 65 s on, the first second has left the window.
    expect(s.tokensPerMinute(t0 + 65_000, t0)).toBe(150);
    expect(s.tokensPerMinute(t0 + 200_000, t0)).toBe(0);
  });

  it('gives the nearest-rank p95 of the recent TTFTs, forgetting the oldest past its ring', () => {
    const s = new RollingStats(100);
    expect(s.ttftP95()).toBeUndefined();
    for (let i = 1; i <= 100; i++) s.addSuccess(0, 1, i);
    expect(s.ttftP95()).toBe(95);
    for (let i = 0; i < 100; i++) s.addTtft(1000 + i);
    expect(s.ttftP95()).toBe(1094);
    s.addSuccess(0, 5, undefined);
    expect(s.ttftP95()).toBe(1094);
  });
});

describe('machine load samplers', () => {
  it('read CPU shares between 0 and 1, and a thread that spins is seldom waiting on an idle machine', () => {
    const host = new HostCpu();
    const wait = new CpuWait();
    const until = performance.now() + 30;
    while (performance.now() < until) Math.sqrt(Math.random());
    const busy = host.take();
    expect(busy).toBeGreaterThanOrEqual(0);
    expect(busy).toBeLessThanOrEqual(1);
    const w = wait.take();
    // Linux gives a share; elsewhere null. Either way never outside [0, 1].
    if (w !== null) {
      expect(w).toBeGreaterThanOrEqual(0);
      expect(w).toBeLessThanOrEqual(1);
    }
    wait.close();
  });
});

describe('live metrics', () => {
  it('exposes what the run did under the OpenTelemetry GenAI names and shardline’s own', async () => {
    let now = 10_000;
    const m = new LiveMetrics(
      { backlog: () => 7, inBackoff: () => 2, inFlight: () => 5, limit: () => 16 },
      () => now,
      () => 0,
    );
    // Figures are recorded only while /metrics is served (a scrape is the only reader): serve it, and scrape.
    const url = await m.serve('127.0.0.1', 0);
    m.recordDone(
      {
        id: 'a',
        resultLine: '',
        outcome: 'succeeded',
        attempts: 1,
        completionTokens: 40,
        promptTokens: 10,
        ttftMs: 120,
        attemptMs: 900,
        model: 'm',
      },
      now,
    );
    m.recordDone(
      {
        id: 'b',
        resultLine: '',
        outcome: 'failed',
        attempts: 3,
        completionTokens: 0,
        promptTokens: 0,
        cause: 'http_5xx',
        attemptMs: 50,
      },
      now,
    );
    m.recordRetry({ id: 'b', attempt: 2, delayMs: 100, dueTs: now + 100, cause: 'http_5xx', attemptMs: 40 });
    m.recordConnections(3);
    m.recordConnectionFaults(1, 2);
    m.recordEndpointDown(0, true);
    now = 20_000;
    const text = await (await fetch(url)).text();
    await m.close();
    const value = (name: string) => {
      const line = text.split('\n').find((l) => l.startsWith(name));
      return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    expect(value('shardline_requests_total{outcome="succeeded"}')).toBe(1);
    expect(value('shardline_requests_total{outcome="failed"}')).toBe(1);
    expect(value('shardline_retries_total{cause="http_5xx"}')).toBe(1);
    expect(value('shardline_backlog')).toBe(7);
    expect(value('shardline_retries_waiting')).toBe(2);
    expect(value('shardline_in_flight ')).toBe(5);
    expect(value('shardline_in_flight_limit')).toBe(16);
    expect(value('shardline_connections_opened_total')).toBe(3);
    expect(value('shardline_stale_connections_total')).toBe(1);
    expect(value('shardline_paused_attempts_total')).toBe(2);
    expect(value('shardline_endpoint_down')).toBe(1);
    expect(text).toMatch(/gen_ai_server_time_to_first_token_seconds_count\{[^}]*\} 1/);
    expect(text).toMatch(/gen_ai_client_token_usage_sum\{[^}]*gen_ai_token_type="output"[^}]*\} 40/);
    // 40 tokens 20 s into the run: 120 a minute.
    expect(value('shardline_completion_tokens_per_minute')).toBe(120);
  });
});

describe('the simulator’s token bucket', () => {
  it('refills continuously, refuses what it cannot hold with the wait, and lets an oversize request through', () => {
    const b = new TokenBucket(600, 0); // 10 a second, a minute's worth at once
    expect(b.take(600, 0)).toEqual({ ok: true });
    expect(b.take(5, 0)).toEqual({ ok: false, retryAfterMs: 500 });
    expect(b.take(5, 500)).toEqual({ ok: true });
    expect(b.peek(500)).toEqual({ remaining: 0, resetMs: 60_000 });
    expect(b.peek(30_500)).toEqual({ remaining: 300, resetMs: 30_000 });
    const perSecond = new TokenBucket(600, 0, 1); // a one-second bucket: 10 at once
    expect(perSecond.take(100, 0)).toEqual({ ok: true });
    expect(perSecond.take(1, 0)).toEqual({ ok: false, retryAfterMs: 100 });
    expect(new TokenBucket(0, 0).take(1e9, 0)).toEqual({ ok: true });
  });
});

describe('the simulator’s capacity model', () => {
  const p = parseProfile({ base: 'realistic' });
  it('prices prefill by prompt and a decode step by batch size, monotonically', () => {
    expect(prefillMs(p, 1000)).toBeGreaterThan(prefillMs(p, 10));
    expect(stepMs(p, 32)).toBeGreaterThan(stepMs(p, 1));
    expect(stepMs(p, 1)).toBeCloseTo(p.step_ms_base + p.step_ms_per_seq, 6);
  });
  it('states a capacity no larger than the decode bound, for every built-in profile', () => {
    for (const profile of builtinProfiles.values()) {
      const cap = capacityTpm(profile);
      expect(cap, profile.name).toBeGreaterThan(0);
      expect(cap, profile.name).toBeLessThanOrEqual(decodeCapacityTpm(profile) * 1.000001);
    }
  });
});

describe('the simulator’s text', () => {
  it('is the same words for the same positions, and counts a prompt’s words', () => {
    expect(tokenText(0)).toBe(WORDS[0]);
    expect(completionText(3)).toBe(tokenText(0) + tokenText(1) + tokenText(2));
    expect(completionText(0)).toBe('');
    const n = countPromptTokens([{ role: 'user', content: 'one two three four' }]);
    expect(n).toBeGreaterThanOrEqual(4);
    expect(countPromptTokens([{ role: 'user', content: 'one two three four five six seven eight' }])).toBeGreaterThan(
      n,
    );
  });
});
