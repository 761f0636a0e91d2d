import { describe, expect, it } from 'vitest';
import { failureHints } from '../src/runner/failure-hints.js';

const url = 'https://example.test/openai/deployments/d/chat/completions';

describe('failure hints', () => {
  it('names the likely wrong flag once a cause is at least half the failures', () => {
    expect(failureHints({ requestUrl: url, failed: 4, causes: { http_4xx: 4 }, statuses: { 404: 2, 400: 2 } })).toEqual([
      `2 requests got HTTP 404 from ${url}: --endpoint is the API base URL, as the OpenAI client's baseURL (usually ending in /v1, e.g. http://127.0.0.1:8000/v1)`,
    ]);
    // A 404 that names the model is about --model, not --endpoint.
    const model = failureHints({
      requestUrl: 'http://127.0.0.1:8000/v1/chat/completions',
      failed: 3,
      causes: { http_4xx: 3 },
      statuses: { 404: 3 },
      statusErrors: { 404: 'HTTP 404: The model `llama-9` does not exist.' },
    });
    expect(model).toEqual([
      '3 requests got HTTP 404 naming the model ("HTTP 404: The model `llama-9` does not exist."): set --model to one the server serves (GET http://127.0.0.1:8000/v1/models lists them)',
    ]);
    // 401 and 403 count together.
    const auth = failureHints({ requestUrl: url, failed: 5, causes: { http_4xx: 3, http_5xx: 2 }, statuses: { 401: 2, 403: 1, 500: 2 } });
    expect(auth).toHaveLength(1);
    expect(auth[0]).toMatch(/^3 requests were refused with HTTP 401\/403: set OPENAI_API_KEY or SHARDLINE_API_KEY/);
    expect(failureHints({ requestUrl: url, failed: 2, causes: { conn_refused: 2 }, statuses: {} })).toEqual([
      '2 requests found nothing listening at https://example.test (connection refused): is the server up, and are host and port right?',
    ]);
  });

  it('stays quiet for a minority cause, other causes, and runs without failures', () => {
    expect(failureHints({ requestUrl: url, failed: 5, causes: { http_4xx: 2, http_5xx: 3 }, statuses: { 404: 2, 503: 3 } })).toEqual([]);
    expect(failureHints({ requestUrl: url, failed: 3, causes: { http_429: 3 }, statuses: { 429: 3 } })).toEqual([]);
    expect(failureHints({ requestUrl: url, failed: 0, causes: {}, statuses: {} })).toEqual([]);
  });
});
