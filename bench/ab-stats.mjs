// Shared by the A/B benches (two builds of shardline side by side): the checkouts they compare, and the
// mean of per-run ratios with its standard error.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * The built shardline of `--a` and `--b` (a checkout: its dist/ and node_modules; `.` is this one), as
 * absolute paths to their dist/; exits 2 naming the flag when one is missing or not built.
 */
export function checkoutsOrExit(bench, values) {
  const dist = {};
  for (const side of ['a', 'b']) {
    dist[side] = join(resolve(values[side] ?? ''), 'dist');
    if (!values[side] || !existsSync(join(dist[side], 'cli/main.js'))) {
      console.error(`${bench}: --${side} must name a checkout with a built shardline (dist/cli/main.js)`);
      process.exit(2);
    }
  }
  return dist;
}

/** Mean of `ratios` and its standard error (NaN for a single run). */
export function meanAndError(ratios) {
  const mean = ratios.reduce((x, y) => x + y, 0) / ratios.length;
  const se =
    ratios.length > 1
      ? Math.sqrt(ratios.reduce((x, r) => x + (r - mean) ** 2, 0) / (ratios.length - 1) / ratios.length)
      : NaN;
  return { mean, se };
}
