import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseProfile, run, startSim, type RunningSim } from '../src/index.js';
import { loadEvents, loadResults, ofType, tempDir, writeInput } from './helpers/run-dir.js';

let sim: RunningSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe('post-processing hook', () => {
  it('transforms results in a worker pool while dispatch goes on', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast' }) });
    const dir = tempDir();
    const hook = join(dir, 'hook.mjs');
    // CPU-bound on purpose: 40 ms of busy work per result would stall a dispatch loop that ran it.
    writeFileSync(
      hook,
      `export default function (result) {
         const until = Date.now() + 40; while (Date.now() < until) {}
         const message = result.response.body.choices[0].message;
         message.content = message.content.toUpperCase();
         return { ...result, postprocessed: true };
       }\n`,
    );
    const out = join(dir, 'out');
    const summary = await run({
      input: writeInput(dir, 30),
      endpoint: `${sim.url}/v1`,
      out,
      concurrency: 4,
      postprocess: hook,
      progress: 'off',
    });
    expect(summary.requests.succeeded).toBe(30);
    for (const r of loadResults(out)) {
      expect((r as unknown as { postprocessed: boolean }).postprocessed).toBe(true);
      expect(r.response!.body.choices[0]!.message.content).toBe(
        r.response!.body.choices[0]!.message.content.toUpperCase(),
      );
    }
    const events = loadEvents(out);
    const starts = ofType(events, 'postprocess_start');
    const ends = new Map(ofType(events, 'postprocess_end').map((e) => [e.id, e.ts]));
    expect(starts).toHaveLength(30);
    // While some hook ran, new attempts kept starting: the hook does not hold the dispatch loop.
    const attemptStarts = ofType(events, 'attempt_start').map((e) => e.ts);
    const overlapped = starts.filter((s) => attemptStarts.some((t) => t > s.ts && t < ends.get(s.id)!));
    expect(overlapped.length).toBeGreaterThan(5);
  });

  it('refuses a hook that cannot load before any request goes out', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast' }) });
    const dir = tempDir();
    const cases: [string, string, RegExp][] = [
      ['no-default.mjs', 'export const transform = (r) => r;\n', /\(its default export is missing\)/],
      ['not-a-function.mjs', 'export default 42;\n', /\(its default export is a number\)/],
      ['throws.mjs', "throw new Error('cannot find my model file');\n", /loading it failed: cannot find my model file/],
      ['syntax.mjs', 'export default (r) => {\n', /loading it failed: /],
    ];
    for (const [name, code, why] of cases) {
      const hook = join(dir, name);
      writeFileSync(hook, code);
      const attempt = run({
        input: writeInput(dir, 3),
        endpoint: `${sim.url}/v1`,
        out: join(dir, `out-${name}`),
        postprocess: hook,
        progress: 'off',
      });
      await expect(attempt).rejects.toThrow(
        /Expected `--postprocess` to be a module whose default export is a function/,
      );
      await expect(attempt).rejects.toThrow(why);
    }
    // Nothing reached the server: the check runs before the run starts.
    expect(sim.stats().requests).toBe(0);
  });

  it('a failing hook fails that request with cause postprocess_error and keeps going', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast' }) });
    const dir = tempDir();
    const hook = join(dir, 'hook.mjs');
    writeFileSync(
      hook,
      `export default (r) => { if (r.custom_id === 'req-3') throw new Error('bad row'); return r; }\n`,
    );
    const out = join(dir, 'out');
    const summary = await run({
      input: writeInput(dir, 6),
      endpoint: `${sim.url}/v1`,
      out,
      postprocess: hook,
      progress: 'off',
    });
    expect(summary.requests).toMatchObject({ succeeded: 5, failed: 1 });
    expect(summary.failure_causes).toEqual({ postprocess_error: 1 });
    const bad = loadResults(out).find((r) => r.custom_id === 'req-3')!;
    expect(bad.error!.code).toBe('postprocess_error');
    expect(bad.error!.message).toMatch(/bad row/);
  });
});

describe('open-loop arrivals (--rate)', () => {
  it('enqueues requests as a Poisson process at the given rate', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast' }) });
    const dir = tempDir();
    const out = join(dir, 'out');
    const n = 300;
    await run({
      input: writeInput(dir, n, { max_tokens: 2 }),
      endpoint: `${sim.url}/v1`,
      out,
      rate: 300,
      seed: 5,
      progress: 'off',
    });
    const ts = ofType(loadEvents(out), 'enqueue').map((e) => e.ts);
    expect(ts).toHaveLength(n);
    const gaps = ts.slice(1).map((t, i) => t - ts[i]!);
    const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
    const sd = Math.sqrt(gaps.reduce((a, g) => a + (g - mean) ** 2, 0) / gaps.length);
    // Exponential gaps: mean 1/rate (±3σ of the sample mean, σ = mean/√n), coefficient of variation ≈ 1
    // (a paced, evenly spaced sender would show ≈ 0).
    expect(Math.abs(mean - 1000 / 300)).toBeLessThan((3 * (1000 / 300)) / Math.sqrt(gaps.length));
    expect(sd / mean).toBeGreaterThan(0.75);
    expect(sd / mean).toBeLessThan(1.25);
  });
});

describe('run.json', () => {
  it('records the config without secrets, the input hash and versions', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast' }) });
    const dir = tempDir();
    const out = join(dir, 'out');
    await run({
      input: writeInput(dir, 2),
      endpoint: `${sim.url}/v1`,
      out,
      apiKey: 'sk-zzz',
      headers: ['X-Key: hidden'],
      progress: 'off',
    });
    const m = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(m.config.api_key).toBe('(set, not recorded)');
    expect(m.config.headers).toEqual(['X-Key: (not recorded)']);
    expect(m.versions.node).toBe(process.version);
    expect(m.totals.requests.succeeded).toBe(2);
    expect(m.ended_at).not.toBeNull();
  });
});

describe('progress line', () => {
  it('shows done/total, aggregate TPM, in-flight/limit, backlog, retries, failures and TTFT p95', async () => {
    const { formatProgress } = await import('../src/cli/progress-line.js');
    expect(
      formatProgress({
        done: 1234,
        total: 5000,
        tpm: 1_210_000,
        inFlight: 64,
        limit: 64,
        backlog: 256,
        inBackoff: 0,
        retries: 31,
        failed: 2,
        ttftP95Ms: 412.4,
        elapsedMs: 42_000,
      }),
    ).toBe(
      '[42s] 1,234/5,000 done · 1.21M tok/min (60s) · in-flight 64/64 · backlog 256 · retries 31 · failed 2 · TTFT ' +
        'p95 412 ms',
    );
    // Retries waiting out their backoff are said apart from the rest of the backlog.
    expect(
      formatProgress({
        done: 10,
        total: 16,
        tpm: 0,
        inFlight: 0,
        limit: 16,
        backlog: 6,
        inBackoff: 6,
        retries: 6,
        failed: 0,
        ttftP95Ms: 80,
        elapsedMs: 5_000,
      }),
    ).toBe(
      '[5s] 10/16 done · 0 tok/min (60s) · in-flight 0/16 · backlog 6 (6 in backoff) · retries 6 · failed 0 · TTFT ' +
        'p95 80 ms',
    );
    expect(
      formatProgress({
        done: 0,
        total: undefined,
        tpm: 0,
        inFlight: 0,
        limit: 16,
        backlog: 0,
        inBackoff: 0,
        retries: 0,
        failed: 0,
        ttftP95Ms: undefined,
        elapsedMs: 900,
      }),
    ).toBe('[1s] 0/? done · 0 tok/min (60s) · in-flight 0/16 · backlog 0 · retries 0 · failed 0 · TTFT p95 –');
  });
});
