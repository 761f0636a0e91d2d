import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseProfile, run, startSim, type RunningSim } from '../src/index.js';
import { runCli } from './helpers/cli.js';
import { startRedis, type TestRedis } from './helpers/redis.js';
import { loadEvents, loadResults, ofType, tempDir } from './helpers/run-dir.js';

// Every endpoint through every way of running: several shards, the raw transport, a token budget,
// a distributed run on Redis, and the CLI's --url, report and compare.

let sim: RunningSim;
let redis: TestRedis;
beforeAll(async () => {
  [sim, redis] = await Promise.all([startSim({ profile: parseProfile({ base: 'fast' }), seed: 9 }), startRedis()]);
}, 30_000);
afterAll(async () => {
  await Promise.all([sim.close(), redis.stop()]);
});

/** `n` Batch lines round-robin over completions, embeddings, responses and chat. */
function job(dir: string, n: number, name = 'job.jsonl'): string {
  const lines = Array.from({ length: n }, (_, i) => {
    const [url, body] = [
      ['/v1/completions', { prompt: `p${i}`, max_tokens: 4 }],
      ['/v1/embeddings', { input: [`a${i}`, `b${i}`] }],
      ['/v1/responses', { input: `r${i}`, max_output_tokens: 4 }],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: `c${i}` }], max_tokens: 4 }],
    ][i % 4] as [string, object];
    return JSON.stringify({ custom_id: `r${i}`, method: 'POST', url, body });
  });
  const path = join(dir, name);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

const endpointsOf = (out: string) =>
  ofType(loadEvents(out), 'request_end').reduce<Record<string, number>>((acc, e) => {
    const k = e.endpoint ?? 'chat';
    acc[k] = (acc[k] ?? 0) + 1;
    return acc;
  }, {});

describe('every endpoint, every way of running', () => {
  it('two shards over the raw transport', async () => {
    const dir = tempDir();
    const out = join(dir, 'out');
    const s = await run({
      input: job(dir, 40),
      endpoint: `${sim.url}/v1`,
      out,
      shards: 2,
      transport: 'raw',
      progress: 'off',
    });
    expect(s.requests).toMatchObject({ succeeded: 40, failed: 0 });
    expect(endpointsOf(out)).toEqual({ completions: 10, embeddings: 10, responses: 10, chat: 10 });
    expect(loadResults(out).every((r) => r.response?.status_code === 200)).toBe(true);
  });

  it('under a token budget, an embeddings request charged its input alone', async () => {
    const dir = tempDir();
    const out = join(dir, 'out');
    const s = await run({ input: job(dir, 20), endpoint: `${sim.url}/v1`, out, tpm: 1_000_000, progress: 'off' });
    expect(s.requests.succeeded).toBe(20);
  });

  it('distributed on Redis with a local worker', async () => {
    const dir = tempDir();
    const out = join(dir, 'out');
    const s = await run({
      input: job(dir, 40),
      endpoint: `${sim.url}/v1`,
      out,
      redis: redis.url,
      localWorkers: 1,
      progress: 'off',
    });
    expect(s.requests).toMatchObject({ succeeded: 40, failed: 0 });
    expect(endpointsOf(out)).toEqual({ completions: 10, embeddings: 10, responses: 10, chat: 10 });
    const ids = loadResults(out).map((r) => r.custom_id);
    expect(new Set(ids).size).toBe(40);
  }, 60_000);

  it('from the CLI: --url for bare bodies, a bad --url named, and report and compare per endpoint', async () => {
    const dir = tempDir();
    const bare = join(dir, 'bare.jsonl');
    writeFileSync(bare, `${Array.from({ length: 12 }, (_, i) => JSON.stringify({ input: `doc ${i}` })).join('\n')}\n`);
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    const common = ['--endpoint', `${sim.url}/v1`, '--progress', 'off'];
    expect((await runCli(['run', bare, '--url', '/v1/embeddings', '--out', a, ...common])).code).toBe(0);
    expect(
      (await runCli(['run', bare, '--url', '/v1/embeddings', '--out', b, '--concurrency', '2', ...common])).code,
    ).toBe(0);
    const bad = await runCli(['run', bare, '--url', 'embeddings', '--out', join(dir, 'c'), ...common]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(
      /Expected `--url` to be a POST path under \/v1\/ such as \/v1\/embeddings, got `embeddings`/,
    );
    const report = await runCli(['report', a]);
    expect(report.stdout).toMatch(
      /^embeddings {2}12 requests \(0 failed\); [\d,]+ input tokens\/min, [\d.]+ inputs\/s/m,
    );
    const json = JSON.parse((await runCli(['report', a, '--json'])).stdout) as {
      by_endpoint: Record<string, { requests: number; ttft_ms: unknown }>;
    };
    expect(Object.keys(json.by_endpoint)).toEqual(['embeddings']);
    expect(json.by_endpoint.embeddings).toMatchObject({ requests: 12, ttft_ms: null });
    const compare = await runCli(['compare', a, b]);
    expect(compare.code).toBe(0);
    expect(compare.stdout).toMatch(/embeddings_input_tpm/);
    expect(compare.stdout).toMatch(/embeddings_latency_p95_ms/);
  });
});
