import { describe, expect, it } from 'vitest';
import type { RequestSpec } from '../src/input/request-line.js';
import { specAt, toColumns } from '../src/runner/distributed/request-columns.js';

const chat = (i: number, stream = true): RequestSpec => ({ id: `c${i}`, lineNo: i + 1, body: `{"n":${i}}`, stream });

describe('a chunk’s requests as columns', () => {
  it('gives back every request as it was: chat, several endpoints, streaming mixed', () => {
    const specs: RequestSpec[] = [
      chat(0),
      { id: 'e1', lineNo: 3, body: '{"input":["a","b"]}', stream: false, endpoint: 'embeddings', items: 2 },
      chat(2, false),
      { id: 'r3', lineNo: 7, body: '{"query":"q"}', stream: false, endpoint: 'other', path: 'rerank' },
    ];
    const cols = toColumns(specs);
    expect(cols.stream).toEqual([true, false, false, false]);
    expect(Object.keys(cols.other ?? {})).toEqual(['1', '3']);
    // Through JSON, as the chunk goes through Redis.
    const back = JSON.parse(JSON.stringify(cols)) as typeof cols;
    expect(specs.map((_, i) => specAt(back, i))).toEqual(specs);
  });

  it('writes one stream flag and no extras for a chat job, the common chunk', () => {
    const specs = Array.from({ length: 5 }, (_, i) => chat(i));
    const cols = toColumns(specs);
    expect(cols).toEqual({
      ids: ['c0', 'c1', 'c2', 'c3', 'c4'],
      lines: [1, 2, 3, 4, 5],
      bodies: specs.map((s) => s.body),
      stream: true,
    });
    expect(specs.map((_, i) => specAt(cols, i))).toEqual(specs);
    expect(toColumns([])).toEqual({ ids: [], lines: [], bodies: [], stream: true });
  });
});
