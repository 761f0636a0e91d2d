import type { DoneItem } from './ipc-messages.js';

/** Counts a run accumulates; the summary and run.json are built from these. */
export interface RunTotals {
  requests: number;
  rejected: number;
  skipped: number;
  succeeded: number;
  failed: number;
  attempts: number;
  retries: number;
  completionTokens: number;
  promptTokens: number;
  causes: Record<string, number>;
  /** Failed requests by the HTTP status of their final attempt (when they got one). */
  statuses: Record<string, number>;
  /** The first error message seen for each of those statuses. */
  statusErrors: Record<string, string>;
  /**
   * Failed requests not retried because the server's Retry-After was over --retry-after-max-s, and the longest (ms).
   */
  retryAfterTooLong: number;
  retryAfterTooLongMaxMs: number;
  shardRestarts: number;
}

/** All counts at zero. */
export function newRunTotals(): RunTotals {
  return {
    requests: 0,
    rejected: 0,
    skipped: 0,
    succeeded: 0,
    failed: 0,
    attempts: 0,
    retries: 0,
    completionTokens: 0,
    promptTokens: 0,
    causes: {},
    statuses: {},
    statusErrors: {},
    retryAfterTooLong: 0,
    retryAfterTooLongMaxMs: 0,
    shardRestarts: 0,
  };
}

/** Statuses that mean the run is misconfigured (key, model, endpoint), not that a request is bad. */
const REFUSED_STATUSES = ['401', '403', '404'] as const;

/**
 * Why to stop the run now, when the first `n` requests to finish all failed with HTTP 401, 403 or
 * 404: a wrong API key, `--model` or `--endpoint`, with which every further request would fail the
 * same way (and a provider sees a burst of refused calls). Undefined to go on; `n` 0 never stops.
 */
export function misconfiguredHalt(t: RunTotals, n: number): string | undefined {
  if (n <= 0 || t.succeeded > 0 || t.failed < n) return undefined;
  const refused = REFUSED_STATUSES.map((s) => [s, t.statuses[s] ?? 0] as const).filter(([, c]) => c > 0);
  if (refused.reduce((a, [, c]) => a + c, 0) !== t.failed) return undefined;
  return (
    `the first ${t.failed} requests to finish all failed with HTTP ` +
    `${refused.map(([s, c]) => `${s} (${c})`).join(', ')}: ` +
    'stopped before sending the rest (--fail-fast). Check the API key, --model and --endpoint, then run again into ' +
    'the same --out with --retry-failed'
  );
}

/** What the totals count of a finished request. */
export type TalliedFacts = Pick<
  DoneItem,
  'outcome' | 'attempts' | 'promptTokens' | 'completionTokens' | 'cause' | 'status' | 'error' | 'retryAfterTooLongMs'
>;

/** Count a finished request (its result was written). */
export function tallyDone(t: RunTotals, d: TalliedFacts): void {
  t.attempts += d.attempts;
  if (d.outcome === 'succeeded') {
    t.succeeded++;
    t.completionTokens += d.completionTokens;
    t.promptTokens += d.promptTokens;
    return;
  }
  t.failed++;
  const cause = d.cause ?? 'unknown';
  t.causes[cause] = (t.causes[cause] ?? 0) + 1;
  if (d.status !== undefined) {
    t.statuses[d.status] = (t.statuses[d.status] ?? 0) + 1;
    t.statusErrors[d.status] ??= d.error ?? '';
  }
  if (d.retryAfterTooLongMs !== undefined) {
    t.retryAfterTooLong++;
    t.retryAfterTooLongMaxMs = Math.max(t.retryAfterTooLongMaxMs, d.retryAfterTooLongMs);
  }
}
