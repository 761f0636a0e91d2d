// Shared by the A/B benches: the mean of per-run ratios and its standard error.

/** Mean of `ratios` and its standard error (NaN for a single run). */
export function meanAndError(ratios) {
  const mean = ratios.reduce((x, y) => x + y, 0) / ratios.length;
  const se =
    ratios.length > 1
      ? Math.sqrt(ratios.reduce((x, r) => x + (r - mean) ** 2, 0) / (ratios.length - 1) / ratios.length)
      : NaN;
  return { mean, se };
}
