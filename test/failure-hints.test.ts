import { describe, expect, it } from 'vitest';
import { failureHints } from '../src/runner/failure-hints.js';
import { misconfiguredHalt, newRunTotals, type RunTotals } from '../src/runner/run-totals.js';

const url = 'https://example.test/openai/deployments/d/chat/completions';

describe('failure hints', () => {
  it('names the likely wrong flag once a cause is at least half the failures', () => {
    expect(failureHints({ requestUrl: url, failed: 4, causes: { http_4xx: 4 }, statuses: { 404: 2, 400: 2 } })).toEqual(
      [
        `2 requests got HTTP 404 from ${url}: --endpoint is the API base URL, as the OpenAI client's baseURL ` +
          `(usually ending in /v1, e.g. http://127.0.0.1:8000/v1)`,
      ],
    );
    // A 404 that names the model is about --model, not --endpoint.
    const model = failureHints({
      requestUrl: 'http://127.0.0.1:8000/v1/chat/completions',
      failed: 3,
      causes: { http_4xx: 3 },
      statuses: { 404: 3 },
      statusErrors: { 404: 'HTTP 404: The model `llama-9` does not exist.' },
    });
    expect(model).toEqual([
      '3 requests got HTTP 404 naming the model ("HTTP 404: The model `llama-9` does not exist."): set --model to ' +
        'one the server serves (GET http://127.0.0.1:8000/v1/models lists them)',
    ]);
    // 401 and 403 count together.
    const auth = failureHints({
      requestUrl: url,
      failed: 5,
      causes: { http_4xx: 3, http_5xx: 2 },
      statuses: { 401: 2, 403: 1, 500: 2 },
    });
    expect(auth).toHaveLength(1);
    expect(auth[0]).toMatch(/^3 requests were refused with HTTP 401\/403: set OPENAI_API_KEY or SHARDLINE_API_KEY/);
    expect(failureHints({ requestUrl: url, failed: 2, causes: { conn_refused: 2 }, statuses: {} })).toEqual([
      '2 requests found nothing listening at https://example.test (connection refused): is the server up, and are ' +
        'host and port right?',
    ]);
    // Several endpoints: the totals do not say which refused, so the hint names them all, not the first.
    const urls = ['http://127.0.0.1:8000/v1/chat/completions', 'http://127.0.0.1:9/v1/chat/completions'];
    expect(
      failureHints({ requestUrl: urls[0]!, requestUrls: urls, failed: 2, causes: { conn_refused: 2 }, statuses: {} }),
    ).toEqual([
      '2 requests found nothing listening at one of http://127.0.0.1:8000, http://127.0.0.1:9 (connection ' +
        'refused): is the server up, and are host and port right? (`shardline report` names the endpoint that ' +
        'was down)',
    ]);
  });

  it('stays quiet for a minority cause, other causes, and runs without failures', () => {
    expect(
      failureHints({ requestUrl: url, failed: 5, causes: { http_4xx: 2, http_5xx: 3 }, statuses: { 404: 2, 503: 3 } }),
    ).toEqual([]);
    expect(failureHints({ requestUrl: url, failed: 3, causes: { http_429: 3 }, statuses: { 429: 3 } })).toEqual([]);
    expect(failureHints({ requestUrl: url, failed: 0, causes: {}, statuses: {} })).toEqual([]);
  });
});

describe('--fail-fast: stop when every request so far was refused', () => {
  const totals = (over: Partial<RunTotals>): RunTotals => ({ ...newRunTotals(), ...over });

  it('stops once the first N to finish all failed with 401, 403 or 404, and only then', () => {
    const refused = totals({ failed: 20, statuses: { 401: 15, 403: 5 } });
    expect(misconfiguredHalt(refused, 20)).toBe(
      'the first 20 requests to finish all failed with HTTP 401 (15), 403 (5): stopped before sending the rest ' +
        '(--fail-fast). ' +
        'Check the API key, --model and --endpoint, then run again into the same --out with --retry-failed',
    );
    expect(misconfiguredHalt(totals({ failed: 25, statuses: { 404: 25 } }), 20)).toMatch(
      /^the first 25 requests to finish all failed with HTTP 404 \(25\)/,
    );
    // Too few yet; switched off; one success; one failure of another kind (a 500 or no status at all).
    expect(misconfiguredHalt(totals({ failed: 19, statuses: { 401: 19 } }), 20)).toBeUndefined();
    expect(misconfiguredHalt(refused, 0)).toBeUndefined();
    expect(misconfiguredHalt({ ...refused, succeeded: 1 }, 20)).toBeUndefined();
    expect(misconfiguredHalt(totals({ failed: 20, statuses: { 401: 19, 500: 1 } }), 20)).toBeUndefined();
    expect(misconfiguredHalt(totals({ failed: 20, statuses: { 401: 19 } }), 20)).toBeUndefined();
  });
});
