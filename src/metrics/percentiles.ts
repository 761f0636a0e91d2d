/** Percentile summary in ms: nearest rank over the sorted values. */
export interface PercentileSummary {
  p50: number | null;
  p90: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
  count: number;
}

/**
 * Nearest-rank percentile of an ascending array: `sorted[ceil(p/100 · N) − 1]` (p in (0, 100]).
 * Undefined for an empty array.
 */
export function nearestRank(sorted: ArrayLike<number>, p: number): number | undefined {
  const n = sorted.length;
  if (n === 0) return undefined;
  const rank = Math.min(n, Math.max(1, Math.ceil((p / 100) * n)));
  return sorted[rank - 1];
}

/** Nearest-rank percentile of an ascending array, rounded to µs; null for an empty array. */
export function percentileOf(sorted: ArrayLike<number>, p: number): number | null {
  const v = nearestRank(sorted, p);
  return v === undefined ? null : round3(v);
}

/** p50/p90/p95/p99/max/count of `values` (any order; not modified), rounded to µs. */
export function summarize(values: ArrayLike<number>): PercentileSummary {
  return summarizeSorted(Float64Array.from(values).sort());
}

/** summarize() of values already in ascending order. */
export function summarizeSorted(sorted: ArrayLike<number>): PercentileSummary {
  const at = (p: number) => percentileOf(sorted, p);
  return { p50: at(50), p90: at(90), p95: at(95), p99: at(99), max: at(100), count: sorted.length };
}

export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
