import { nearestRank } from '../../metrics/percentiles.js';

/**
 * Live figures for the progress line and /metrics: completion tokens over the last 60 s (one bucket
 * per second) and a ring of recent TTFTs for a p95. O(1) per result; O(ring) per read, once a second.
 */
export class RollingStats {
  private readonly buckets = new Float64Array(60);
  private readonly stamps = new Float64Array(60).fill(-1);
  private readonly ttfts: Float64Array;
  private ttftCount = 0;

  constructor(ttftRing = 2048) {
    this.ttfts = new Float64Array(ttftRing);
  }

  addTokens(nowMs: number, tokens: number): void {
    const second = Math.floor(nowMs / 1000);
    const i = second % 60;
    if (this.stamps[i] !== second) {
      this.stamps[i] = second;
      this.buckets[i] = 0;
    }
    this.buckets[i]! += tokens;
  }

  /** A request that succeeded: its completion tokens now, and its server TTFT when it has one. */
  addSuccess(nowMs: number, completionTokens: number, ttftMs: number | undefined): void {
    this.addTokens(nowMs, completionTokens);
    if (ttftMs !== undefined) this.addTtft(ttftMs);
  }

  addTtft(ms: number): void {
    this.ttfts[this.ttftCount++ % this.ttfts.length] = ms;
  }

  /** Completion tokens in the 60 s ending now, scaled to a minute if the run is younger. */
  tokensPerMinute(nowMs: number, startedMs: number): number {
    const second = Math.floor(nowMs / 1000);
    let sum = 0;
    for (let i = 0; i < 60; i++) if (this.stamps[i]! > second - 60) sum += this.buckets[i]!;
    const windowS = Math.min(60, Math.max(1, (nowMs - startedMs) / 1000));
    return (sum * 60) / windowS;
  }

  /** Nearest-rank p95 of the recent TTFTs, or undefined before the first. */
  ttftP95(): number | undefined {
    const n = Math.min(this.ttftCount, this.ttfts.length);
    if (n === 0) return undefined;
    return nearestRank(this.ttfts.slice(0, n).sort(), 95);
  }
}
