import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readResults, RESULTS_FILE } from '../events/results-file.js';

/**
 * results.jsonl against the event log: the report counts each request by its last `request_end`,
 * and a run's results file keeps one line per request, so the two must tell the same story. They
 * disagree when a log is copied without one shard's file, when a run is still interrupted (an
 * answer whose result line was not written yet), or after a bug.
 */
export interface ResultsCheck {
  /** Result lines read (every results.jsonl of the run directories given). */
  lines: number;
  succeeded: number;
  failed: number;
  /** Σ usage.completion_tokens over succeeded result lines that carry usage. */
  completion_tokens: number;
  /** Result lines whose request has no `request_end` in the events read. */
  without_request_end: number;
  /** Result lines whose outcome (succeeded/failed) differs from the counted `request_end`'s. */
  outcome_mismatch: number;
  /** Succeeded result lines with usage whose completion tokens differ from the counted `request_end`'s. */
  token_mismatch: number;
  /** Requests counted by the report that have no result line. */
  request_ends_without_result: number;
  /** True when none of the four counts above is above 0. */
  agree: boolean;
}

/** How the events counted one request: what `RunAccumulator.outcomeOf` answers for its id. */
export type OutcomeLookup = (id: string) => { succeeded: boolean; completionTokens: number } | undefined;

/** Run directories among report arguments: those given as a directory that hold results.jsonl. */
export function runDirsWithResults(paths: readonly string[]): string[] {
  const dirs = new Set<string>();
  for (const p of paths) {
    if (!existsSync(p) || !statSync(p).isDirectory()) continue;
    const runDir = existsSync(join(p, 'events')) ? p : join(p, '..');
    if (existsSync(join(runDir, RESULTS_FILE))) dirs.add(runDir);
  }
  return [...dirs];
}

/** Compare the run directories' results with the events' outcomes. `requestsCounted` = report's requests.total. */
export async function checkResults(
  runDirs: readonly string[],
  lookup: OutcomeLookup,
  requestsCounted: number,
): Promise<ResultsCheck> {
  const c: ResultsCheck = {
    lines: 0,
    succeeded: 0,
    failed: 0,
    completion_tokens: 0,
    without_request_end: 0,
    outcome_mismatch: 0,
    token_mismatch: 0,
    request_ends_without_result: 0,
    agree: true,
  };
  let matched = 0;
  for (const dir of runDirs) {
    for await (const r of readResults(join(dir, RESULTS_FILE))) {
      c.lines++;
      const ok = r.code === undefined;
      if (ok) c.succeeded++;
      else c.failed++;
      if (r.completionTokens !== undefined) c.completion_tokens += r.completionTokens;
      const counted = lookup(r.id);
      if (!counted) {
        c.without_request_end++;
        continue;
      }
      matched++;
      if (counted.succeeded !== ok) c.outcome_mismatch++;
      else if (ok && r.completionTokens !== undefined && r.completionTokens !== counted.completionTokens)
        c.token_mismatch++;
    }
  }
  c.request_ends_without_result = Math.max(0, requestsCounted - matched);
  c.agree = c.without_request_end + c.outcome_mismatch + c.token_mismatch + c.request_ends_without_result === 0;
  return c;
}

/** One sentence for the terminal and HTML views; undefined when they agree. */
export function describeDisagreement(c: ResultsCheck): string | undefined {
  if (c.agree) return undefined;
  const parts: string[] = [];
  if (c.without_request_end)
    parts.push(`${c.without_request_end} result line(s) have no request_end event (is an event file missing?)`);
  if (c.request_ends_without_result)
    parts.push(
      `${c.request_ends_without_result} request(s) ended in the events have no result line (an interrupted run: run ` +
        `it again into the same --out)`,
    );
  if (c.outcome_mismatch) parts.push(`${c.outcome_mismatch} result(s) say another outcome than their last request_end`);
  if (c.token_mismatch)
    parts.push(`${c.token_mismatch} result(s) say other completion tokens than their last request_end`);
  return `results.jsonl and the events disagree: ${parts.join('; ')}`;
}
