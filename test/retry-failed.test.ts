import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { analyze, parseProfile, run, startSim, type RunningSim } from '../src/index.js';
import { runCli } from './helpers/cli.js';
import { loadEvents, loadResults, ofType, tempDir, writeInput } from './helpers/run-dir.js';

let sims: RunningSim[] = [];
afterEach(async () => {
  await Promise.all(sims.map((s) => s.close()));
  sims = [];
});

async function sim(faults: Record<string, unknown> = {}): Promise<RunningSim> {
  const s = await startSim({ profile: parseProfile({ base: 'fast', faults }), seed: 11 });
  sims.push(s);
  return s;
}

type ResultLine = { custom_id: string; error: { code: string } | null };
const readLines = (path: string): ResultLine[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as ResultLine);

describe('--retry-failed: run the failures of an earlier run again', () => {
  it('moves every failed result aside, runs those requests again, and keeps one result per line', async () => {
    const dir = tempDir();
    const out = join(dir, 'out');
    const input = writeInput(dir, 60);
    // One attempt each against a server failing ~half its requests: an outage the retries did not ride out.
    const flaky = await sim({ errors: { p_500: 0.5 } });
    const first = await run({ input, endpoint: `${flaky.url}/v1`, out, maxAttempts: 1, concurrency: 8, progress: 'off' });
    const failedIds = loadResults(out).filter((r) => r.error).map((r) => r.custom_id).sort();
    expect(first.requests.failed).toBe(failedIds.length);
    expect(failedIds.length).toBeGreaterThan(5);
    const failedLines = readFileSync(join(out, 'results.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"error":{'));

    // The outage is over: the CLI, with the flag last and no value, runs every failure again.
    const healthy = await sim();
    const r = await runCli(['run', input, '--endpoint', `${healthy.url}/v1`, '--out', out, '--progress', 'off', '--retry-failed']);
    expect(r.code, r.stderr).toBe(0);
    const second = JSON.parse(r.stdout) as { requests: { rerun: number; skipped: number; succeeded: number; failed: number } };
    expect(second.requests).toMatchObject({ rerun: failedIds.length, skipped: 60 - failedIds.length, succeeded: failedIds.length, failed: 0 });
    expect(r.stderr).toContain(`${failedIds.length} failed earlier, run again`);

    // One result per input line, all successes; the old failures are kept, verbatim, in retried.jsonl.
    const results = loadResults(out);
    expect(results).toHaveLength(60);
    expect(new Set(results.map((x) => x.custom_id)).size).toBe(60);
    expect(results.every((x) => x.error === null)).toBe(true);
    expect(readFileSync(join(out, 'retried.jsonl'), 'utf8').split('\n').filter(Boolean)).toEqual(failedLines);

    // The events keep both lives of each re-run request, and the report counts its last outcome.
    const ends = ofType(loadEvents(out), 'request_end');
    expect(ends).toHaveLength(60 + failedIds.length);
    expect(ofType(loadEvents(out), 'run_start').map((e) => e.rerun)).toEqual([undefined, failedIds.length]);
    const report = await analyze([out]);
    expect(report.requests).toMatchObject({ total: 60, succeeded: 60, failed: 0 });
    expect(report.detail.failure_causes).toEqual({});

    // Nothing failed now: running it again has nothing to set aside, and runs nothing.
    const third = await run({ input, endpoint: `${healthy.url}/v1`, out, progress: 'off', retryFailed: true });
    expect(third.requests).toMatchObject({ rerun: 0, skipped: 60, total: 60 });
    expect(loadResults(out)).toHaveLength(60);
  });

  it('runs again only the causes it is given, and leaves the other failures in place', async () => {
    const dir = tempDir();
    const out = join(dir, 'out');
    const input = writeInput(dir, 80);
    const mixed = await sim({ errors: { p_500: 0.3 }, rate_limit: { random_429_p: 0.3, retry_after_s: 0 } });
    await run({ input, endpoint: `${mixed.url}/v1`, out, maxAttempts: 1, concurrency: 8, progress: 'off' });
    const before = readLines(join(out, 'results.jsonl'));
    const limited = before.filter((x) => x.error?.code === 'http_429').map((x) => x.custom_id);
    const errored = before.filter((x) => x.error?.code === 'http_5xx').map((x) => x.custom_id).sort();
    expect(limited.length).toBeGreaterThan(3);
    expect(errored.length).toBeGreaterThan(3);

    const healthy = await sim();
    const s = await run({ input, endpoint: `${healthy.url}/v1`, out, progress: 'off', retryFailed: 'http_429,timeout_total' });
    expect(s.requests).toMatchObject({ rerun: limited.length, succeeded: limited.length, failed: 0 });
    const after = readLines(join(out, 'results.jsonl'));
    expect(after).toHaveLength(80);
    expect(after.filter((x) => x.error?.code === 'http_429')).toHaveLength(0);
    expect(after.filter((x) => x.error?.code === 'http_5xx').map((x) => x.custom_id).sort()).toEqual(errored);
    expect(readLines(join(out, 'retried.jsonl')).map((x) => x.error?.code)).toEqual(limited.map(() => 'http_429'));
    const report = await analyze([out]);
    expect(report.requests).toMatchObject({ total: 80, failed: errored.length });
    expect(report.detail.failure_causes).toEqual({ http_5xx: errored.length });
  });

  it('says what is wrong when there is nothing to retry or a cause is misspelt (exit 2)', async () => {
    const dir = tempDir();
    const input = writeInput(dir, 2);
    const fresh = await runCli(['run', input, '--endpoint', 'http://127.0.0.1:9/v1', '--out', join(dir, 'new'), '--retry-failed']);
    expect(fresh.code).toBe(2);
    expect(fresh.stderr).toContain('Nothing to retry');
    expect(existsSync(join(dir, 'new', 'results.jsonl'))).toBe(false);
    const typo = await runCli(['run', input, '--endpoint', 'http://127.0.0.1:9/v1', '--out', join(dir, 'new'), '--retry-failed', 'http_500']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/--retry-failed.*http_500/);
    expect(typo.stderr).toContain('http_5xx');
  });
});
