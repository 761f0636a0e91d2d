/**
 * A continuously refilling budget ("N per minute"), as API gateways enforce rate limits. A capacity
 * of 0 means unlimited.
 */
export class TokenBucket {
  private level: number;
  private lastMs: number;

  constructor(
    private readonly perMin: number,
    nowMs: number,
  ) {
    this.level = perMin;
    this.lastMs = nowMs;
  }

  /** Take `amount` if available; otherwise return the ms until it would be (nothing is taken). */
  take(amount: number, nowMs: number): { ok: true } | { ok: false; retryAfterMs: number } {
    if (this.perMin <= 0) return { ok: true };
    const perMs = this.perMin / 60_000;
    this.level = Math.min(this.perMin, this.level + (nowMs - this.lastMs) * perMs);
    this.lastMs = nowMs;
    // A request larger than the whole budget can never pass; let it through rather than starve it.
    const need = Math.min(amount, this.perMin);
    if (this.level >= need) {
      this.level -= need;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.ceil((need - this.level) / perMs) };
  }
}
