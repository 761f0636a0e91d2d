import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseResultLine, scanSuccessLine } from '../src/events/results-file.js';
import { errorResultLine, successResultLine } from '../src/runner/output/result-line.js';
import type { WorkItem } from '../src/runner/ipc-messages.js';

/** What JSON.parse says a line holds: the reference the scanner must match. */
function reference(text: string) {
  const r = JSON.parse(text) as {
    custom_id: string;
    error: { code: string } | null;
    response: { body?: { usage?: { completion_tokens?: unknown } } } | null;
  };
  const code = r.error ? r.error.code : undefined;
  const t = r.response?.body?.usage?.completion_tokens;
  return { id: r.custom_id, code, completionTokens: code === undefined && typeof t === 'number' ? t : undefined };
}

const text = fc.string({ unit: 'binary', maxLength: 40 });
const usage = fc.oneof(
  fc.constant(undefined),
  fc.record({ prompt_tokens: fc.nat(), completion_tokens: fc.nat({ max: 1e9 }), total_tokens: fc.nat() }),
  fc.record({
    completion_tokens: fc.oneof(fc.nat(), fc.double(), fc.constant(null), fc.string()),
    prompt_tokens_details: fc.record({ cached_tokens: fc.nat() }),
  }),
  fc.record({ prompt_tokens_details: fc.record({ completion_tokens: fc.nat() }), completion_tokens: fc.nat() }),
);
const body = fc.record({
  id: text,
  choices: fc.array(
    fc.record({ index: fc.nat(), message: fc.record({ role: fc.constant('assistant'), content: text }) }),
    { maxLength: 2 },
  ),
  usage,
  extra: fc.oneof(fc.constant(undefined), fc.record({ usage: fc.record({ completion_tokens: fc.nat() }) }), text),
});

function item(id: string, lineNo: number): WorkItem {
  return { id, lineNo, body: '', attempt: 1 } as unknown as WorkItem;
}

describe('results.jsonl lines read without JSON.parse', () => {
  it('say what JSON.parse says, for any id, body and usage shardline could write', () => {
    fc.assert(
      fc.property(text, text, fc.nat(), body, fc.boolean(), (runId, customId, lineNo, completion, failed) => {
        const line = failed
          ? errorResultLine(runId, item(customId, lineNo), 'http_5xx', 'boom', 503)
          : successResultLine(runId, item(customId, lineNo), {
              outcome: 'ok',
              status: 200,
              requestId: 'x',
              completion,
            } as never);
        expect(parseResultLine(line)).toEqual(reference(line));
      }),
      { numRuns: 3000 },
    );
  });

  it('take the fast path for the lines a run writes, and leave anything unsure to JSON.parse', () => {
    const ok = successResultLine('run', item('r1', 1), {
      outcome: 'ok',
      status: 200,
      requestId: 'q',
      completion: { id: 'c', usage: { prompt_tokens: 8, completion_tokens: 17, total_tokens: 25 } },
    } as never);
    expect(scanSuccessLine(ok)).toEqual({ id: 'r1', code: undefined, completionTokens: 17 });
    const escaped = successResultLine('run', item('r"1', 1), {
      outcome: 'ok',
      status: 200,
      requestId: 'q',
      completion: { usage: { completion_tokens: 3 } },
    } as never);
    expect(scanSuccessLine(escaped)).toBeUndefined();
    expect(parseResultLine(escaped)).toEqual({ id: 'r"1', code: undefined, completionTokens: 3 });
    expect(scanSuccessLine(errorResultLine('run', item('r2', 2), 'timeout_ttft', 'slow'))).toBeUndefined();
    expect(parseResultLine('{"custom_id":7}')).toBeUndefined();
    expect(parseResultLine('{"id":"x","custom_id":"r9","response":{"body":{}},"err')).toBeUndefined();
  });
});
