import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EventWriter } from '../src/events/event-writer.js';
import { JsonlAppender } from '../src/runner/output/jsonl-appender.js';
import { tempDir } from './helpers/run-dir.js';

const whole = '{"v":1,"ts":1,"run":"a","shard":0,"type":"shard_start","pid":1,"concurrency":2}\n';
const torn = '{"v":1,"ts":2,"run":"a","sha';

describe('a file a crash left with a torn last line', () => {
  it('event files: a resumed shard drops the fragment instead of gluing its first event onto it', () => {
    const path = join(tempDir('sl-torn-'), 'shard-000.jsonl');
    writeFileSync(path, whole + torn);
    const w = new EventWriter({ path, run: 'b', shard: 0, now: () => 3 });
    w.write('shard_start', { pid: 2, concurrency: 2 });
    w.close();
    const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
    expect(lines.map((l) => JSON.parse(l) as { run: string; type: string })).toMatchObject([
      { run: 'a', type: 'shard_start' },
      { run: 'b', type: 'shard_start' },
    ]);
  });

  it('results: the same repair, and a file without a torn line is left as it is', () => {
    const dir = tempDir('sl-torn-');
    const tornPath = join(dir, 'results.jsonl');
    writeFileSync(tornPath, `{"custom_id":"a"}\n{"custom_id":"b","respo`);
    const a = new JsonlAppender(tornPath);
    a.append('{"custom_id":"c"}');
    a.close();
    expect(readFileSync(tornPath, 'utf8')).toBe('{"custom_id":"a"}\n{"custom_id":"c"}\n');
    // A torn only line (no newline anywhere) goes entirely; a whole file is untouched.
    const only = join(dir, 'only.jsonl');
    writeFileSync(only, '{"custom_id":"x","res');
    new JsonlAppender(only).close();
    expect(readFileSync(only, 'utf8')).toBe('');
    const intact = join(dir, 'intact.jsonl');
    writeFileSync(intact, whole);
    new EventWriter({ path: intact, run: 'b', shard: 0, now: () => 3 }).close();
    expect(readFileSync(intact, 'utf8')).toBe(whole);
  });
});
