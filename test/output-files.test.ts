import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../src/errors.js';
import { EventWriter } from '../src/events/event-writer.js';
import { DirResultSink } from '../src/runner/output/dir-result-sink.js';
import { acquireOutLock, LOCK_FILE } from '../src/runner/output/out-lock.js';
import { errorResultLine, successResultLine } from '../src/runner/output/result-line.js';
import { readManifest, writeManifest, type RunManifest } from '../src/runner/output/run-manifest.js';
import { RETRIED_FILE, setAsideFailures } from '../src/runner/output/set-aside-failures.js';
import type { WorkItem } from '../src/runner/ipc-messages.js';
import type { ChatCompletion } from '../src/client/stream-assembler.js';
import { tempDir } from './helpers/run-dir.js';

// The files a run keeps in --out, each through its own writer: results and rejects, the lock,
// run.json, the set-aside of failures for --retry-failed, and the event writer.

const item: WorkItem = { id: 'a1', lineNo: 3, body: '{}', stream: true, attempt: 1 };
const lines = (path: string) => readFileSync(path, 'utf8').split('\n').filter(Boolean);

describe('result lines', () => {
  it('are OpenAI Batch output lines, for a success and a failure', () => {
    const body = { id: 'c', object: 'chat.completion', choices: [] } as unknown as ChatCompletion;
    const ok = successResultLine('r1', item, {
      outcome: 'ok',
      status: 200,
      completion: body,
      requestId: 'req-9',
      firstTokenTs: 1,
      lastTokenTs: 2,
      contentChunks: 0,
    });
    expect(JSON.parse(ok)).toEqual({
      id: 'batch_req_r1_3',
      custom_id: 'a1',
      response: { status_code: 200, request_id: 'req-9', body },
      error: null,
    });
    expect(JSON.parse(errorResultLine('r1', item, 'http_5xx', 'HTTP 503: busy', 503))).toEqual({
      id: 'batch_req_r1_3',
      custom_id: 'a1',
      response: null,
      error: { code: 'http_5xx', message: 'HTTP 503: busy', status: 503 },
    });
    expect(JSON.parse(errorResultLine('r1', item, 'timeout_ttft', 'slow')).error).toEqual({
      code: 'timeout_ttft',
      message: 'slow',
    });
  });
});

describe('the result sink of a run directory', () => {
  it('appends results, starts rejects afresh on resume, and knows which ids are done', async () => {
    const dir = tempDir();
    const first = new DirResultSink(dir);
    first.writeResult('a', JSON.stringify({ custom_id: 'a', response: null, error: { code: 'x', message: 'm' } }));
    first.writeResult('b', JSON.stringify({ custom_id: 'b', response: null, error: null }));
    first.writeReject({ lineNo: 4, reason: 'invalid JSON', excerpt: '{' });
    await first.close();
    expect(lines(join(dir, 'rejects.jsonl'))).toEqual(['{"line":4,"reason":"invalid JSON","excerpt":"{"}']);
    const again = new DirResultSink(dir);
    expect([...(await again.doneIds())].sort()).toEqual(['a', 'b']);
    // The same input finds the same rejects again: the old ones are not kept twice.
    expect(readFileSync(join(dir, 'rejects.jsonl'), 'utf8')).toBe('');
    await again.close();
  });
});

describe('the --out lock', () => {
  it('lets one run in at a time and takes over a lock whose process is gone', () => {
    const dir = tempDir();
    const release = acquireOutLock(dir);
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8')).toBe(`${process.pid}\n`);
    expect(() => acquireOutLock(dir)).toThrow(ConfigError);
    expect(() => acquireOutLock(dir)).toThrow(new RegExp(`Another shardline run \\(pid ${process.pid}\\)`));
    release();
    release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    // A pid that has exited: its lock is stale.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    writeFileSync(join(dir, LOCK_FILE), `${dead.stdout}\n`);
    const again = acquireOutLock(dir);
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8')).toBe(`${process.pid}\n`);
    again();
  });
});

describe('run.json', () => {
  it('is written whole and read back, and is absent before a run', () => {
    const dir = tempDir();
    expect(readManifest(dir)).toBeUndefined();
    const m: RunManifest = {
      schema: 'shardline.run/v1',
      run_id: 'r1',
      status: 'running',
      input: { path: '/in.jsonl', sha256: 'ab', bytes: 10, lines: 1 },
      endpoint: 'http://127.0.0.1:8000/v1',
      config: { concurrency: 16 },
      versions: { shardline: '0.1.0', node: process.version, undici: '7' },
      started_at: '2026-12-06T10:00:00.000Z',
      ended_at: null,
      resumes: 0,
      totals: null,
    };
    writeManifest(dir, m);
    expect(readManifest(dir)).toEqual(m);
    writeManifest(dir, { ...m, status: 'finished', ended_at: '2026-12-06T10:01:00.000Z' });
    expect(readManifest(dir)?.status).toBe('finished');
  });
});

describe('setting failures aside for --retry-failed', () => {
  const result = (id: string, code: string | null) =>
    JSON.stringify({
      id: `batch_req_r_${id}`,
      custom_id: id,
      response: code ? null : { status_code: 200, body: {} },
      error: code ? { code, message: 'm' } : null,
    });

  it('moves the failures asked for to retried.jsonl and keeps every other line in order', async () => {
    const dir = tempDir();
    const path = join(dir, 'results.jsonl');
    writeFileSync(
      path,
      [result('a', null), result('b', 'http_5xx'), result('c', 'timeout_total'), result('d', 'http_4xx'), ''].join(
        '\n',
      ),
    );
    expect(await setAsideFailures(path, ['http_5xx', 'timeout_total'])).toEqual({ moved: 2, kept: 1 });
    expect(lines(path).map((l) => (JSON.parse(l) as { custom_id: string }).custom_id)).toEqual(['a', 'd']);
    expect(lines(join(dir, RETRIED_FILE)).map((l) => (JSON.parse(l) as { custom_id: string }).custom_id)).toEqual([
      'b',
      'c',
    ]);
    expect(await setAsideFailures(path, 'all')).toEqual({ moved: 1, kept: 0 });
    expect(lines(path)).toHaveLength(1);
    expect(lines(join(dir, RETRIED_FILE))).toHaveLength(3);
  });
});

describe('the event writer', () => {
  it('writes one JSON line per event with run, shard and type, never going back in time', () => {
    const dir = tempDir();
    const path = join(dir, 'events', 'shard-000.jsonl');
    let now = 1000.25;
    const w = new EventWriter({ path, run: 'r1', shard: 0, now: () => now });
    w.write('enqueue', { id: 'a', line: 1 });
    now = 999; // a clock that stepped back: the line keeps the file sorted
    w.write('attempt_start', { id: 'a', attempt: 1 });
    w.write('first_token', { id: 'a', attempt: 1 }, 1200.5);
    w.close();
    w.write('enqueue', { id: 'late', line: 2 });
    expect(lines(path)).toEqual([
      '{"v":1,"ts":1000.250,"run":"r1","shard":0,"type":"enqueue","id":"a","line":1}',
      '{"v":1,"ts":1000.250,"run":"r1","shard":0,"type":"attempt_start","id":"a","attempt":1}',
      '{"v":1,"ts":1200.500,"run":"r1","shard":0,"type":"first_token","id":"a","attempt":1}',
    ]);
  });

  it('flushes once its buffer is full, and drops a torn line left by a crash before appending', () => {
    const dir = tempDir();
    const path = join(dir, 'e.jsonl');
    writeFileSync(path, '{"v":1,"ts":1,"run":"r0","shard":0,"type":"enqueue","id":"x","line":1}\n{"v":1,"ts":2,"ru');
    const w = new EventWriter({ path, run: 'r1', shard: 0, now: () => 5, maxBufferBytes: 100 });
    w.write('enqueue', { id: 'b', line: 2 });
    // Over 100 bytes buffered: on disk before any timer or close.
    w.write('enqueue', { id: 'c', line: 3 });
    expect(lines(path)).toHaveLength(3);
    w.close();
    expect(lines(path).every((l) => JSON.parse(l) !== null)).toBe(true);
  });
});
