import { describe, expect, it } from 'vitest';
import { decodeFacts, encodeFacts, factsFromLine, type ResultFacts } from '../src/runner/distributed/result-facts.js';

describe('result facts on the distributed results stream', () => {
  it('round-trip every field a run summary counts, in order, leaving absent ones absent', () => {
    const facts: ResultFacts[] = [
      { outcome: 'succeeded', attempts: 1, promptTokens: 12, completionTokens: 34, ttftMs: 5.25 },
      {
        outcome: 'failed',
        attempts: 3,
        promptTokens: 0,
        completionTokens: 0,
        cause: 'http_5xx',
        status: 503,
        error: 'upstream "busy"\n',
        retryAfterTooLongMs: 90_000,
      },
      { outcome: 'failed', attempts: 2, promptTokens: 0, completionTokens: 0, cause: 'timeout_ttft' },
    ];
    expect(decodeFacts(encodeFacts(facts))).toEqual(facts);
    expect(decodeFacts(encodeFacts([]))).toEqual([]);
  });

  it('decode to nothing for a batch sent without facts or with unreadable ones', () => {
    expect(decodeFacts(undefined)).toEqual([]);
    expect(decodeFacts('not json')).toEqual([]);
    expect(decodeFacts('{"a":1}')).toEqual([]);
    expect(decodeFacts('[[1,1,0,0,null,null,null,null,null],[1,2]]')).toEqual([
      { outcome: 'succeeded', attempts: 1, promptTokens: 0, completionTokens: 0 },
      undefined,
    ]);
  });

  it('fall back to what the results.jsonl line says by itself', () => {
    const ok =
      '{"id":"batch_req_r_1","custom_id":"a","response":{"status_code":200,"request_id":null,' +
      '"body":{"usage":{"prompt_tokens":7,"completion_tokens":9}}},"error":null}';
    const failed =
      '{"id":"batch_req_r_2","custom_id":"b","response":null,"error":{"code":"http_4xx","message":"bad","status":400}}';
    expect(factsFromLine(ok)).toEqual({ outcome: 'succeeded', attempts: 1, promptTokens: 0, completionTokens: 9 });
    expect(factsFromLine(failed)).toEqual({
      outcome: 'failed',
      attempts: 1,
      promptTokens: 0,
      completionTokens: 0,
      cause: 'http_4xx',
    });
    expect(factsFromLine('{"no":"id"}')).toBeUndefined();
  });
});
