import type { Cause } from '../events/event-types.js';

/** Whether a failed attempt may be retried: network errors, timeouts, 408, 429 and 5xx. */
export function isRetryable(cause: Cause, status?: number): boolean {
  if (cause === 'http_4xx') return status === 408;
  return true;
}

/**
 * Exponential backoff with full jitter: uniform in [0, min(cap, base × 2^(attempt−1))), where
 * `attempt` is the 1-based attempt that just failed and `u` a uniform draw in [0, 1).
 */
export function fullJitterBackoffMs(attempt: number, baseMs: number, capMs: number, u: number): number {
  return u * Math.min(capMs, baseMs * 2 ** (attempt - 1));
}

/**
 * Caps retries at `ratio` of attempts over a sliding window (plus `minRetries` always allowed), so
 * a failing endpoint is not hammered by a retry storm. Counts live in one-second buckets.
 */
export class RetryBudget {
  private readonly attempts: Float64Array;
  private readonly retries: Float64Array;
  private readonly stamps: Float64Array;

  constructor(
    private readonly ratio: number,
    windowMs: number,
    private readonly minRetries: number,
  ) {
    const n = Math.max(1, Math.ceil(windowMs / 1000));
    this.attempts = new Float64Array(n);
    this.retries = new Float64Array(n);
    this.stamps = new Float64Array(n).fill(-1);
  }

  /** Record an attempt as it starts (first tries and retries alike). */
  recordAttempt(nowMs: number): void {
    this.attempts[this.bucket(nowMs)]!++;
  }

  /**
   * Record a granted retry when it is decided, not when it starts: failures that arrive together
   * would otherwise all see an unspent budget.
   */
  recordRetry(nowMs: number): void {
    this.retries[this.bucket(nowMs)]!++;
  }

  /** Whether one more retry stays within budget now. */
  canRetry(nowMs: number): boolean {
    let attempts = 0;
    let retries = 0;
    const second = Math.floor(nowMs / 1000);
    for (let i = 0; i < this.stamps.length; i++) {
      if (this.stamps[i]! > second - this.stamps.length) {
        attempts += this.attempts[i]!;
        retries += this.retries[i]!;
      }
    }
    return retries + 1 <= this.minRetries + this.ratio * attempts;
  }

  private bucket(nowMs: number): number {
    const second = Math.floor(nowMs / 1000);
    const i = second % this.stamps.length;
    if (this.stamps[i] !== second) {
      this.stamps[i] = second;
      this.attempts[i] = 0;
      this.retries[i] = 0;
    }
    return i;
  }
}

export interface RetryDecisionInput {
  attempt: number;
  cause: Cause;
  status?: number | undefined;
  retryAfterMs?: number | undefined;
  nowMs: number;
}

/** `retryAfterTooLongMs`: not retried because the server asked to wait this long, over `retryAfterMaxMs`. */
export type RetryDecision =
  { retry: false; retryAfterTooLongMs?: number } | { retry: true; delayMs: number; budgetExhausted: boolean };

export interface RetryPolicyOptions {
  maxAttempts: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  budget: RetryBudget;
  random: () => number;
  /** The naive loop some clients run: always `backoffBaseMs`, no jitter, no budget, Retry-After ignored. */
  fixed?: boolean;
  /**
   * The longest server `Retry-After` honoured; a longer one (a spent daily quota, say) fails the
   * request instead of parking it for hours. @default Infinity
   */
  retryAfterMaxMs?: number;
}

/**
 * Decide whether and when to retry. Delay = full-jitter backoff, or the cap when the retry budget is
 * spent; a longer server `Retry-After` wins, up to `retryAfterMaxMs`, past which there is no retry.
 */
export function decideRetry(input: RetryDecisionInput, policy: RetryPolicyOptions): RetryDecision {
  if (!isRetryable(input.cause, input.status) || input.attempt >= policy.maxAttempts) return { retry: false };
  if (policy.fixed) return { retry: true, delayMs: policy.backoffBaseMs, budgetExhausted: false };
  if (input.retryAfterMs !== undefined && input.retryAfterMs > (policy.retryAfterMaxMs ?? Infinity))
    return { retry: false, retryAfterTooLongMs: input.retryAfterMs };
  const budgetExhausted = !policy.budget.canRetry(input.nowMs);
  if (!budgetExhausted) policy.budget.recordRetry(input.nowMs);
  let delayMs = budgetExhausted
    ? policy.backoffCapMs
    : fullJitterBackoffMs(input.attempt, policy.backoffBaseMs, policy.backoffCapMs, policy.random());
  if (input.retryAfterMs !== undefined && input.retryAfterMs > delayMs) delayMs = input.retryAfterMs;
  return { retry: true, delayMs, budgetExhausted };
}

/** Parse `retry-after-ms` (ms) or `Retry-After` (seconds or an HTTP date) into ms. */
export function parseRetryAfterMs(
  headers: Record<string, string | string[] | undefined>,
  nowEpochMs: number,
): number | undefined {
  const ms = first(headers['retry-after-ms']);
  if (ms !== undefined && /^\d+(\.\d+)?$/.test(ms)) return Number(ms);
  const ra = first(headers['retry-after']);
  if (ra === undefined) return undefined;
  if (/^\d+(\.\d+)?$/.test(ra)) return Number(ra) * 1000;
  const date = Date.parse(ra);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowEpochMs);
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
