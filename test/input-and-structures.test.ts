import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KeepAliveLearner } from '../src/client/keepalive-learner.js';
import { redactRedisUrl, redisUrlSchema } from '../src/config/redis-url.js';
import { formatZodIssues } from '../src/config/zod-issues.js';
import { IdInterner } from '../src/events/id-interner.js';
import { readJsonlLines, type JsonlLine } from '../src/input/jsonl-lines.js';
import { parseRequestLine, type RejectedLine, type RequestSpec } from '../src/input/request-line.js';
import { Deque } from '../src/util/deque.js';
import { z } from 'zod';
import { tempDir } from './helpers/run-dir.js';

const line = (text: string, lineNo = 7): JsonlLine => ({ lineNo, text, bytes: Buffer.byteLength(text) });
const parse = (text: string, model?: string) => parseRequestLine(line(text), { model, maxLineBytes: 1 << 20 });
const rejected = (text: string) => parse(text) as RejectedLine;

describe('input lines', () => {
  it('reads a Batch line and a bare chat body, asking streamed requests for usage', () => {
    const batch = parse(
      JSON.stringify({
        custom_id: 'a1',
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'm', messages: [{ role: 'user', content: 'hi' }], stream_options: { x: 1 } },
      }),
    ) as RequestSpec;
    expect(batch).toMatchObject({ id: 'a1', lineNo: 7, stream: true });
    expect(JSON.parse(batch.body)).toEqual({
      model: 'm',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { x: 1, include_usage: true },
    });
    const bare = parse('{"messages":[{"role":"user","content":"x"}],"stream":false}', 'override') as RequestSpec;
    expect(bare).toMatchObject({ id: 'line-7', stream: false });
    // Not streamed: no stream options added; the run's --model replaces the body's.
    expect(JSON.parse(bare.body)).toEqual({
      messages: [{ role: 'user', content: 'x' }],
      stream: false,
      model: 'override',
    });
    expect(parse('   ')).toBeUndefined();
  });

  it.each([
    ['{"messages": [', /^invalid JSON: /],
    ['[1,2]', /^expected a JSON object$/],
    ['{"custom_id":"","body":{"messages":[1]}}', /custom_id must be a non-empty string/],
    ['{"custom_id":"a","body":[]}', /body must be an object/],
    ['{"custom_id":"a","method":"GET","body":{"messages":[1]}}', /method must be POST, got "GET"/],
    ['{"custom_id":"a","url":"/v2/embeddings","body":{"messages":[1]}}', /url must be a POST path under \/v1\//],
    ['{"custom_id":"a","url":"/v1/embeddings","body":{"messages":[1]}}', /no input: body\.input/],
    ['{"custom_id":"a","body":{"messages":[]}}', /no messages/],
    ['{"prompt":"x"}', /no messages/],
  ])('rejects %s naming why, with the line number and an excerpt', (text, reason) => {
    const r = rejected(text);
    expect(r.lineNo).toBe(7);
    expect(r.reason).toMatch(reason);
    expect(r.excerpt).toBe(text.slice(0, 200));
  });

  it('rejects an over-long line by its size without its text', () => {
    expect(parseRequestLine({ lineNo: 3, tooLong: true, bytes: 2_000_000 }, { maxLineBytes: 1 << 20 })).toEqual({
      lineNo: 3,
      reason: 'line is 2000000 bytes, over the 1048576-byte limit',
      excerpt: '',
    });
  });

  it('streams lines with their numbers: CRLF, a BOM, no final newline, and over-long lines skipped', async () => {
    const dir = tempDir();
    const path = join(dir, 'in.jsonl');
    writeFileSync(path, `\ufeff{"a":1}\r\n\n${'x'.repeat(100)}\n{"b":"é"}`);
    const lines: JsonlLine[] = [];
    for await (const l of readJsonlLines(path, 50)) lines.push(l);
    expect(lines).toEqual([
      { lineNo: 1, text: '{"a":1}', bytes: 11 },
      { lineNo: 2, text: '', bytes: 0 },
      { lineNo: 3, tooLong: true, bytes: 100 },
      { lineNo: 4, text: '{"b":"é"}', bytes: 10 },
    ]);
  });
});

describe('Deque', () => {
  it('behaves as an array queue with front insertion, across growth and wrap-around', () => {
    const d = new Deque<number>(2);
    const model: number[] = [];
    // A fixed pseudo-random sequence of operations, checked against an array after each.
    let x = 12345;
    for (let step = 0; step < 5000; step++) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      const op = x % 5;
      if (op < 2) {
        d.push(step);
        model.push(step);
      } else if (op === 2) {
        d.unshift(step);
        model.unshift(step);
      } else expect(d.shift()).toBe(model.shift());
      expect(d.length).toBe(model.length);
      expect(d.peek()).toBe(model[0]);
    }
  });
});

describe('IdInterner', () => {
  it('gives each distinct id one dense index, from bytes or strings, across rehashes', () => {
    const ids = new IdInterner(16);
    const seen = new Map<string, number>();
    for (let i = 0; i < 5000; i++) {
      const id = `req-${i % 3000}-é`;
      const bytes = Buffer.from(`xx${id}yy`);
      const idx = i % 2 ? ids.intern(bytes, 2, bytes.length - 2) : ids.internString(id);
      if (seen.has(id)) expect(idx).toBe(seen.get(id));
      else {
        expect(idx).toBe(seen.size);
        seen.set(id, idx);
      }
    }
    expect(ids.size).toBe(3000);
    expect(ids.find('req-42-é')).toBe(seen.get('req-42-é'));
    expect(ids.find('never')).toBe(-1);
    expect(ids.size).toBe(3000);
  });
});

describe('keep-alive learner', () => {
  it('stops reuse after streamed answers at the second stale connection that followed one', () => {
    const k = new KeepAliveLearner();
    expect(k.noteStale(false)).toBe(false);
    expect(k.noteStale(true)).toBe(false);
    expect(k.noReuseAfterStream).toBe(false);
    expect(k.noteStale(true)).toBe(true);
    expect(k.noReuseAfterStream).toBe(true);
    // Learnt once: later ones say nothing new.
    expect(k.noteStale(true)).toBe(false);
    expect([k.stale, k.staleAfterStreams]).toEqual([4, 2]);
  });
});

describe('config helpers', () => {
  it('accepts redis:// and rediss:// URLs and hides their password in messages', () => {
    expect(redisUrlSchema.safeParse('redis://127.0.0.1:6379').success).toBe(true);
    expect(redisUrlSchema.safeParse('rediss://u:p@host:6380/2').success).toBe(true);
    for (const bad of ['http://127.0.0.1:6379', 'redis://', '127.0.0.1:6379'])
      expect(redisUrlSchema.safeParse(bad).success, bad).toBe(false);
    expect(redactRedisUrl('redis://user:hunter2@10.0.0.5:6379/1')).toBe('redis://user:***@10.0.0.5:6379/1');
    expect(redactRedisUrl('not a url')).toBe('(unparsable URL)');
  });

  it('formats zod issues as one line each, naming the field, the value and what was expected', () => {
    const schema = z
      .object({
        n: z.coerce.number().int().min(1),
        mode: z.enum(['a', 'b']),
        name: z.string(),
        list: z.array(z.string()).min(2),
      })
      .strict();
    const input = { n: '0', mode: 'c', list: ['x'], extra: 1 };
    const r = schema.safeParse(input);
    expect(r.success).toBe(false);
    if (r.success) return;
    const text = formatZodIssues(r.error, input, (p) => `--${String(p[0])}`);
    expect(text.split('\n').sort()).toEqual(
      [
        'Expected `--n` to be a number ≥ 1, got `0`',
        'Expected `--mode` to be one of "a", "b", got `c`',
        '`--name` is required',
        'Expected `--list` to be a list with length ≥ 2, got `["x"]`',
        'Unknown field `--extra`',
      ].sort(),
    );
  });
});
