import { afterEach, describe, expect, it } from 'vitest';
import { analyze, parseProfile, run, startSim, type RunningSim } from '../src/index.js';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { loadEvents, loadResults, ofType, tempDir, writeInput } from './helpers/run-dir.js';
import { until } from './helpers/processes.js';
import { expectBooksAgree } from './helpers/books.js';

// `--endpoint` given several times: one run over three simulators of different capacities, each with
// shards of its own; one of them killed mid-run; the report split by server and naming the one that held
// the run back.

let sims: RunningSim[] = [];
afterEach(async () => {
  await Promise.all(sims.map((s) => s.close().catch(() => {})));
  sims = [];
});

/** ~3 ms a token, one token a step: a request of 16 tokens takes ~50 ms at any load below `slots`. */
const profile = (slots: number, stepMs = 3) =>
  parseProfile({ base: 'fast', slots, step_ms_base: stepMs, step_ms_per_seq: 0, tokens_per_step: 1, jitter: 0.2 });

async function threeSims(stepMs: readonly number[] = [3, 3, 3]): Promise<string[]> {
  sims = await Promise.all(stepMs.map((ms, i) => startSim({ profile: profile(4 * (i + 1), ms), seed: i + 1 })));
  return sims.map((s) => `${s.url}/v1`);
}

/** The URL of a loopback port nothing listens on (one bound and closed again). */
async function closedUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/** Requests that ended at each server, from the events: request_end by its shard's upstream_index. */
function endsByUpstream(out: string): Map<number, number> {
  const events = loadEvents(out);
  const upOf = new Map<number, number>();
  for (const e of ofType(events, 'shard_start')) upOf.set(e.shard, e.upstream_index ?? 0);
  const n = new Map<number, number>();
  for (const e of ofType(events, 'request_end')) {
    const up = upOf.get(e.shard)!;
    n.set(up, (n.get(up) ?? 0) + 1);
  }
  return n;
}

describe('several endpoints', () => {
  it('balances one run over three servers, a shard each, with figures per server that the events recount', async () => {
    const endpoints = await threeSims();
    const dir = tempDir();
    const out = join(dir, 'out');
    const n = 400;
    const s = await run({
      input: writeInput(dir, n),
      endpoint: endpoints,
      out,
      concurrency: 'auto',
      progress: 'off',
    });
    expect(s.requests.succeeded).toBe(n);
    expect(s.requests.failed).toBe(0);
    const starts = ofType(loadEvents(out), 'shard_start').sort((a, b) => a.shard - b.shard);
    expect(starts.map((e) => [e.shard, e.upstream_index, e.upstream])).toEqual(endpoints.map((url, i) => [i, i, url]));
    const report = await analyze([join(out, 'events')]);
    const ends = endsByUpstream(out);
    expect(Object.keys(report.by_upstream).sort()).toEqual(['0', '1', '2']);
    for (const [i, u] of Object.entries(report.by_upstream)) {
      expect(u.url).toBe(endpoints[Number(i)]);
      expect(u.requests).toBe(ends.get(Number(i)) ?? 0);
      expect(u.requests).toBeGreaterThan(0);
      expect(u.shards).toBe(1);
    }
    const sum = Object.values(report.by_upstream).reduce((a, u) => a + u.succeeded, 0);
    expect(sum).toBe(n);
    expect(Object.values(report.by_upstream).reduce((a, u) => a + u.share, 0)).toBeCloseTo(1, 6);
    // run.json says every server (no credentials), and the config keeps the list.
    const manifest = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as {
      endpoints?: string[];
      config: { endpoint: unknown; shards: number };
    };
    expect(manifest.endpoints).toEqual(endpoints);
    expect(manifest.config.endpoint).toEqual(endpoints);
    expect(manifest.config.shards).toBe(3);
    await expectBooksAgree(out);
  });

  it("moves a killed server's work to the others with no failed request, and the report names it", async () => {
    const endpoints = await threeSims();
    const dir = tempDir();
    const out = join(dir, 'out');
    const n = 600;
    const running = run({ input: writeInput(dir, n), endpoint: endpoints, out, concurrency: 4, progress: 'off' });
    const ended = () => existsSync(join(out, 'events')) && ofType(loadEvents(out), 'request_end').length > 100;
    await until(ended, 30_000, 'the first 100 requests');
    await sims[1]!.close();
    const s = await running;
    expect(s.requests.succeeded).toBe(n);
    expect(s.requests.failed).toBe(0);
    const ids = loadResults(out).map((r) => r.custom_id);
    expect(new Set(ids).size).toBe(n);
    expect(ids.length).toBe(n);
    const events = loadEvents(out);
    const down = ofType(events, 'endpoint_down');
    expect(down.length).toBeGreaterThan(0);
    expect(new Set(down.map((e) => e.shard))).toEqual(new Set([1]));
    // Once it was down, nothing but probes went to it: every later request ended at the others.
    const downTs = down[0]!.ts;
    const after = ofType(events, 'request_end').filter((e) => e.ts > downTs);
    expect(after.length).toBeGreaterThan(0);
    expect(after.filter((e) => e.shard === 1)).toEqual([]);
    const report = await analyze([join(out, 'events')]);
    expect(report.by_upstream['1']!.outages).toBeGreaterThan(0);
    const named = report.verdict.findings.find((f) => f.mode === 'endpoint_down' && f.evidence.includes(endpoints[1]!));
    expect(named, JSON.stringify(report.verdict.findings)).toBeDefined();
    // One server down is not the run down: the others carried it.
    expect(report.outages.count).toBe(0);
    expect(report.by_upstream['1']!.down_s).toBeGreaterThan(0);
    // Its slots were out of rotation, not free while work waited (a real llama-server run read them so).
    expect(
      report.verdict.findings.map((f) => f.mode),
      JSON.stringify(report.verdict.findings),
    ).not.toContain('admission_gap');
    await expectBooksAgree(out);
  });

  it('runs on the others when a server is down from the start: no failed request, the report names it', async () => {
    const endpoints = await threeSims([3, 3]);
    // A port nothing listens on: a replica that is down when the run begins (or a wrong URL among several).
    const dead = `${await closedUrl()}/v1`;
    const dir = tempDir();
    const out = join(dir, 'out');
    const n = 400;
    const s = await run({
      input: writeInput(dir, n),
      endpoint: [endpoints[0]!, dead, endpoints[1]!],
      out,
      concurrency: 4,
      progress: 'off',
    });
    // Without the breaker opening on a never-answered endpoint, its shard (all slots free, every attempt failing
    // at once) drew the others' work: retries by the thousand and failed requests.
    expect(s.requests.failed).toBe(0);
    expect(s.retries).toBe(0);
    expect(new Set(loadResults(out).map((r) => r.custom_id)).size).toBe(n);
    const events = loadEvents(out);
    expect(new Set(ofType(events, 'endpoint_down').map((e) => e.shard))).toEqual(new Set([1]));
    expect(ofType(events, 'request_end').filter((e) => e.shard === 1)).toEqual([]);
    const report = await analyze([join(out, 'events')]);
    const named = report.verdict.findings.find((f) => f.mode === 'endpoint_down' && f.evidence.includes(dead));
    expect(named, JSON.stringify(report.verdict.findings)).toBeDefined();
    // Its outage is its own, even when its shard_start and endpoint_down come before the others' shards start.
    expect(report.outages.count).toBe(0);
    await expectBooksAgree(out);
  });

  it('names the server that held the run back', async () => {
    // The third server takes 20 ms a token against 3 ms for the others.
    const endpoints = await threeSims([3, 3, 20]);
    const dir = tempDir();
    const out = join(dir, 'out');
    const s = await run({ input: writeInput(dir, 600), endpoint: endpoints, out, concurrency: 4, progress: 'off' });
    expect(s.requests.failed).toBe(0);
    const report = await analyze([join(out, 'events')]);
    const slow = report.verdict.findings.find((f) => f.mode === 'slow_upstream');
    expect(slow, JSON.stringify(report.verdict.findings)).toBeDefined();
    expect(slow!.evidence).toContain(`endpoint 3 (${endpoints[2]})`);
    expect(report.by_upstream['2']!.share).toBeLessThan(report.by_upstream['0']!.share);
  });

  it("keeps a server's own rpm, the other servers taking the rest", async () => {
    const endpoints = await threeSims();
    const dir = tempDir();
    const out = join(dir, 'out');
    const rpm = 600; // 10 a second, at most a second's worth at once (the bucket starts empty)
    const t0 = Date.now();
    const s = await run({
      input: writeInput(dir, 300),
      endpoint: [{ url: endpoints[0]!, rpm }, endpoints[1]!],
      out,
      concurrency: 4,
      progress: 'off',
    });
    const elapsedS = (Date.now() - t0) / 1000;
    expect(s.requests.succeeded).toBe(300);
    const attempts = ofType(loadEvents(out), 'attempt_start');
    const onFirst = attempts.filter((e) => e.shard === 0).length;
    // An upper bound, not a speed: never more than the budget allowed over the whole run.
    expect(onFirst).toBeLessThanOrEqual(Math.ceil((rpm / 60) * elapsedS) + 1);
    expect(attempts.length - onFirst).toBeGreaterThan(onFirst);
  });

  it('refuses an endpoint whose apiKeyEnv is not set, naming it', async () => {
    const dir = tempDir();
    await expect(
      run({
        input: writeInput(dir, 1),
        endpoint: ['http://127.0.0.1:9/v1', { url: 'http://127.0.0.1:10/v1', apiKeyEnv: 'SL_TEST_UNSET_KEY' }],
        out: join(dir, 'out'),
        progress: 'off',
      }),
    ).rejects.toThrow(/endpoint 2 \(http:\/\/127\.0\.0\.1:10\/v1\): its apiKeyEnv names SL_TEST_UNSET_KEY/);
  });
});
