import { expect } from 'vitest';
import { analyze } from '../../src/index.js';
import { loadResults } from './run-dir.js';

/**
 * The books: the report counts every result line exactly once, with its outcome and tokens, and
 * finds results and events in agreement.
 */
export async function expectBooksAgree(out: string): Promise<void> {
  const results = loadResults(out);
  const report = await analyze([out]);
  expect(report.requests.succeeded + report.requests.failed).toBe(results.length);
  expect(report.requests.succeeded).toBe(results.filter((r) => r.error === null).length);
  expect(report.tokens.completion).toBe(
    results.reduce((a, r) => {
      const usage = r.response?.body.usage as { completion_tokens?: number; output_tokens?: number } | undefined;
      return a + (usage?.completion_tokens ?? usage?.output_tokens ?? 0);
    }, 0),
  );
  expect(report.results).toMatchObject({
    lines: results.length,
    agree: true,
    without_request_end: 0,
    request_ends_without_result: 0,
  });
}
