import type { AttemptOutcome } from '../../client/chat-attempt.js';
import { AdaptiveLimit, type AdaptiveLimitOptions, type LimitChange } from '../pacing/adaptive-limit.js';

/**
 * A shard's in-flight limit — its fixed concurrency, or the adaptive limit of `--concurrency auto`
 * — and the pull credits it owes its coordinator: the coordinator hands a shard work for the slots
 * it asked for, so when the limit comes down the shard skips that many pulls as slots free, and when
 * it rises owed pulls absorb the rise before more are asked for.
 */
export class ShardLimit {
  private current: number;
  private readonly adaptive: AdaptiveLimit | undefined;
  private debt = 0;

  constructor(fixed: number, adaptive: AdaptiveLimitOptions | undefined, nowMs: number) {
    this.adaptive = adaptive ? new AdaptiveLimit(adaptive, nowMs) : undefined;
    this.current = this.adaptive?.limit ?? fixed;
  }

  /** In-flight attempts allowed now. */
  get limit(): number {
    return this.current;
  }

  noteStart(inFlight: number): void {
    this.adaptive?.noteStart(inFlight);
  }

  /** A slot freed: whether to ask the coordinator for one more item (not while pulls are owed). */
  slotFreed(): boolean {
    if (this.debt === 0) return true;
    this.debt--;
    return false;
  }

  /**
   * Feed the adaptive limit one finished attempt. When it moves: the change (for the `limit` event)
   * and how many more items to ask the coordinator for.
   */
  noteEnd(
    outcome: AttemptOutcome,
    startTs: number,
    endTs: number,
    queueMs: number | undefined,
  ): { change: LimitChange; pulls: number } | undefined {
    if (!this.adaptive) return undefined;
    const ok = outcome.outcome === 'ok' ? outcome : undefined;
    const ttftMs = ok ? ok.firstTokenTs - startTs : undefined;
    const tokens = ok
      ? (ok.completion.usage?.completion_tokens ?? ok.completion.usage?.output_tokens ?? ok.contentChunks)
      : 0;
    const tpotMs = ok && tokens > 1 ? (ok.lastTokenTs - ok.firstTokenTs) / (tokens - 1) : undefined;
    const cause = outcome.outcome === 'error' ? outcome.cause : undefined;
    const change = this.adaptive.noteEnd(startTs, ttftMs, cause, endTs, tpotMs, queueMs);
    if (!change) return undefined;
    this.current = change.new;
    const delta = change.new - change.old;
    if (delta < 0) {
      this.debt -= delta;
      return { change, pulls: 0 };
    }
    const fromDebt = Math.min(this.debt, delta);
    this.debt -= fromDebt;
    return { change, pulls: delta - fromDebt };
  }
}
