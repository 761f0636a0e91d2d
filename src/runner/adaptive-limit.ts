/** Why an adaptive limit changed (the `limit` event's `reason`). */
export type LimitReason = 'probe' | 'ttft_gradient' | 'overload';

export interface LimitChange {
  old: number;
  new: number;
  reason: LimitReason;
}

export interface AdaptiveLimitOptions {
  min: number;
  max: number;
  start: number;
  /** Server TTFT may grow to this multiple of its low-load floor before the limit comes down. @default 1.5 */
  tolerance?: number;
}

/** Causes that say the server is over its capacity, whatever TTFT says: cut the limit at once. */
const OVERLOAD_CAUSES = new Set(['http_429', 'http_5xx', 'timeout_ttft', 'timeout_idle', 'timeout_total']);
/** A round is this long at least, so a handful of fast answers does not move the limit. */
const MIN_ROUND_MS = 100;
/** A round ends after this many attempts at most, so a high limit is cut within seconds. */
const MAX_ROUND_SAMPLES = 32;
/** Multiplicative decrease on overload. */
const BACKOFF_RATIO = 0.7;
/** Weight of a new target when the limit comes down near the knee (gradual, as the signal is noisy). */
const SMOOTHING = 0.2;
/** Below this mean/floor ratio the server is clearly idle: grow by √limit a round, else by 1. */
const GROW_FAST_RATIO = 1.25;

/**
 * `--concurrency auto`: an in-flight limit driven by server TTFT, in the manner of Netflix's
 * Gradient2 and Envoy's adaptive concurrency, for LLM servers where TTFT (not e2e latency, which
 * grows with the answer's length) is what queueing inflates.
 *
 * A round is `limit` finished attempts (at most 32, and at least 100 ms). The floor is the lowest server TTFT seen,
 * which the first requests of a run set, finding the server idle. Per round:
 * - any 429, 5xx or timeout: the limit × 0.7 (`overload`);
 * - else, with the round's mean TTFT over `tolerance` × the floor (`ttft_gradient`): the target is
 *   limit × tolerance × floor / mean (at least half) + √limit, reached at once when the mean is over
 *   twice that bound (deep in the server's queue), else a fifth of the way. Past the server's batch
 *   size the excess requests wait in its queue and the mean climbs steeply, so the limit settles
 *   just above the knee;
 * - else, if in-flight reached the limit, it grows: by √limit while the mean is within 1.25 × the
 *   floor, by 1 closer to the bound (`probe`).
 * The mean, not a percentile: a few requests queued behind a full batch barely move the median.
 */
export class AdaptiveLimit {
  private current: number;
  private floorMs = Infinity;
  private ttftSum = 0;
  private ttftCount = 0;
  private finished = 0;
  private overloaded = false;
  private peakInFlight = 0;
  private roundStartMs: number;
  private readonly tolerance: number;

  constructor(
    private readonly o: AdaptiveLimitOptions,
    nowMs: number,
  ) {
    this.current = clamp(o.start, o.min, o.max);
    this.tolerance = o.tolerance ?? 1.5;
    this.roundStartMs = nowMs;
  }

  get limit(): number {
    return this.current;
  }

  /** An attempt started with `inFlight` attempts open (itself included). */
  noteStart(inFlight: number): void {
    if (inFlight > this.peakInFlight) this.peakInFlight = inFlight;
  }

  /**
   * An attempt that started at `startMs` finished: its server TTFT (ms) when it produced a first
   * token, and its cause when it failed. Returns the change when this ends a round that moves the
   * limit. Attempts started before the round began are left out: they ran under the old limit, and
   * counting them would cut a limit again for a queue the last cut already drains.
   */
  noteEnd(startMs: number, ttftMs: number | undefined, cause: string | undefined, nowMs: number): LimitChange | undefined {
    if (startMs < this.roundStartMs) return undefined;
    this.finished++;
    if (ttftMs !== undefined) {
      this.ttftSum += ttftMs;
      this.ttftCount++;
      if (ttftMs < this.floorMs) this.floorMs = ttftMs;
    }
    if (cause !== undefined && OVERLOAD_CAUSES.has(cause)) this.overloaded = true;
    if (this.finished < Math.min(this.current, MAX_ROUND_SAMPLES) || nowMs - this.roundStartMs < MIN_ROUND_MS) return undefined;
    return this.endRound(nowMs);
  }

  private endRound(nowMs: number): LimitChange | undefined {
    const old = this.current;
    const used = this.peakInFlight >= old;
    let next = old;
    let reason: LimitReason = 'probe';
    if (this.overloaded) {
      next = old * BACKOFF_RATIO;
      reason = 'overload';
    } else if (this.ttftCount > 0) {
      const ratio = this.ttftSum / this.ttftCount / this.floorMs;
      if (ratio > this.tolerance) {
        const target = old * Math.max(0.5, this.tolerance / ratio) + Math.sqrt(old);
        // Deep in the server's queue, go straight to the target; near the knee, a fifth of the way.
        next = ratio > 2 * this.tolerance ? target : old * (1 - SMOOTHING) + SMOOTHING * target;
        reason = 'ttft_gradient';
      } else if (used) next = old + (ratio < GROW_FAST_RATIO ? Math.sqrt(old) : 1);
    }
    this.finished = 0;
    this.ttftSum = 0;
    this.ttftCount = 0;
    this.overloaded = false;
    this.peakInFlight = 0;
    this.roundStartMs = nowMs;
    this.current = clamp(Math.round(next), this.o.min, this.o.max);
    return this.current === old ? undefined : { old, new: this.current, reason };
  }
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, x));
}
