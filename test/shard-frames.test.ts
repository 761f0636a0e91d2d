import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame, FrameReader } from '../src/runner/shard/shard-frames.js';
import type { DoneItem, FromShard } from '../src/runner/ipc-messages.js';
import { JsonlAppender } from '../src/runner/output/jsonl-appender.js';
import type { ResultLine } from '../src/runner/output/result-sink.js';
import { tempDir } from './helpers/run-dir.js';

// A forked shard's messages cross a pipe as frames, result lines as raw bytes: every message must come
// out as it went in, in order, however the pipe cuts the stream.

const done = (id: string, resultLine: string): DoneItem => ({
  id,
  resultLine,
  outcome: 'succeeded',
  attempts: 1,
  completionTokens: 3,
  promptTokens: 7,
  attemptMs: 12.5,
});

const lineText = (line: ResultLine) => (typeof line === 'string' ? line : Buffer.from(line).toString());

/** The messages as they came out, with result lines as text (they arrive as bytes). */
const asText = (msgs: FromShard[]) =>
  msgs.map((m) =>
    m.t === 'done' ? { ...m, items: m.items.map((d) => ({ ...d, resultLine: lineText(d.resultLine) })) } : m,
  );

function sample(): FromShard[] {
  return [
    { t: 'ready', pid: 42 },
    { t: 'pull', n: 3, running: 60, local: 4 },
    {
      t: 'done',
      items: [
        done('a', '{"custom_id":"a","body":{"text":"naïve café — 東京 🚀"}}'),
        done('b', ''),
        done('c', `{"custom_id":"c","v":"${'x'.repeat(70_000)}"}`),
      ],
    },
    { t: 'retry', items: [{ id: 'd', attempt: 2, delayMs: 5, dueTs: 9, cause: 'http_5xx', attemptMs: 1 }] },
    { t: 'stopped' },
  ];
}

describe('shard frames', () => {
  it('carry every message and every result line byte for byte', () => {
    const sent = sample();
    const expected = structuredClone(sent);
    const got = sent.map((m) => decodeFrame(encodeFrame(m)));
    expect(asText(got)).toEqual(expected);
    const bytes = got[2]!.t === 'done' ? got[2]!.items[0]!.resultLine : '';
    expect(bytes).toBeInstanceOf(Uint8Array);
  });

  it('come out whole and in order wherever the stream is cut', () => {
    const expected = sample();
    const stream = Buffer.concat(structuredClone(expected).map(encodeFrame));
    // Cut points: every byte near each frame's edges, then random cuts through the rest.
    for (const step of [1, 3, 7, 4096, 65_536, stream.length]) {
      const got: FromShard[] = [];
      const reader = new FrameReader((m) => got.push(m));
      for (let i = 0; i < stream.length; i += step) reader.push(stream.subarray(i, i + step));
      expect(asText(got), `cut every ${step} bytes`).toEqual(expected);
      expect(reader.pending).toBe(0);
    }
  });

  it('keep a frame cut short by a dying shard out of the messages, and say a corrupt stream is corrupt', () => {
    const frame = encodeFrame({ t: 'pull', n: 1, running: 0, local: 0 });
    const got: FromShard[] = [];
    const reader = new FrameReader((m) => got.push(m));
    reader.push(frame.subarray(0, frame.length - 1));
    expect(got).toEqual([]);
    expect(reader.pending).toBe(frame.length - 1);
    expect(() => new FrameReader(() => {}).push(Buffer.alloc(8))).toThrow(/corrupt/);
  });
});

describe('results.jsonl from text and bytes', () => {
  it('holds each line once, whole, in the order appended', () => {
    const path = join(tempDir('sl-append-'), 'results.jsonl');
    const out = new JsonlAppender(path);
    out.append('{"n":1}');
    out.append(Buffer.from('{"n":2,"s":"é"}'));
    out.append(new Uint8Array(Buffer.from('{"n":3}')));
    out.flush();
    out.append('{"n":4}');
    out.close();
    expect(readFileSync(path, 'utf8')).toBe('{"n":1}\n{"n":2,"s":"é"}\n{"n":3}\n{"n":4}\n');
  });
});
