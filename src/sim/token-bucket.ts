/**
 * A continuously refilling budget ("N per minute"), as API gateways enforce rate limits. A capacity
 * of 0 means unlimited.
 */
export class TokenBucket {
  private level: number;
  private lastMs: number;
  private readonly capacity: number;

  /** `burstS` seconds of budget fit in the bucket (60 = a whole minute's budget at once). */
  constructor(
    private readonly perMin: number,
    nowMs: number,
    burstS = 60,
  ) {
    this.capacity = (perMin * burstS) / 60;
    this.level = this.capacity;
    this.lastMs = nowMs;
  }

  /** The budget left now (whole units) and the ms until the bucket is full again: what x-ratelimit-* headers say. */
  peek(nowMs: number): { remaining: number; resetMs: number } {
    if (this.perMin <= 0) return { remaining: 0, resetMs: 0 };
    const perMs = this.perMin / 60_000;
    this.level = Math.min(this.capacity, this.level + (nowMs - this.lastMs) * perMs);
    this.lastMs = nowMs;
    return { remaining: Math.floor(this.level), resetMs: Math.ceil((this.capacity - this.level) / perMs) };
  }

  /** Take `amount` if available; otherwise return the ms until it would be (nothing is taken). */
  take(amount: number, nowMs: number): { ok: true } | { ok: false; retryAfterMs: number } {
    if (this.perMin <= 0) return { ok: true };
    const perMs = this.perMin / 60_000;
    this.level = Math.min(this.capacity, this.level + (nowMs - this.lastMs) * perMs);
    this.lastMs = nowMs;
    // A request larger than the whole bucket can never pass; let it through rather than starve it.
    const need = Math.min(amount, this.capacity);
    if (this.level >= need) {
      this.level -= need;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.ceil((need - this.level) / perMs) };
  }
}
