/** Completion tokens of succeeded requests counted in one UTC minute. */
export interface MinuteBucket {
  /** floor(ts / 60000) */
  minute: number;
  tokens: number;
  perShard: Map<number, number>;
}

export interface TpmFigures {
  aggregate_peak: number;
  aggregate_peak_minute: string | null;
  /** True when no minute lay fully inside the window and the best partial minute was scaled. */
  aggregate_peak_partial: boolean;
  run_average: number;
  per_minute: { minute: string; completion_tokens: number; per_shard: Record<string, number> }[];
  per_shard_peak: Record<string, number>;
}

/**
 * Aggregate completion TPM from per-minute buckets over the window [startMs, endMs]:
 * - TPM of minute m = Σ completion_tokens of succeeded request_end events with floor(ts/60000) = m,
 *   over all shards;
 * - the peak is the best minute lying fully inside the window; when there is none (runs under two
 *   minutes may have none), the best partial minute scaled to 60 s of its overlap with the window,
 *   flagged `aggregate_peak_partial`;
 * - run_average = total tokens × 60000 / window length, less `idleMs` (stretches between a run's
 *   sessions with no event: a resume a day later does not average its tokens over the day).
 * Per-shard peaks follow the same rule per shard.
 */
export function computeTpm(buckets: readonly MinuteBucket[], startMs: number, endMs: number, idleMs = 0): TpmFigures {
  const sorted = [...buckets].sort((a, b) => a.minute - b.minute);
  const total = sorted.reduce((a, b) => a + b.tokens, 0);
  const durationMs = Math.max(0, endMs - startMs - idleMs);
  const full = sorted.filter((b) => b.minute * 60_000 >= startMs && (b.minute + 1) * 60_000 <= endMs);
  const partial = full.length === 0;
  const rate = (b: MinuteBucket, tokens: number) =>
    partial ? (tokens * 60_000) / Math.max(1, overlapMs(b.minute, startMs, endMs)) : tokens;
  const candidates = partial ? sorted : full;
  let peak = 0;
  let peakMinute: number | null = null;
  for (const b of candidates) {
    const r = rate(b, b.tokens);
    if (r > peak) {
      peak = r;
      peakMinute = b.minute;
    }
  }
  const perShardPeak: Record<string, number> = {};
  for (const b of candidates) {
    for (const [shard, tokens] of b.perShard) {
      const r = rate(b, tokens);
      if (r > (perShardPeak[shard] ?? 0)) perShardPeak[shard] = r;
    }
  }
  return {
    aggregate_peak: peak,
    aggregate_peak_minute: peakMinute === null ? null : minuteIso(peakMinute),
    aggregate_peak_partial: partial,
    run_average: durationMs > 0 ? (total * 60_000) / durationMs : 0,
    per_minute: sorted.map((b) => ({
      minute: minuteIso(b.minute),
      completion_tokens: b.tokens,
      per_shard: Object.fromEntries([...b.perShard].sort((x, y) => x[0] - y[0]).map(([s, t]) => [String(s), t])),
    })),
    per_shard_peak: perShardPeak,
  };
}

function overlapMs(minute: number, startMs: number, endMs: number): number {
  return Math.max(0, Math.min(endMs, (minute + 1) * 60_000) - Math.max(startMs, minute * 60_000));
}

export function minuteIso(minute: number): string {
  return new Date(minute * 60_000).toISOString();
}
