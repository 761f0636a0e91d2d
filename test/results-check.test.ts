import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkResults, describeDisagreement, runDirsWithResults } from '../src/diagnose/results-check.js';
import { tempDir } from './helpers/run-dir.js';

// The results check on its own: results.jsonl against what the events counted for each request,
// every way the two can disagree, and which report arguments are run directories.

const ok = (id: string, tokens: number) =>
  JSON.stringify({
    id: `batch_req_r_${id}`,
    custom_id: id,
    response: { status_code: 200, request_id: null, body: { usage: { completion_tokens: tokens } } },
    error: null,
  });
const failed = (id: string) =>
  JSON.stringify({ id: `batch_req_r_${id}`, custom_id: id, response: null, error: { code: 'http_5xx', message: 'x' } });
const responsesOk = (id: string, tokens: number) =>
  JSON.stringify({
    id: `batch_req_r_${id}`,
    custom_id: id,
    response: { status_code: 200, request_id: null, body: { object: 'response', usage: { output_tokens: tokens } } },
    error: null,
  });

function runDir(lines: string[]): string {
  const dir = tempDir();
  mkdirSync(join(dir, 'events'));
  writeFileSync(join(dir, 'results.jsonl'), `${lines.join('\n')}\n`);
  return dir;
}

describe('the results check', () => {
  it('agrees when every result line matches its counted request, Responses API tokens included', async () => {
    const dir = runDir([ok('a', 5), failed('b'), responsesOk('c', 7)]);
    const counted = new Map([
      ['a', { succeeded: true, completionTokens: 5 }],
      ['b', { succeeded: false, completionTokens: 0 }],
      ['c', { succeeded: true, completionTokens: 7 }],
    ]);
    const c = await checkResults([dir], (id) => counted.get(id), 3);
    expect(c).toEqual({
      lines: 3,
      succeeded: 2,
      failed: 1,
      completion_tokens: 12,
      without_request_end: 0,
      outcome_mismatch: 0,
      token_mismatch: 0,
      request_ends_without_result: 0,
      agree: true,
    });
    expect(describeDisagreement(c)).toBeUndefined();
  });

  it('counts each way of disagreeing and says all of them in one sentence', async () => {
    const dir = runDir([ok('a', 5), ok('b', 3), failed('c'), ok('orphan', 1)]);
    const counted = new Map([
      ['a', { succeeded: true, completionTokens: 6 }],
      ['b', { succeeded: false, completionTokens: 0 }],
      ['c', { succeeded: false, completionTokens: 0 }],
    ]);
    // Five requests counted: c matched, a and b matched with differences, two have no line at all.
    const c = await checkResults([dir], (id) => counted.get(id), 5);
    expect(c).toMatchObject({
      without_request_end: 1,
      token_mismatch: 1,
      outcome_mismatch: 1,
      request_ends_without_result: 2,
      agree: false,
    });
    expect([c.lines, c.succeeded, c.failed, c.completion_tokens]).toEqual([4, 3, 1, 9]);
    // Events that count nothing (a log copied without its files): every line is without its request_end.
    const none = await checkResults([dir], () => undefined, 0);
    expect(none).toMatchObject({ without_request_end: 4, request_ends_without_result: 0, agree: false });
    const said = describeDisagreement(c)!;
    expect(said).toMatch(/^results\.jsonl and the events disagree: /);
    expect(said).toContain('1 result line(s) have no request_end event');
    expect(said).toContain('2 request(s) ended in the events have no result line');
    expect(said).toContain('1 result(s) say another outcome');
    expect(said).toContain('1 result(s) say other completion tokens');
  });

  it('finds run directories among report arguments: a run directory, or its events folder', () => {
    const a = runDir([ok('a', 1)]);
    const bare = tempDir();
    expect(runDirsWithResults([a])).toEqual([a]);
    expect(runDirsWithResults([join(a, 'events')])).toEqual([join(a, 'events', '..')]);
    expect(runDirsWithResults([bare, join(bare, 'nope'), join(a, 'results.jsonl')])).toEqual([]);
  });
});
