import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatProgress } from '../src/cli/progress-line.js';
import { findKnee, type SweepStage } from '../src/diagnose/knee.js';
import { OutputWriteError } from '../src/errors.js';
import { hashFile } from '../src/events/hashing.js';
import { earliest, earliestOthers, mergeInOrder, type MergeHead } from '../src/events/merge-order.js';
import type { ProgressSnapshot } from '../src/runner/coordinator.js';
import { misconfiguredHalt, newRunTotals, tallyDone } from '../src/runner/run-totals.js';
import { createRng } from '../src/util/rng.js';
import { dropTornTail } from '../src/util/torn-tail.js';
import { outputWriteError, writeFully } from '../src/util/write-fully.js';
import { tempDir } from './helpers/run-dir.js';

// Pure helpers, each against hand-worked cases.

const stage = (level: number, tpm: number, ttftP95Ms: number | null, retryRate = 0): SweepStage => ({
  level,
  dir: `c${level}`,
  tpm,
  ttftP95Ms,
  ttftP99Ms: ttftP95Ms === null ? null : ttftP95Ms * 1.2,
  retryRate,
  successRate: 1,
});

describe('the knee of a sweep', () => {
  it('takes the lowest level within 3% of the best throughput that meets the derived SLO', () => {
    const k = findKnee([
      stage(1, 10_000, 100),
      stage(2, 19_000, 110),
      stage(4, 30_000, 150),
      stage(8, 30_500, 280),
      stage(16, 30_600, 600),
    ]);
    // SLO 3 × 100 = 300 ms: 16 misses it; 8 has the best fit throughput, 4 is within 3% of it.
    expect(k).toMatchObject({ level: 4, sloTtftP95Ms: 300, sloDerived: true });
    expect(k.reasons.map((r) => r.level)).toEqual([1, 2, 4, 8, 16]);
    expect(k.reasons[2]!.reason).toMatch(/^chosen/);
    expect(k.reasons[3]!.reason).toBe('only 1.7% more throughput than 4 (within 3%): more in flight would only queue');
    expect(k.reasons[4]!.reason).toBe('TTFT p95 600 ms over the SLO (300 ms)');
    expect(k.reasons[0]!.reason).toBe('66.7% less throughput than 4');
    expect(k.why).toMatch(/^30,000 tokens\/min with TTFT p95 150 ms ≤ 300 ms \(3 × the lightest stage's/);
  });

  it('holds a given SLO, leaves out stages retrying over 5%, and says so when none fits', () => {
    const k = findKnee([stage(4, 30_000, 150, 0.2), stage(8, 31_000, 180, 0.01), stage(16, 40_000, 400)], 200);
    expect(k).toMatchObject({ level: 8, sloTtftP95Ms: 200, sloDerived: false });
    expect(k.reasons[0]!.reason).toBe('20.0% retries, over 5%');
    const none = findKnee([stage(4, 1, 500), stage(8, 2, null)], 100);
    expect(none.level).toBeNull();
    expect(none.why).toBe('no stage kept TTFT p95 ≤ 100 ms with under 5% retries');
    expect(none.reasons[1]!.reason).toBe('TTFT p95 – over the SLO (100 ms)');
  });

  it('calls a higher level that lost throughput what it is', () => {
    const k = findKnee([stage(4, 30_000, 100), stage(8, 27_000, 120)]);
    expect(k.level).toBe(4);
    expect(k.reasons[1]!.reason).toBe('10.0% less throughput than 4: more in flight gained nothing');
  });
});

describe('run totals', () => {
  it('tallies successes and failures by cause and status, keeping the first message per status', () => {
    const t = newRunTotals();
    tallyDone(t, { outcome: 'succeeded', attempts: 2, promptTokens: 10, completionTokens: 20 });
    tallyDone(t, {
      outcome: 'failed',
      attempts: 5,
      promptTokens: 0,
      completionTokens: 0,
      cause: 'http_5xx',
      status: 503,
      error: 'first',
    });
    tallyDone(t, {
      outcome: 'failed',
      attempts: 1,
      promptTokens: 0,
      completionTokens: 0,
      cause: 'http_5xx',
      status: 503,
      error: 'second',
      retryAfterTooLongMs: 9000,
    });
    tallyDone(t, { outcome: 'failed', attempts: 1, promptTokens: 0, completionTokens: 0 });
    expect(t).toMatchObject({
      succeeded: 1,
      failed: 3,
      attempts: 9,
      promptTokens: 10,
      completionTokens: 20,
      causes: { http_5xx: 2, unknown: 1 },
      statuses: { 503: 2 },
      statusErrors: { 503: 'first' },
      retryAfterTooLong: 1,
      retryAfterTooLongMaxMs: 9000,
    });
  });

  it('halts when the first N to finish all failed with 401/403/404, and only then', () => {
    const refused = (status: number) => ({
      outcome: 'failed' as const,
      attempts: 1,
      promptTokens: 0,
      completionTokens: 0,
      cause: 'http_4xx' as const,
      status,
    });
    const t = newRunTotals();
    tallyDone(t, refused(401));
    tallyDone(t, refused(404));
    expect(misconfiguredHalt(t, 3)).toBeUndefined();
    tallyDone(t, refused(401));
    expect(misconfiguredHalt(t, 3)).toMatch(
      /^the first 3 requests to finish all failed with HTTP 401 \(2\), 404 \(1\)/,
    );
    expect(misconfiguredHalt(t, 0)).toBeUndefined();
    const mixed = newRunTotals();
    for (const s of [401, 401, 500]) tallyDone(mixed, refused(s));
    expect(misconfiguredHalt(mixed, 3)).toBeUndefined();
    const oneOk = newRunTotals();
    tallyDone(oneOk, { outcome: 'succeeded', attempts: 1, promptTokens: 1, completionTokens: 1 });
    for (const s of [401, 401, 401]) tallyDone(oneOk, refused(s));
    expect(misconfiguredHalt(oneOk, 3)).toBeUndefined();
  });
});

describe('the progress line', () => {
  const base: ProgressSnapshot = {
    done: 1234,
    total: 5000,
    tpm: 45_678,
    inFlight: 12,
    limit: 16,
    backlog: 40,
    inBackoff: 0,
    retries: 3,
    failed: 1,
    ttftP95Ms: 123.4,
    elapsedMs: 61_500,
  };
  it('says done/total, TPM, in-flight/limit, backlog, retries, failures and TTFT p95', () => {
    expect(formatProgress(base)).toMatch(
      new RegExp(
        String.raw`^\[62s\] 1,234\/5,000 done · \S+ tok\/min \(60s\) · ` +
          String.raw`in-flight 12\/16 · backlog 40 · retries 3 · failed 1 · TTFT p95 123 ms$`,
      ),
    );
  });
  it('says what of the backlog waits out a backoff, an unknown total, and an endpoint down', () => {
    const line = formatProgress({
      ...base,
      total: undefined,
      inBackoff: 30,
      ttftP95Ms: undefined,
      endpointDownSinceMs: Date.parse('2026-12-06T10:00:05Z'),
      endpointDownS: 12.4,
    });
    expect(line).toContain('1,234/? done');
    expect(line).toContain('backlog 40 (30 in backoff)');
    expect(line).toContain('TTFT p95 –');
    expect(line).toMatch(/endpoint down since 10:00:05Z \(12s\), dispatch paused$/);
  });
});

describe('merging event files by time', () => {
  interface Head extends MergeHead {
    ev: { ts: number };
    name: string;
    rest: number[];
  }
  const head = (name: string, ts: number[]): Head => ({ name, ev: { ts: ts[0]! }, rest: ts.slice(1) });

  it('picks the earliest head (the first of equals) and the bound to drain it to', () => {
    const heads = [head('a', [5]), head('b', [3]), head('c', [3]), head('d', [9])];
    expect(earliest(heads)).toBe(1);
    expect(earliestOthers(heads, 1)).toBe(3);
    expect(earliestOthers([head('a', [1])], 0)).toBe(Infinity);
  });

  it('emits every event of every file in time order, refilling heads that need more read', async () => {
    const files = [head('a', [1, 4, 4, 9]), head('b', [2, 3, 10]), head('c', [0, 8])];
    const out: [string, number][] = [];
    let refills = 0;
    await mergeInOrder(
      files,
      (h) => out.push([h.name, h.ev.ts]),
      (h) => {
        // Half the time say more must be read first, as a reader at the end of its buffer does.
        if (h.rest.length === 0) return false;
        if (h.rest.length % 2 === 0) return undefined;
        h.ev = { ts: h.rest.shift()! };
        return true;
      },
      (h) => {
        refills++;
        h.ev = { ts: h.rest.shift()! };
        return Promise.resolve(true);
      },
    );
    expect(out.map(([, ts]) => ts)).toEqual([0, 1, 2, 3, 4, 4, 8, 9, 10]);
    expect(out.filter(([n]) => n === 'a').map(([, ts]) => ts)).toEqual([1, 4, 4, 9]);
    expect(refills).toBeGreaterThan(0);
  });
});

describe('seeded random numbers', () => {
  it('repeat for a seed, differ between seeds, and are uniform on [0, 1)', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const xs = Array.from({ length: 20_000 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs.slice(0, 5));
    expect(c()).not.toBe(xs[0]);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.49);
    expect(mean).toBeLessThan(0.51);
    // Ten equal bins each hold about a tenth.
    const bins = new Array<number>(10).fill(0);
    for (const x of xs) bins[Math.floor(x * 10)]!++;
    for (const n of bins) expect(Math.abs(n - 2000)).toBeLessThan(200);
  });
});

describe('files of the run', () => {
  it('hashes a file as sha256 would, counting lines with or without a final newline', async () => {
    const dir = tempDir();
    const path = join(dir, 'in.jsonl');
    const text = '{"a":1}\n{"b":2}\n{"c":3}';
    writeFileSync(path, text);
    expect(await hashFile(path)).toEqual({
      sha256: createHash('sha256').update(text).digest('hex'),
      bytes: Buffer.byteLength(text),
      lines: 3,
    });
    writeFileSync(path, `${text}\n`);
    expect((await hashFile(path)).lines).toBe(3);
    writeFileSync(path, '');
    expect(await hashFile(path)).toMatchObject({ bytes: 0, lines: 0 });
  });

  it('drops a torn last line and nothing else', () => {
    const dir = tempDir();
    const path = join(dir, 'e.jsonl');
    for (const [before, after] of [
      ['{"a":1}\n{"b":', '{"a":1}\n'],
      ['{"a":1}\n', '{"a":1}\n'],
      ['no newline at all', ''],
      ['', ''],
    ]) {
      writeFileSync(path, before!);
      const fd = openSync(path, 'a+');
      dropTornTail(fd);
      closeSync(fd);
      expect(readFileSync(path, 'utf8')).toBe(after);
    }
  });

  it('writes whole text, and names the file, the reason and what to do when a write is refused', () => {
    const dir = tempDir();
    const path = join(dir, 'r.jsonl');
    const fd = openSync(path, 'a');
    writeFully(fd, 'é'.repeat(70_000), path);
    closeSync(fd);
    expect(readFileSync(path, 'utf8')).toHaveLength(70_000);
    const full = outputWriteError('/x/results.jsonl', Object.assign(new Error('nope'), { code: 'ENOSPC' }));
    expect(full).toBeInstanceOf(OutputWriteError);
    expect(full.message).toBe(
      'cannot write /x/results.jsonl: no space left on device (ENOSPC). The run stopped with nothing half-recorded: ' +
        'free some space (or choose an --out on a disk with room) and run the same command again; it resumes where ' +
        'it stopped',
    );
    expect(outputWriteError('/x/r', Object.assign(new Error('ro'), { code: 'EROFS' })).message).toMatch(
      /read-only file system \(EROFS\)\. .*make the output directory writable/,
    );
    expect(outputWriteError('/x/r', new Error('odd')).message).toMatch(/^cannot write \/x\/r: odd\. /);
    // A closed descriptor: the error comes out as an OutputWriteError too, not a raw exception.
    expect(() => writeFully(fd, 'x\n', path)).toThrow(OutputWriteError);
  });
});
