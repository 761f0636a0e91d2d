import { describe, expect, it } from 'vitest';
import { buildReport } from '../src/diagnose/build-report.js';
import { zeroBuckets, type Bin, type RunFacts } from '../src/diagnose/run-facts.js';
import { formatReport } from '../src/report/terminal-report.js';

// The report and its verdict as pure functions of the facts one pass gathers: hand-made facts in,
// hand-computed figures and findings out. (diagnose.test.ts does the same from generated event logs.)

const T0 = Date.parse('2026-12-06T10:00:00Z');

function facts(over: Partial<RunFacts> = {}): RunFacts {
  return {
    runIds: ['run-a'],
    startMs: T0,
    endMs: T0 + 120_000,
    idleMs: 0,
    requests: 100,
    succeeded: 100,
    failed: 0,
    attempts: 100,
    firstAttempts: 100,
    pausedAttempts: 0,
    staleResends: 0,
    keepaliveOffShards: 0,
    keepaliveDisabledShards: 0,
    shards: 1,
    limitFinal: 16,
    limitSettled: 16,
    attemptErrorStatuses: {},
    outages: 0,
    downMs: 0,
    retries: 0,
    retryCauses: {},
    failureCauses: {},
    attemptErrorCauses: {},
    maxRetryAfterMs: 0,
    completionTokens: 20_000,
    promptTokens: 5_000,
    estimatedTokens: 0,
    minutes: [
      { minute: T0 / 60_000, tokens: 10_000, perShard: new Map([[0, 10_000]]) },
      { minute: T0 / 60_000 + 1, tokens: 10_000, perShard: new Map([[0, 10_000]]) },
    ],
    serverTtft: Array.from({ length: 100 }, (_, i) => 40 + (i % 10)),
    e2eTtft: Array.from({ length: 100 }, (_, i) => 45 + (i % 10)),
    e2eLatency: Array.from({ length: 100 }, () => 1000),
    tpot: Array.from({ length: 100 }, () => 5),
    serverQueueMs: [],
    ttftLoadInFlight: Array.from({ length: 100 }, (_, i) => 1 + (i % 16)),
    ttftLoadMs: Array.from({ length: 100 }, (_, i) => 40 + (i % 10)),
    connectMs: Array.from({ length: 16 }, () => 0.5),
    connsOpened: 16,
    loopLag: [1, 2, 3],
    loopBusy: [0.1],
    hostBusy: [0.3],
    cpuWait: [0],
    socketReads: 0,
    socketReadShards: 0,
    holdGauges: 0,
    heldGauges: 0,
    readHoldMaxMs: 0,
    shardCpuMs: 500,
    buckets: { ...zeroBuckets(), server_ttft: 4_500, decode: 95_000, connect: 8, queue_wait: 500 },
    limitMax: 16,
    maxInFlight: 16,
    inFlightIntegral: 16 * 100_000,
    backlogIntegral: 0,
    busyMs: 100_000,
    activeMs: 100_000,
    gapMs: 0,
    backloggedMs: 0,
    binMs: 1000,
    bins: [],
    limitSegments: [],
    badLines: 0,
    events: 700,
    byEndpoint: {},
    byUpstream: {},
    plainServerMs: [],
    slowest: [],
    recentErrors: [],
    ...over,
  };
}

const bin = (t: number, over: Partial<Bin> = {}): Bin => ({
  t: T0 + t * 1000,
  backlog: 0,
  inFlight: 16,
  limit: 16,
  tokens: 150,
  retries: 0,
  conns: 0,
  ttft: [40],
  retryCauses: {},
  down: false,
  ...over,
});

describe('figures from facts', () => {
  it('counts requests, retries from first attempts, tokens per minute and percentiles', () => {
    const r = buildReport(
      facts({ attempts: 125, firstAttempts: 100, pausedAttempts: 5, retries: 20, retryCauses: { http_429: 20 } }),
    );
    expect(r.run_id).toBe('run-a');
    expect(r.window).toEqual({
      start: '2026-12-06T10:00:00.000Z',
      end: '2026-12-06T10:02:00.000Z',
      duration_s: 120,
      idle_s: 0,
    });
    expect(r.requests).toEqual({ total: 100, succeeded: 100, failed: 0, success_rate: 1 });
    // 125 attempts: 100 first tries, 5 after a pause for a down endpoint, 20 retries.
    expect(r.retries).toMatchObject({ count: 20, rate: 20 / 125, per_request: 0.2 });
    expect(r.tpm.run_average).toBeCloseTo(10_000);
    expect(r.ttft_ms.server.p50).toBe(44);
    expect(r.ttft_ms.server.p99).toBe(49);
    expect(r.detail.server_ttft_floor_ms).toBe(40);
    expect(r.utilization).toMatchObject({ limit: 16, mean_in_flight: 16, busy_fraction: 1, admission_gap_s: 0 });
    expect(r.connections.per_request).toBe(0.16);
    expect(r.client_cpu.us_per_request).toBe(4000);
    expect(r.client_cpu.us_per_completion_token).toBe(25);
    expect(r.outages).toEqual({ count: 0, down_s: 0, paused_attempts: 5 });
  });

  it('groups time by the limit in force, leaving out stretches the endpoint was down', () => {
    const seg = (s: number, limit: number, tokens: number, ttft: number[] = []) => ({
      t: T0 + s * 1000,
      limit,
      tokens,
      ttft,
    });
    const r = buildReport(
      facts({
        endMs: T0 + 3_500,
        limitSegments: [seg(0, 4, 240, [30, 32, 34]), seg(2, 8, 300, [60, 80]), seg(3, 0, 0), seg(3.25, 6, 50, [90])],
        bins: [bin(0), bin(1), bin(2), bin(3, { down: true })],
      }),
    );
    expect(r.detail.by_limit).toEqual([
      { limit: 4, seconds: 2, tpm: 7200, ttft_p50: 32, ttft_p95: 34 },
      // The last level, held for the run's last quarter second, is a row too.
      { limit: 6, seconds: 0.25, tpm: 12_000, ttft_p50: 90, ttft_p95: 90 },
      { limit: 8, seconds: 1, tpm: 18_000, ttft_p50: 60, ttft_p95: 80 },
    ]);
    // The per-second timeline is the bins' (their own limits are not what by_limit reads).
    expect(r.utilization.timeline).toHaveLength(4);
  });

  it('reads server TTFT at low and high load from the in-flight count each attempt started with', () => {
    const n = 40;
    const r = buildReport(
      facts({
        ttftLoadInFlight: Array.from({ length: n }, (_, i) => i),
        ttftLoadMs: Array.from({ length: n }, (_, i) => (i < 10 ? 50 : i >= 30 ? 400 : 100)),
      }),
    );
    expect(r.detail.server_ttft_by_load).toEqual({ low_p50: 50, high_p50: 400 });
  });
});

describe('the verdict from facts', () => {
  const modes = (f: RunFacts) => buildReport(f).verdict.findings.map((x) => x.mode);

  it('calls a run whose time is decode healthy, with decode dominant', () => {
    const v = buildReport(facts()).verdict;
    expect(v).toMatchObject({ bound: 'healthy', dominant: 'decode' });
    expect(v.findings).toEqual([]);
  });

  it('calls a run where nothing succeeded refused, with only the errors finding', () => {
    const v = buildReport(
      facts({
        succeeded: 0,
        failed: 100,
        failureCauses: { http_4xx: 100 },
        attemptErrorStatuses: { 401: 100 },
        completionTokens: 0,
      }),
    ).verdict;
    expect(v.bound).toBe('refused');
    expect(v.findings.map((f) => f.mode)).toEqual(['errors']);
    expect(v.findings[0]!.evidence).toMatch(/100 of 100 requests failed \(100%\): http_4xx 100 \(mostly HTTP 401\)/);
  });

  it('finds a retry loop by its rate or by the time it took', () => {
    expect(modes(facts({ attempts: 130, retries: 30, retryCauses: { http_5xx: 30 } }))).toContain('retry_loop');
    const slowRetries = facts({
      buckets: { ...zeroBuckets(), decode: 60_000, retry_backoff: 30_000, failed_attempts: 5_000 },
    });
    expect(modes(slowRetries)).toContain('retry_loop');
    expect(modes(facts({ attempts: 105, retries: 5 }))).not.toContain('retry_loop');
  });

  it('rates connection churn by what connecting cost', () => {
    const cheap = facts({ connsOpened: 100, buckets: { ...zeroBuckets(), decode: 99_000, connect: 100 } });
    const cheapFinding = buildReport(cheap).verdict.findings.find((f) => f.mode === 'connection_churn')!;
    expect(cheapFinding.severity).toBe('low');
    expect(cheapFinding.action).toMatch(/nothing to change/);
    const costly = facts({ connsOpened: 100, buckets: { ...zeroBuckets(), decode: 60_000, connect: 20_000 } });
    expect(buildReport(costly).verdict.findings.find((f) => f.mode === 'connection_churn')!.severity).toBe('high');
    const asked = facts({
      connsOpened: 100,
      keepaliveDisabledShards: 1,
      buckets: { ...zeroBuckets(), decode: 90_000, connect: 5_000 },
    });
    expect(buildReport(asked).verdict.findings.find((f) => f.mode === 'connection_churn')!.action).toMatch(
      /^drop --no-keep-alive/,
    );
  });

  it('puts an outage down to the endpoint, not to admission gaps', () => {
    const r = buildReport(
      facts({
        outages: 1,
        downMs: 30_000,
        pausedAttempts: 12,
        buckets: { ...zeroBuckets(), decode: 50_000, endpoint_down: 60_000 },
      }),
    );
    expect(r.verdict.findings.map((f) => f.mode)).toContain('endpoint_down');
    expect(r.verdict.findings.map((f) => f.mode)).not.toContain('admission_gap');
    expect(r.outages).toEqual({ count: 1, down_s: 30, paused_attempts: 12 });
  });
});

describe('the terminal report', () => {
  it('prints the verdict, the figures and the buckets from the report', () => {
    const text = formatReport(buildReport(facts({ failed: 2, succeeded: 98, failureCauses: { timeout_total: 2 } })));
    expect(text).toMatch(/^shardline report — run run-a {2}2026-12-06T10:00:00.000Z → 2026-12-06T10:02:00.000Z/);
    expect(text).toContain('requests    100 total, 98 succeeded, 2 failed (success rate 98.00%)');
    expect(text).toContain('tokens      20,000 completion, 5,000 prompt');
    expect(text).toMatch(/decode/);
    expect(text).toMatch(/errors/);
  });
});
