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
 * An attempt waited in the server's queue when its TTFT is over 3 × the floor and over the floor plus
 * a fifth of the round's mean attempt duration: a queued request waits for a running one to finish,
 * so its wait is on the scale of whole answers, while a long prompt's extra prefill is not.
 */
const QUEUED_FLOOR_FACTOR = 3;
const QUEUED_E2E_SHARE = 0.2;
/**
 * A TTFT rise smaller than this is no gradient: a few ms, or two decode steps (a request admitted
 * mid-step waits for the step to end). Without it, against a server answering in 4-7 ms, every
 * small rise read as a steep gradient and the limit fell from 16 to 1 (llama-server, 4 slots).
 */
const ABS_SLACK_MS = 5;
const TPOT_SLACK = 2;
/** Clean rounds at a known knee before probing one past it; doubled after each probe that queued. */
const HOLD_ROUNDS_MIN = 4;
const HOLD_ROUNDS_MAX = 32;

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
 * - else, when some attempts waited in the server's queue (TTFT far above the floor, see
 *   QUEUED_FLOOR_FACTOR), the limit was past the server's batch size by their share of the round's
 *   answers times the limit: it comes down by that (`ttft_gradient`), and that level becomes the known
 *   knee (a probe past it that holds clean for 4 rounds moves the knee up) (at or below a known
 *   knee it takes two such answers in a round: one is noise);
 * - at or below a known knee, a slow round (a gradient or queued answers) right after a clean one
 *   moves nothing: it must be slow again the next round (one round of it is a stall of the client
 *   or the machine);
 * - else, if in-flight reached the limit, it grows: by √limit while the mean is within 1.25 × the
 *   floor, by 1 closer to the bound (`probe`); never past the known knee until it has held there for
 *   4 clean rounds (8, 16, … 32 after each probe that queued), so the few requests a probe sends into
 *   the server's queue stay well under 1% and TTFT p99 stays at the knee's.
 * TTFT rises smaller than a few ms or two decode steps count as none (ABS_SLACK_MS).
 * The mean, not a percentile, for the gradient: a few requests queued behind a full batch barely
 * move the median, and the queued count catches those.
 */
export class AdaptiveLimit {
  private current: number;
  private floorMs = Infinity;
  private ttftSum = 0;
  private ttftCount = 0;
  private e2eSum = 0;
  private tpotSum = 0;
  private tpotCount = 0;
  /** This round's TTFTs, to count the queued ones once the round's mean duration is known. */
  private readonly ttfts: number[] = [];
  /** This round's server-reported queue times (attempt_end.server_queue_ms), where the server sends timings. */
  private readonly serverQueues: number[] = [];
  /** The highest level that ran without queueing before a level above it queued. */
  private kneeLimit = Infinity;
  private holdRounds = HOLD_ROUNDS_MIN;
  private cleanRounds = 0;
  /** The last round was neither slow nor overloaded: a slow round after it may be a stall. */
  private cleanLastRound = false;
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
  noteEnd(
    startMs: number,
    ttftMs: number | undefined,
    cause: string | undefined,
    nowMs: number,
    tpotMs?: number,
    serverQueueMs?: number,
  ): LimitChange | undefined {
    if (startMs < this.roundStartMs) return undefined;
    this.finished++;
    if (serverQueueMs !== undefined) this.serverQueues.push(serverQueueMs);
    this.e2eSum += nowMs - startMs;
    if (tpotMs !== undefined && tpotMs > 0) {
      this.tpotSum += tpotMs;
      this.tpotCount++;
    }
    if (ttftMs !== undefined) {
      this.ttftSum += ttftMs;
      this.ttftCount++;
      this.ttfts.push(ttftMs);
      if (ttftMs < this.floorMs) this.floorMs = ttftMs;
    }
    if (cause !== undefined && OVERLOAD_CAUSES.has(cause)) this.overloaded = true;
    // A probe past the known knee ends at its first queued answer: every further one costs TTFT p99.
    const probeQueued = this.current > this.kneeLimit && ttftMs !== undefined && ttftMs > this.queuedBoundMs();
    if (
      !probeQueued &&
      (this.finished < Math.min(this.current, MAX_ROUND_SAMPLES) || nowMs - this.roundStartMs < MIN_ROUND_MS)
    )
      return undefined;
    return this.endRound(nowMs, probeQueued);
  }

  private endRound(nowMs: number, probeQueued: boolean): LimitChange | undefined {
    const old = this.current;
    const used = this.peakInFlight >= old;
    let next = old;
    let cleanNow = false;
    let reason: LimitReason = 'probe';
    if (probeQueued && !this.overloaded) {
      // Back to the knee; the mean of a round cut this short says nothing.
      next = this.kneeLimit;
      reason = 'ttft_gradient';
      this.holdRounds = Math.min(HOLD_ROUNDS_MAX, this.holdRounds * 2);
      this.cleanRounds = 0;
    } else if (this.overloaded) {
      next = old * BACKOFF_RATIO;
      reason = 'overload';
    } else if (this.ttftCount > 0) {
      // The mean over the floor, less a rise too small to be a queue (see ABS_SLACK_MS).
      const ratio = Math.max(1, (this.ttftSum / this.ttftCount - this.slackMs()) / this.floorMs);
      const queued = this.queuedCount();
      const slow = ratio > this.tolerance || queued > 1;
      cleanNow = !slow;
      if (slow && this.kneeLimit !== Infinity && old <= this.kneeLimit && this.cleanLastRound) {
        // At or below the known knee, after a clean round, a slowdown must show in two rounds running: a
        // stall of the client or the machine (a GC pause, a CPU taken by other work) slows every answer in
        // flight at once, for one round. Cut on each, a knee of 12 settled at 7 (a test suite's other files
        // busy beside it). A knee that really moved is as slow the next round, and is cut as below then;
        // a limit still coming down (no clean round since the last cut) is cut at once.
      } else if (ratio > 2 * this.tolerance) {
        // Deep in the server's queue: straight to the gradient's target.
        next = old * Math.max(0.5, this.tolerance / ratio) + Math.sqrt(old);
        reason = 'ttft_gradient';
      } else if (queued > 1 || (queued === 1 && (this.kneeLimit === Infinity || old > this.kneeLimit))) {
        // At or below the known knee one slow answer is noise (a long prompt, a loop hiccup): against
        // llama-server single outliers walked the limit from its knee of 4 down to 1.
        // A round can outlast the limit, and the same excess slot then queues more than one answer:
        // the excess is the queued share of the round's answers times the limit (at least 1).
        next = Math.max(old - Math.max(1, Math.round((old * queued) / this.finished)), old * 0.5);
        reason = 'ttft_gradient';
        if (old > this.kneeLimit) this.holdRounds = Math.min(HOLD_ROUNDS_MAX, this.holdRounds * 2);
        this.kneeLimit = Math.round(next);
        this.cleanRounds = 0;
      } else if (ratio > this.tolerance) {
        // Slower everywhere without a queue (longer prompts, a busier server): a fifth of the way.
        const target = old * (this.tolerance / ratio) + Math.sqrt(old);
        next = old * (1 - SMOOTHING) + SMOOTHING * target;
        reason = 'ttft_gradient';
      } else if (used) {
        this.cleanRounds++;
        // A probe past the known knee that held clean for as long as a knee must before probing:
        // it found room, the knee is here now. (After one clean round it would be a knee any time
        // the one request over the server's slots happened to wait briefly.)
        if (old > this.kneeLimit && this.cleanRounds >= HOLD_ROUNDS_MIN) this.kneeLimit = old;
        const grown = old + (ratio < GROW_FAST_RATIO ? Math.sqrt(old) : 1);
        if (old < this.kneeLimit) next = Math.min(grown, this.kneeLimit);
        else if (this.cleanRounds >= this.holdRounds) {
          next = old + 1;
          this.cleanRounds = 0;
        }
      }
    }
    this.cleanLastRound = cleanNow;
    this.finished = 0;
    this.ttftSum = 0;
    this.ttftCount = 0;
    this.e2eSum = 0;
    this.tpotSum = 0;
    this.tpotCount = 0;
    this.ttfts.length = 0;
    this.serverQueues.length = 0;
    this.overloaded = false;
    this.peakInFlight = 0;
    this.roundStartMs = nowMs;
    this.current = clamp(Math.round(next), this.o.min, this.o.max);
    return this.current === old ? undefined : { old, new: this.current, reason };
  }

  private queuedBoundMs(): number {
    return (
      Math.max(QUEUED_FLOOR_FACTOR * this.floorMs, this.floorMs + (QUEUED_E2E_SHARE * this.e2eSum) / this.finished) +
      this.slackMs()
    );
  }

  private slackMs(): number {
    return Math.max(ABS_SLACK_MS, this.tpotCount > 0 ? (TPOT_SLACK * this.tpotSum) / this.tpotCount : 0);
  }

  private queuedCount(): number {
    // A server that reports its own timings (llama-server) says how long each request waited before
    // it started on it: no floor to estimate. A run that starts above the knee never sees an idle
    // server, and a floor taken from contended answers hid a queue of a whole answer per request.
    if (this.serverQueues.length > 0 && this.serverQueues.length >= this.ttfts.length / 2) {
      const bound = Math.max(this.slackMs(), (QUEUED_E2E_SHARE * this.e2eSum) / this.finished);
      let n = 0;
      for (const q of this.serverQueues) if (q > bound) n++;
      return n;
    }
    const bound = this.queuedBoundMs();
    let n = 0;
    for (const t of this.ttfts) if (t > bound) n++;
    return n;
  }
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, x));
}
