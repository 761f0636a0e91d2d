import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { analyze, parseProfile, run, startSim, type RunningSim, type RunStage } from '../src/index.js';
import { DirResultSink } from '../src/runner/output/dir-result-sink.js';
import { setAsideFailures } from '../src/runner/output/set-aside-failures.js';
import { retryFailedArgv, stageNotice } from '../src/cli/run-command.js';
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
    const first = await run({
      input,
      endpoint: `${flaky.url}/v1`,
      out,
      maxAttempts: 1,
      concurrency: 8,
      progress: 'off',
    });
    const failedIds = loadResults(out)
      .filter((r) => r.error)
      .map((r) => r.custom_id)
      .sort();
    expect(first.requests.failed).toBe(failedIds.length);
    expect(failedIds.length).toBeGreaterThan(5);
    const failedLines = readFileSync(join(out, 'results.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('"error":{'));

    // The outage is over: the CLI, with the flag last and no value, runs every failure again.
    const healthy = await sim();
    const r = await runCli([
      'run',
      input,
      '--endpoint',
      `${healthy.url}/v1`,
      '--out',
      out,
      '--progress',
      'off',
      '--retry-failed',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const second = JSON.parse(r.stdout) as {
      requests: { rerun: number; skipped: number; succeeded: number; failed: number };
    };
    expect(second.requests).toMatchObject({
      rerun: failedIds.length,
      skipped: 60 - failedIds.length,
      succeeded: failedIds.length,
      failed: 0,
    });
    expect(r.stderr).toContain(`${failedIds.length} failed earlier, run again`);
    expect(r.stderr).toContain(
      `shardline: set ${failedIds.length} failed results aside in retried.jsonl to run them again\n`,
    );

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
    const third = await run({ input, endpoint: `${healthy.url}/v1`, out, progress: 'off', retryFailed: 'all' });
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
    const errored = before
      .filter((x) => x.error?.code === 'http_5xx')
      .map((x) => x.custom_id)
      .sort();
    expect(limited.length).toBeGreaterThan(3);
    expect(errored.length).toBeGreaterThan(3);

    const healthy = await sim();
    const stages: RunStage[] = [];
    const s = await run(
      { input, endpoint: `${healthy.url}/v1`, out, progress: 'off', retryFailed: 'http_429,timeout_total' },
      { onStage: (st) => stages.push(st) },
    );
    // What ran before the first request, with the sizes a large job would be told about.
    expect(stages.map((st) => st.stage)).toEqual(['hash_input', 'read_results', 'set_aside']);
    expect(stages[0]).toEqual({ stage: 'hash_input', bytes: readFileSync(input).length });
    expect(stages[2]).toEqual({ stage: 'set_aside', moved: limited.length, kept: errored.length });
    expect(s.requests).toMatchObject({ rerun: limited.length, succeeded: limited.length, failed: 0 });
    const after = readLines(join(out, 'results.jsonl'));
    expect(after).toHaveLength(80);
    expect(after.filter((x) => x.error?.code === 'http_429')).toHaveLength(0);
    expect(
      after
        .filter((x) => x.error?.code === 'http_5xx')
        .map((x) => x.custom_id)
        .sort(),
    ).toEqual(errored);
    expect(readLines(join(out, 'retried.jsonl')).map((x) => x.error?.code)).toEqual(limited.map(() => 'http_429'));
    const report = await analyze([out]);
    expect(report.requests).toMatchObject({ total: 80, failed: errored.length });
    expect(report.detail.failure_causes).toEqual({ http_5xx: errored.length });
  });

  it('--fail-fast stops a run whose every request is refused, and --retry-failed then finishes it', async () => {
    const dir = tempDir();
    const out = join(dir, 'out');
    const input = writeInput(dir, 300);
    const server = await sim();
    // The server's root instead of its API base URL: every request gets 404.
    const r = await runCli([
      'run',
      input,
      '--endpoint',
      server.url,
      '--out',
      out,
      '--concurrency',
      '4',
      '--progress',
      'off',
    ]);
    expect(r.code, r.stderr).toBe(1);
    const summary = JSON.parse(r.stdout) as {
      status: string;
      requests: { failed: number; succeeded: number };
      error: string;
      hints: string[];
    };
    expect(summary.status).toBe('failed');
    expect(summary.requests.succeeded).toBe(0);
    // Stopped once 20 had failed: what was in flight then finished, nothing more was sent.
    expect(summary.requests.failed).toBeGreaterThanOrEqual(20);
    expect(summary.requests.failed).toBeLessThan(60);
    expect(summary.error).toMatch(
      new RegExp(
        String.raw`^the first \d+ requests to finish all failed with HTTP 404 \(\d+\): ` +
          String.raw`stopped before sending the rest \(--fail-fast\)`,
      ),
    );
    expect(r.stderr).toContain('shardline: error: the first');
    expect(summary.hints.some((h) => h.includes('--endpoint is the API base URL'))).toBe(true);
    expect(loadResults(out).length).toBe(summary.requests.failed);
    expect(ofType(loadEvents(out), 'attempt_start').length).toBeLessThan(60);

    // Fixed: the failures run again and the rest for the first time; one result per line.
    const fixed = await run({
      input,
      endpoint: `${server.url}/v1`,
      out,
      progress: 'off',
      retryFailed: true,
      concurrency: 16,
    });
    expect(fixed.status).toBe('finished');
    expect(fixed.requests).toMatchObject({ rerun: summary.requests.failed, succeeded: 300, failed: 0 });
    const results = loadResults(out);
    expect(results).toHaveLength(300);
    expect(results.every((x) => x.error === null)).toBe(true);

    // Switched off, a refused run goes to the end (exit 3).
    const all = await runCli([
      'run',
      writeInput(dir, 30, {}, 'b.jsonl'),
      '--endpoint',
      server.url,
      '--out',
      join(dir, 'off'),
      '--fail-fast',
      '0',
      '--progress',
      'off',
    ]);
    expect(all.code).toBe(3);
    expect(JSON.parse(all.stdout).requests.failed).toBe(30);
  });

  it('says what is wrong when there is nothing to retry or a cause is misspelt (exit 2)', async () => {
    const dir = tempDir();
    const input = writeInput(dir, 2);
    const fresh = await runCli([
      'run',
      input,
      '--endpoint',
      'http://127.0.0.1:9/v1',
      '--out',
      join(dir, 'new'),
      '--retry-failed',
    ]);
    expect(fresh.code).toBe(2);
    expect(fresh.stderr).toContain('Nothing to retry');
    expect(existsSync(join(dir, 'new', 'results.jsonl'))).toBe(false);
    // Before the input, the flag does not take the input's path for its causes.
    const first = await runCli([
      'run',
      '--retry-failed',
      input,
      '--endpoint',
      'http://127.0.0.1:9/v1',
      '--out',
      join(dir, 'new'),
    ]);
    expect(first.code).toBe(2);
    expect(first.stderr).toContain('Nothing to retry');
    expect(retryFailedArgv(['run', '--retry-failed', 'in.jsonl'])).toEqual(['run', '--retry-failed=all', 'in.jsonl']);
    expect(retryFailedArgv(['run', '--retry-failed', 'data/in', '--out', 'o'])).toEqual([
      'run',
      '--retry-failed=all',
      'data/in',
      '--out',
      'o',
    ]);
    expect(retryFailedArgv(['run', 'in.jsonl', '--retry-failed', 'http_5xx,timeout_total'])).toEqual([
      'run',
      'in.jsonl',
      '--retry-failed',
      'http_5xx,timeout_total',
    ]);
    expect(retryFailedArgv(['run', 'in.jsonl', '--retry-failed', '--out', 'o'])).toEqual([
      'run',
      'in.jsonl',
      '--retry-failed',
      '--out',
      'o',
    ]);
    const typo = await runCli([
      'run',
      input,
      '--endpoint',
      'http://127.0.0.1:9/v1',
      '--out',
      join(dir, 'new'),
      '--retry-failed',
      'http_500',
    ]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/--retry-failed.*http_500/);
    expect(typo.stderr).toContain('http_5xx');
  });
});

describe('start-up notices', () => {
  it('speaks of reading only when it takes a while, and always of failures set aside', () => {
    expect(stageNotice({ stage: 'hash_input', bytes: 10_000_000 })).toBeUndefined();
    expect(stageNotice({ stage: 'hash_input', bytes: 2_100_000_000 })).toBe(
      'hashing the input (2.1 GB), so that a resume can tell whether it changed…',
    );
    expect(stageNotice({ stage: 'read_results', bytes: 100_000_000 })).toBeUndefined();
    expect(stageNotice({ stage: 'read_results', bytes: 5_000_000_000 })).toBe(
      'reading the earlier results in --out (5.0 GB) to skip what is done…',
    );
    expect(stageNotice({ stage: 'set_aside', moved: 12, kept: 3 })).toBe(
      'set 12 failed results aside in retried.jsonl to run them again (3 failures of other causes kept)',
    );
    expect(stageNotice({ stage: 'set_aside', moved: 0, kept: 3 })).toBe(
      'no failed results with the causes asked for (3 others kept)',
    );
    expect(stageNotice({ stage: 'set_aside', moved: 0, kept: 0 })).toBe('no failed results to run again');
  });
});

describe('setAsideFailures', () => {
  const ok = (id: string) =>
    JSON.stringify({
      id: `b_${id}`,
      custom_id: id,
      response: { status_code: 200, request_id: null, body: {} },
      error: null,
    });
  const failed = (id: string, code: string) =>
    JSON.stringify({ id: `b_${id}`, custom_id: id, response: null, error: { code, message: 'x' } });

  it('moves the asked-for failures, keeps the rest in order, and drops a torn last line', async () => {
    const dir = tempDir();
    const results = join(dir, 'results.jsonl');
    // A long success (over the input's 1 MiB line limit) must survive the rewrite too.
    const long = JSON.stringify({
      id: 'b_long',
      custom_id: 'long',
      response: { status_code: 200, request_id: null, body: { text: 'x'.repeat(1_500_000) } },
      error: null,
    });
    writeFileSync(
      results,
      [ok('a'), failed('b', 'http_5xx'), long, failed('c', 'http_4xx'), failed('d', 'http_5xx')].join('\n') +
        '\n{"id":"b_e","custom_id":"e","resp',
    );
    expect(await setAsideFailures(results, ['http_5xx'])).toEqual({ moved: 2, kept: 1 });
    expect(readFileSync(results, 'utf8')).toBe([ok('a'), long, failed('c', 'http_4xx')].join('\n') + '\n');
    expect(readFileSync(join(dir, 'retried.jsonl'), 'utf8')).toBe(
      [failed('b', 'http_5xx'), failed('d', 'http_5xx')].join('\n') + '\n',
    );
    // Then every failure left; retried.jsonl grows.
    expect(await setAsideFailures(results, 'all')).toEqual({ moved: 1, kept: 0 });
    expect(readFileSync(results, 'utf8')).toBe([ok('a'), long].join('\n') + '\n');
    expect(readLines(join(dir, 'retried.jsonl')).map((r) => r.custom_id)).toEqual(['b', 'd', 'c']);
    // Nothing to move: the file is left as it was, and no temporary file stays behind.
    expect(await setAsideFailures(results, 'all')).toEqual({ moved: 0, kept: 0 });
    expect(readFileSync(results, 'utf8')).toBe([ok('a'), long].join('\n') + '\n');
    expect(readdirSync(dir).sort()).toEqual(['results.jsonl', 'retried.jsonl']);
    expect(await setAsideFailures(join(dir, 'none.jsonl'), 'all')).toEqual({ moved: 0, kept: 0 });
  });
});

describe('results read back on resume', () => {
  it("counts a result line over the input's 1 MiB limit as done, so its request is not run twice", async () => {
    const dir = tempDir();
    const long = JSON.stringify({
      id: 'b_long',
      custom_id: 'long',
      response: { status_code: 200, request_id: null, body: { text: 'x'.repeat(1_500_000) } },
      error: null,
    });
    writeFileSync(
      join(dir, 'results.jsonl'),
      `${long}\n${JSON.stringify({
        id: 'b_s',
        custom_id: 'short',
        response: null,
        error: { code: 'http_5xx', message: 'x' },
      })}\n`,
    );
    const sink = new DirResultSink(dir);
    try {
      expect([...(await sink.doneIds())].sort()).toEqual(['long', 'short']);
    } finally {
      await sink.close();
    }
  });
});
