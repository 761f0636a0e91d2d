import fc from 'fast-check';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EVENT_TYPE_CODES, FlatEvent, fillFromObject } from '../src/events/flat-event.js';
import { readFlatEvents } from '../src/events/flat-event-reader.js';
import { decodeFlatLine } from '../src/events/flat-line-decoder.js';
import { IdInterner } from '../src/events/id-interner.js';
import { tempDir } from './helpers/run-dir.js';

const FIELDS = [
  'ts',
  'shard',
  'type',
  'attempt',
  'attempts',
  'status',
  'outcome',
  'completionTokens',
  'promptTokens',
  'lastTokenTs',
  'connectMs',
  'delayMs',
  'loopLagMs',
  'cpuMs',
  'pid',
  'concurrency',
  'cpuUserMs',
  'cpuSystemMs',
  'tokensEstimated',
  'cause',
  'error',
  'run',
] as const;

/** What a decoded event says, as a plain object with the id as a string. */
function view(ev: FlatEvent): Record<string, unknown> {
  const out: Record<string, unknown> = Object.fromEntries(FIELDS.map((k) => [k, ev[k]]));
  out.id = ev.hasId ? Buffer.from(ev.idBuf.subarray(ev.idStart, ev.idEnd)).toString('utf8') : null;
  return out;
}

/** Decode a line both ways: the byte fast path (if it takes the line) and JSON.parse. */
function both(line: string): {
  fast: Record<string, unknown> | 'fallback';
  slow: Record<string, unknown> | 'not-an-event';
} {
  const buf = Buffer.from(line);
  const a = new FlatEvent();
  const fast = decodeFlatLine(buf, 0, buf.length, a) === buf.length ? view(a) : 'fallback';
  const b = new FlatEvent();
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    parsed = undefined;
  }
  const slow = fillFromObject(parsed, b) ? view(b) : 'not-an-event';
  return { fast, slow };
}

const numberish = fc.oneof(
  fc.integer({ min: -1e9, max: 1e9 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -0, 1795780800010.344, 0.1, 1e21, 1e-7, 2 ** 53 + 2, 2 ** 60 + 2 ** 10),
);
const stringish = fc.oneof(
  fc.string(),
  fc.constantFrom('r1', 'ok', 'error', 'succeeded', 'http_429', 'é"\\\n', '{x}', 'a,b:c'),
);
const anyValue = fc.oneof(numberish, stringish, fc.boolean(), fc.constant(null), fc.constant({ nested: [1] }));
const knownKeys = [
  'ts',
  'shard',
  'type',
  'id',
  'attempt',
  'attempts',
  'status',
  'outcome',
  'cause',
  'error',
  'run',
  'completion_tokens',
  'prompt_tokens',
  'last_token_ts',
  'connect_ms',
  'delay_ms',
  'loop_lag_ms',
  'cpu_ms',
  'pid',
  'concurrency',
  'cpu_user_ms',
  'cpu_system_ms',
  'tokens_estimated',
  'v',
  'line',
];

/** Events shaped as the writer writes them: v, ts, run, shard, type, then payload fields. */
const writerEvent = fc.record({
  ts: numberish,
  run: stringish,
  shard: fc.integer({ min: -1, max: 64 }),
  type: fc.oneof(fc.constantFrom(...EVENT_TYPE_CODES), fc.string()),
  payload: fc.dictionary(fc.oneof(fc.constantFrom(...knownKeys), fc.string()), anyValue, { maxKeys: 8 }),
});

describe('flat line decoder agrees with JSON.parse', () => {
  it('on writer-shaped events with every value type (property)', () => {
    let fastPath = 0;
    fc.assert(
      fc.property(writerEvent, ({ ts, run, shard, type, payload }) => {
        const line = JSON.stringify({ v: 1, ts, run, shard, type, ...payload });
        const { fast, slow } = both(line);
        if (fast === 'fallback') return;
        fastPath++;
        expect(fast).toEqual(slow);
      }),
      { numRuns: 3000 },
    );
    // The comparison is only worth something if most lines took the fast path.
    expect(fastPath).toBeGreaterThan(500);
  });

  it('on arbitrary flat objects with duplicate and misplaced keys (property)', () => {
    const pairs = fc.array(fc.tuple(fc.constantFrom(...knownKeys), anyValue), { maxLength: 12 });
    fc.assert(
      fc.property(pairs, (kv) => {
        // Built by hand so duplicate keys survive (JSON.parse keeps the last).
        const line = `{${kv.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`;
        const { fast, slow } = both(line);
        if (fast !== 'fallback') expect(fast).toEqual(slow);
      }),
      { numRuns: 3000 },
    );
  });

  it('takes the writer’s own lines on the fast path, exactly', () => {
    const lines = [
      '{"v":1,"ts":1795780800010.344,"run":"r","shard":0,"type":"attempt_start","id":"req-1","attempt":1}',
      '{"v":1,"ts":1795780800410.5,"run":"r","shard":2,"type":"attempt_end","id":"req-1","attempt":1,"outcome":"ok",' +
        '"status":200,"completion_tokens":128,"prompt_tokens":40,"last_token_ts":1795780800410.25,' +
        '"tokens_estimated":true}',
      '{"v":1,"ts":1795780800411,"run":"r","shard":-1,"type":"request_end","id":"é-1","outcome":"failed",' +
        '"attempts":3,"completion_tokens":0,"prompt_tokens":0,"cause":"http_5xx"}',
      '{"v":1,"ts":1795780801000,"run":"r","shard":1,"type":"gauge","backlog":3,"in_flight":16,"limit":16,' +
        '"loop_lag_ms":0.75,"conns_open":16,"cpu_ms":12.5}',
      '{"ts":1e3,"type":"enqueue","id":"x","connect_ms":-2.5E-7}',
    ];
    for (const line of lines) {
      const { fast, slow } = both(line);
      expect(fast).not.toBe('fallback');
      expect(fast).toEqual(slow);
    }
    const { fast } = both(lines[1]!);
    expect(fast).toMatchObject({
      ts: 1795780800410.5,
      shard: 2,
      type: EVENT_TYPE_CODES.indexOf('attempt_end') + 1,
      id: 'req-1',
      attempt: 1,
      outcome: 1,
      status: 200,
      completionTokens: 128,
      promptTokens: 40,
      lastTokenTs: 1795780800410.25,
      tokensEstimated: true,
    });
  });

  it('hands escapes, nesting, whitespace and torn lines to JSON.parse', () => {
    for (const line of [
      '{"v":1,"ts":1,"run":"r","shard":0,"type":"attempt_end","id":"a\\"b","outcome":"error"}',
      '{"v":1,"ts":1,"run":"r","shard":-1,"type":"run_start","config":{"a":1}}',
      '{ "ts": 1, "type": "enqueue" }',
      '{"ts":1,"type":"enqueue","id":"abc',
      '{"ts":1,"type":"enqueue"}{"ts":2,"type":"enqueue"}',
    ]) {
      const buf = Buffer.from(line);
      expect(decodeFlatLine(buf, 0, buf.length, new FlatEvent()), line).not.toBe(buf.length);
    }
  });
});

describe('id interner', () => {
  it('gives each distinct id one dense index, across growth and hash collisions', () => {
    const ids = new IdInterner(16);
    const names = Array.from({ length: 5000 }, (_, i) => (i % 7 === 0 ? `é-${i}` : `req-${i}`));
    const first = names.map((n) => ids.internString(n));
    expect(first).toEqual(names.map((_, i) => i));
    const again = names.map((n) => {
      const b = Buffer.from(`xx${n}yy`);
      return ids.intern(b, 2, b.length - 2);
    });
    expect(again).toEqual(first);
    expect(ids.size).toBe(5000);
    expect(names.every((n, i) => ids.name(i) === n)).toBe(true);
  });
});

describe('flat event reader', () => {
  it('merges files by time, reads lines across window edges, counts torn and bad lines', async () => {
    const dir = tempDir('sl-flat-');
    const line = (ts: number, id: string) => `{"v":1,"ts":${ts},"run":"r","shard":0,"type":"enqueue","id":"${id}"}\n`;
    // A long id forces lines longer than the 64-byte window used below.
    const long = 'x'.repeat(200);
    writeFileSync(join(dir, 'a.jsonl'), line(1, 'a1') + line(4, long) + 'not json\n\n' + line(6, 'a3'));
    writeFileSync(join(dir, 'b.jsonl'), line(2, 'b1') + line(4, 'b2') + line(5, 'b3') + '{"v":1,"ts":7,"run":"r","sh');
    const files = ['a.jsonl', 'b.jsonl'].map((f) => ({ path: join(dir, f), rel: f, runDir: dir }));
    const seen: [number, string][] = [];
    const stats = await readFlatEvents(files, (e) => seen.push([e.ts, String(view(e).id)]), 64);
    // A file is drained while its events are not later than every other file's next one.
    expect(seen).toEqual([
      [1, 'a1'],
      [2, 'b1'],
      [4, 'b2'],
      [4, long],
      [5, 'b3'],
      [6, 'a3'],
    ]);
    expect(stats.events).toBe(6);
    expect(stats.badLines).toBe(2);
  });
});
