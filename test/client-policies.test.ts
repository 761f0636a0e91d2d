import { describe, expect, it, vi } from 'vitest';
import { EndpointHealth } from '../src/client/endpoint-health.js';
import { causeOfError, causeOfStatus, PhaseTimeoutError } from '../src/client/error-cause.js';
import {
  decideRetry,
  fullJitterBackoffMs,
  isRetryable,
  parseRetryAfterMs,
  RetryBudget,
  type RetryPolicyOptions,
} from '../src/client/retry-policy.js';
import { createRedactor, headerSecrets } from '../src/client/redact.js';
import { CAUSES } from '../src/events/event-types.js';
import { ProbeGate } from '../src/runner/shard/probe-gate.js';

// The client's pure rules, each against hand-computed cases: which failures retry and after how
// long, what an error means, and when an endpoint counts as down.

describe('retry policy', () => {
  it('retries network errors, timeouts, 408, 429 and 5xx, and no other 4xx', () => {
    for (const cause of CAUSES.filter((c) => c !== 'http_4xx')) expect(isRetryable(cause), cause).toBe(true);
    expect(isRetryable('http_4xx', 408)).toBe(true);
    for (const status of [400, 401, 403, 404, 422]) expect(isRetryable('http_4xx', status)).toBe(false);
  });

  it('draws full-jitter backoff uniformly below min(cap, base × 2^(attempt−1))', () => {
    expect(fullJitterBackoffMs(1, 1000, 30_000, 0.5)).toBe(500);
    expect(fullJitterBackoffMs(3, 1000, 30_000, 0.5)).toBe(2000);
    expect(fullJitterBackoffMs(10, 1000, 30_000, 0.999)).toBeCloseTo(29_970);
    expect(fullJitterBackoffMs(4, 1000, 30_000, 0)).toBe(0);
    // The mean over many uniform draws is half the ceiling.
    let sum = 0;
    for (let i = 0; i < 10_000; i++) sum += fullJitterBackoffMs(3, 100, 10_000, (i + 0.5) / 10_000);
    expect(sum / 10_000).toBeCloseTo(200, 5);
  });

  it('keeps retries within ratio × attempts plus the minimum, over a sliding window', () => {
    const b = new RetryBudget(0.2, 10_000, 2);
    for (let i = 0; i < 10; i++) b.recordAttempt(1000);
    // 0.2 × 10 + 2 = 4 retries allowed.
    for (let i = 0; i < 4; i++) {
      expect(b.canRetry(1000), `retry ${i + 1}`).toBe(true);
      b.recordRetry(1000);
    }
    expect(b.canRetry(1000)).toBe(false);
    // Ten seconds on, the window has forgotten them.
    expect(b.canRetry(11_500)).toBe(true);
    const none = new RetryBudget(0, 1000, 0);
    none.recordAttempt(0);
    expect(none.canRetry(0)).toBe(false);
  });

  const policy = (over: Partial<RetryPolicyOptions> = {}): RetryPolicyOptions => ({
    maxAttempts: 5,
    backoffBaseMs: 1000,
    backoffCapMs: 30_000,
    budget: new RetryBudget(1, 30_000, 100),
    random: () => 0.5,
    ...over,
  });

  it('decides: jittered backoff, the cap once the budget is spent, Retry-After up to its maximum', () => {
    expect(decideRetry({ attempt: 2, cause: 'http_5xx', nowMs: 0 }, policy())).toEqual({
      retry: true,
      delayMs: 1000,
      budgetExhausted: false,
    });
    expect(decideRetry({ attempt: 5, cause: 'http_5xx', nowMs: 0 }, policy())).toEqual({ retry: false });
    expect(decideRetry({ attempt: 1, cause: 'http_4xx', status: 401, nowMs: 0 }, policy())).toEqual({ retry: false });
    const spent = new RetryBudget(0, 30_000, 0);
    expect(decideRetry({ attempt: 1, cause: 'timeout_ttft', nowMs: 0 }, policy({ budget: spent }))).toEqual({
      retry: true,
      delayMs: 30_000,
      budgetExhausted: true,
    });
    // A longer Retry-After wins over the backoff; one past the maximum fails at once, saying why.
    expect(decideRetry({ attempt: 1, cause: 'http_429', retryAfterMs: 7000, nowMs: 0 }, policy())).toMatchObject({
      delayMs: 7000,
    });
    expect(
      decideRetry(
        { attempt: 1, cause: 'http_429', retryAfterMs: 3_600_000, nowMs: 0 },
        policy({ retryAfterMaxMs: 300_000 }),
      ),
    ).toEqual({ retry: false, retryAfterTooLongMs: 3_600_000 });
  });

  it('in fixed mode waits the base delay always: no jitter, no budget, Retry-After ignored', () => {
    const spent = new RetryBudget(0, 30_000, 0);
    const fixed = policy({ fixed: true, budget: spent, random: () => 0.01 });
    for (const attempt of [1, 2, 4])
      expect(decideRetry({ attempt, cause: 'http_429', retryAfterMs: 60_000, nowMs: 0 }, fixed)).toEqual({
        retry: true,
        delayMs: 1000,
        budgetExhausted: false,
      });
  });

  it('reads retry-after-ms, Retry-After in seconds, and Retry-After as an HTTP date', () => {
    const now = Date.parse('2026-12-06T10:00:00Z');
    expect(parseRetryAfterMs({ 'retry-after-ms': '250' }, now)).toBe(250);
    expect(parseRetryAfterMs({ 'retry-after': '2.5' }, now)).toBe(2500);
    expect(parseRetryAfterMs({ 'retry-after': ['3', '9'] }, now)).toBe(3000);
    expect(parseRetryAfterMs({ 'retry-after': 'Sun, 06 Dec 2026 10:00:30 GMT' }, now)).toBe(30_000);
    expect(parseRetryAfterMs({ 'retry-after': 'Sun, 06 Dec 2026 09:00:00 GMT' }, now)).toBe(0);
    expect(parseRetryAfterMs({ 'retry-after': 'soon' }, now)).toBeUndefined();
    expect(parseRetryAfterMs({}, now)).toBeUndefined();
  });
});

describe('error causes', () => {
  it('maps statuses', () => {
    expect([429, 500, 503, 400, 404, 302].map(causeOfStatus)).toEqual([
      'http_429',
      'http_5xx',
      'http_5xx',
      'http_4xx',
      'http_4xx',
      'protocol_error',
    ]);
  });

  it('maps Node and undici error codes, also when wrapped as a cause', () => {
    const cases: [string, string][] = [
      ['ECONNREFUSED', 'conn_refused'],
      ['ENOTFOUND', 'conn_refused'],
      ['ECONNRESET', 'conn_reset'],
      ['UND_ERR_SOCKET', 'conn_reset'],
      ['UND_ERR_CONNECT_TIMEOUT', 'timeout_connect'],
      ['DEPTH_ZERO_SELF_SIGNED_CERT', 'conn_refused'],
      ['UND_ERR_HEADERS_TIMEOUT', 'timeout_ttft'],
      ['UND_ERR_BODY_TIMEOUT', 'timeout_idle'],
      ['SOMETHING_NEW', 'protocol_error'],
    ];
    for (const [code, cause] of cases) {
      expect(causeOfError(Object.assign(new Error(code), { code })), code).toBe(cause);
      expect(causeOfError(new Error('fetch failed', { cause: { code } })), `wrapped ${code}`).toBe(cause);
    }
    expect(causeOfError(new PhaseTimeoutError('timeout_idle', 30_000))).toBe('timeout_idle');
    expect(new PhaseTimeoutError('timeout_ttft', 120_000).message).toBe('ttft timeout after 120000 ms');
    expect(causeOfError(null)).toBe('protocol_error');
  });
});

describe('secrets in text', () => {
  it('scrubs header values and bearer tokens, longest first, but not short words', () => {
    const secrets = headerSecrets({
      authorization: 'Bearer sk-abcdefgh12345678',
      'x-api-key': 'key-0123456789',
      'content-type': 'application/json',
      'x-short': 'abc',
    });
    expect(secrets).toEqual(['Bearer sk-abcdefgh12345678', 'sk-abcdefgh12345678', 'key-0123456789', 'abc']);
    const redact = createRedactor(secrets);
    expect(redact('bad key sk-abcdefgh12345678 (Bearer sk-abcdefgh12345678), key-0123456789; abc')).toBe(
      'bad key [redacted] ([redacted]), [redacted]; abc',
    );
    expect(createRedactor([])('nothing to hide')).toBe('nothing to hide');
  });
});

describe('endpoint health', () => {
  it('opens on a refused connection only after the endpoint has answered once', () => {
    const h = new EndpointHealth(600_000);
    expect(h.noteFailure('conn_refused', undefined, 0)).toBe('counts');
    expect(h.noteStatus(200)).toBe(false);
    expect(h.noteFailure('conn_refused', undefined, 10)).toBe('opened');
    expect([h.down, h.downSinceTs]).toEqual([true, 10]);
    expect(h.noteFailure('conn_refused', undefined, 20)).toBe('held');
    // Any answer but a down-status ends the outage.
    expect(h.noteStatus(503)).toBe(false);
    expect(h.noteStatus(429)).toBe(true);
    expect(h.down).toBe(false);
  });

  it('opens after three 502/503/504 in a row, and not when another answer comes between', () => {
    const h = new EndpointHealth(600_000);
    h.noteStatus(200);
    expect(h.noteFailure('http_5xx', 503, 1)).toBe('counts');
    expect(h.noteFailure('http_5xx', 502, 2)).toBe('counts');
    h.noteStatus(500);
    expect(h.noteFailure('http_5xx', 500, 3)).toBe('counts');
    expect(h.noteFailure('http_5xx', 504, 4)).toBe('counts');
    expect(h.noteFailure('http_5xx', 503, 5)).toBe('counts');
    expect(h.noteFailure('http_5xx', 503, 6)).toBe('opened');
  });

  it('gives up past its longest pause, and probes at 250 ms doubling to 1 s', () => {
    const h = new EndpointHealth(5000);
    h.noteStatus(200);
    h.noteFailure('conn_refused', undefined, 0);
    expect([h.nextProbeDelayMs(), h.nextProbeDelayMs(), h.nextProbeDelayMs(), h.nextProbeDelayMs()]).toEqual([
      250, 500, 1000, 1000,
    ]);
    expect(h.noteFailure('conn_refused', undefined, 4999)).toBe('held');
    expect(h.noteFailure('conn_refused', undefined, 5000)).toBe('gave_up');
    expect(h.down).toBe(false);
    // Having given up, it waits to see the endpoint answer again before it pauses anew.
    expect(h.noteFailure('conn_refused', undefined, 6000)).toBe('counts');
  });
});

describe('probe gate', () => {
  it('admits everything while up, then one probe at a time once one is due', () => {
    vi.useFakeTimers();
    try {
      let due = 0;
      const gate = new ProbeGate(600_000, () => due++);
      expect(gate.admit('a')).toBe(true);
      gate.noteStatus(200);
      expect(gate.noteFailure('conn_refused', undefined, 0)).toBe('opened');
      expect(gate.admit('b')).toBe(false);
      vi.advanceTimersByTime(249);
      expect(due).toBe(0);
      vi.advanceTimersByTime(1);
      expect(due).toBe(1);
      expect(gate.admit('probe-1')).toBe(true);
      // One probe in flight: nothing else goes.
      expect(gate.admit('c')).toBe(false);
      gate.ended('probe-1');
      expect(gate.noteFailure('conn_refused', undefined, 300)).toBe('held');
      vi.advanceTimersByTime(500);
      expect(due).toBe(2);
      expect(gate.health.probes).toBe(1);
      expect(gate.admit('probe-2')).toBe(true);
      gate.ended('probe-2');
      expect(gate.noteStatus(200)).toBe(true);
      expect(gate.admit('d')).toBe(true);
      gate.stop();
    } finally {
      vi.useRealTimers();
    }
  });
});
