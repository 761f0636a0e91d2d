import { prefillMs, stepMs } from './capacity.js';
import type { SimProfile } from './profile-schema.js';
import type { Rng } from '../util/rng.js';

/** Sequences advanced per turn of the event loop within one decode step. */
const STEP_SLICE = 64;

/** Where a sequence's output goes; the HTTP layer implements it. */
export interface SequenceSink {
  /** `count` new tokens starting at index `from` were generated in this step. */
  tokens(seq: Sequence, from: number, count: number): void;
  /** All `maxTokens` tokens were generated. */
  finish(seq: Sequence): void;
  /** The reset fault fired after `seq.emitted` tokens. */
  reset(seq: Sequence): void;
  /** The stall fault fired: nothing more is sent for `seq.stallMs`. */
  stalled(seq: Sequence): void;
}

export interface Sequence {
  readonly promptTokens: number;
  readonly maxTokens: number;
  readonly sink: SequenceSink;
  readonly arrivalMs: number;
  /** See RequestTiming.ioTurnMs. */
  readonly ioTurnMs: number;
  emitted: number;
  /** Token index at which the connection is reset; -1 for none. */
  resetAt: number;
  /** Token index at which the stream stalls; -1 for none (or already stalled). */
  stallAt: number;
  stallMs: number;
  stalledUntil: number;
  cancelled: boolean;
  admittedMs: number;
  firstTokenMs: number;
}

/**
 * Continuous batching: `slots` sequences hold slots (prefill, then decode); the rest wait in a FIFO.
 * One step loop advances every decoding sequence by `tokens_per_step` per step; a step costs
 * step_ms_base + step_ms_per_seq × occupied slots. Steps are scheduled against an absolute clock so
 * timer slop does not erode throughput: average throughput matches `capacityTpm`.
 */
export class BatchEngine {
  private readonly queue: (Sequence | undefined)[] = [];
  private queueHead = 0;
  private readonly decoding: Sequence[] = [];
  private occupied = 0;
  private nextStepAt = 0;
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private timerIsImmediate = false;
  private closed = false;
  /** Completion tokens generated so far, across all sequences. */
  tokensGenerated = 0;
  /** Frontend work (request parsing, TLS) waiting to be taken out of the next decode step. */
  private stolenMs = 0;
  // The step in progress (it may span several turns of the event loop, see continueStep).
  private stepT = 0;
  private stepRead = 0;
  private stepWrite = 0;
  private stepReleased = 0;

  constructor(
    private readonly profile: SimProfile,
    private readonly rng: Rng,
    private readonly now: () => number,
  ) {}

  get queued(): number {
    return this.queue.length - this.queueHead;
  }
  get active(): number {
    return this.occupied;
  }
  /** Whether a new request would get a slot or a queue place. */
  canAccept(): boolean {
    return this.occupied < this.profile.slots || this.queued < this.profile.queue_limit;
  }

  submit(seq: Sequence): void {
    if (this.occupied < this.profile.slots) this.admit(seq);
    else this.queue.push(seq);
  }

  /**
   * Charge `ms` of frontend work to the decode loop: the next step takes that much longer. Dropped
   * while no sequence decodes (an idle GPU loses nothing to a busy frontend).
   */
  steal(ms: number): void {
    if (this.decoding.length > 0) this.stolenMs += ms;
  }

  /** The client went away: drop the sequence wherever it is. */
  cancel(seq: Sequence): void {
    seq.cancelled = true;
  }

  close(): void {
    this.closed = true;
    this.clearTimer();
  }

  private jittered(ms: number): number {
    const j = this.profile.jitter;
    return j === 0 ? ms : ms * (1 + j * (2 * this.rng() - 1));
  }

  private admit(seq: Sequence): void {
    this.occupied++;
    seq.admittedMs = this.now();
    const ms = this.jittered(prefillMs(this.profile, seq.promptTokens));
    // Prefill runs per sequence (one timer each); decode is batched (one timer for all).
    if (ms <= 0) this.startDecode(seq);
    else setTimeout(() => this.startDecode(seq), ms);
  }

  private startDecode(seq: Sequence): void {
    if (this.closed) return;
    if (seq.cancelled) return this.release();
    this.decoding.push(seq);
    if (this.timer === undefined) {
      this.nextStepAt = this.now() + this.jittered(stepMs(this.profile, this.occupied));
      this.schedule();
    }
  }

  private release(): void {
    this.occupied--;
    while (this.occupied < this.profile.slots && this.queued > 0) {
      const next = this.queue[this.queueHead];
      this.queue[this.queueHead++] = undefined;
      if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue.splice(0, this.queueHead);
        this.queueHead = 0;
      }
      if (next && !next.cancelled) this.admit(next);
    }
  }

  private schedule(): void {
    const delay = this.nextStepAt - this.now();
    if (delay < 1) {
      this.timerIsImmediate = true;
      this.timer = setImmediate(this.step);
    } else {
      this.timerIsImmediate = false;
      this.timer = setTimeout(this.step, delay);
    }
  }

  private clearTimer(): void {
    if (this.timer === undefined) return;
    if (this.timerIsImmediate) clearImmediate(this.timer as NodeJS.Immediate);
    else clearTimeout(this.timer as NodeJS.Timeout);
    this.timer = undefined;
  }

  private readonly step = (): void => {
    this.timer = undefined;
    if (this.closed) return;
    const t = this.now();
    if (t < this.nextStepAt - 0.5) return this.schedule();
    this.stepT = t;
    this.stepRead = 0;
    this.stepWrite = 0;
    this.stepReleased = 0;
    this.continueStep();
  };

  /**
   * Advance the sequences of the current step in slices, yielding to I/O between slices: a real
   * server's HTTP frontend keeps accepting requests while the engine steps, and one synchronous
   * pass over hundreds of socket writes would stall reads for milliseconds and show up as latency
   * that is neither the model's nor the client's.
   */
  private readonly continueStep = (): void => {
    this.timer = undefined;
    if (this.closed) return;
    const t = this.stepT;
    const k = this.profile.tokens_per_step;
    const list = this.decoding;
    const end = Math.min(list.length, this.stepRead + STEP_SLICE);
    for (; this.stepRead < end; this.stepRead++) {
      const seq = list[this.stepRead]!;
      if (seq.cancelled) {
        this.stepReleased++;
        continue;
      }
      if (seq.stalledUntil > t) {
        list[this.stepWrite++] = seq;
        continue;
      }
      let n = Math.min(k, seq.maxTokens - seq.emitted);
      const resetNow = seq.resetAt >= 0 && seq.emitted + n >= seq.resetAt;
      if (resetNow) n = seq.resetAt - seq.emitted;
      if (seq.stallAt >= 0 && seq.emitted + n >= seq.stallAt && !resetNow) n = seq.stallAt - seq.emitted;
      if (n > 0) {
        if (seq.emitted === 0) seq.firstTokenMs = this.now();
        const from = seq.emitted;
        seq.emitted += n;
        this.tokensGenerated += n;
        seq.sink.tokens(seq, from, n);
      }
      if (resetNow) {
        seq.sink.reset(seq);
        this.stepReleased++;
      } else if (seq.emitted >= seq.maxTokens) {
        seq.sink.finish(seq);
        this.stepReleased++;
      } else {
        if (seq.stallAt >= 0 && seq.emitted >= seq.stallAt) {
          seq.stallAt = -1;
          seq.stalledUntil = t + seq.stallMs;
          seq.sink.stalled(seq);
        }
        list[this.stepWrite++] = seq;
      }
    }
    if (this.stepRead < list.length) {
      this.timerIsImmediate = true;
      this.timer = setImmediate(this.continueStep);
      return;
    }
    list.length = this.stepWrite;
    for (let i = 0; i < this.stepReleased; i++) this.release();
    if (list.length === 0) return;
    // Catch up on timer slop, but never bank more than 5 ms of credit after a stall of the loop.
    this.nextStepAt =
      Math.max(this.nextStepAt, t - 5) + this.jittered(stepMs(this.profile, this.occupied)) + this.stolenMs;
    this.stolenMs = 0;
    this.schedule();
  };
}
