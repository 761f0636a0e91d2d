import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseProfile, run, startSim } from '../src/index.js';
import { SharedBudget } from '../src/runner/distributed/shared-budget.js';
import { runCli } from './helpers/cli.js';
import { startRedis, type TestRedis } from './helpers/redis.js';
import { loadEvents, loadResults, ofType, tempDir, writeInput } from './helpers/run-dir.js';

// --rpm/--tpm of a distributed run: one budget in Redis for every worker, not one each.

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

/** Take from `budget` as fast as it allows until `untilMs`; returns how many it took. */
async function drain(budget: SharedBudget, untilMs: number): Promise<number> {
  let took = 0;
  while (Date.now() < untilMs) {
    const wait = budget.tryTake(0, Date.now());
    if (wait === 0) took++;
    else await new Promise((r) => setTimeout(r, wait));
  }
  return took;
}

describe('a budget shared through Redis', () => {
  it('gives three takers together what the budget allows, not three times it', async () => {
    const clients = [new Redis(redis.url), new Redis(redis.url), new Redis(redis.url)];
    try {
      const rpm = 1200; // 20 a second, a second's worth at most in the bucket, which starts empty
      const budgets = clients.map((c) => new SharedBudget(c, 'test:budget:a', { rpm }));
      const t0 = Date.now();
      const took = await Promise.all(budgets.map((b) => drain(b, t0 + 1500)));
      const elapsedS = (Date.now() - t0) / 1000;
      const total = took.reduce((a, b) => a + b, 0);
      // The bucket's rate over the time, plus what each taker may hold granted and unspent (50 ms of it).
      expect(total).toBeLessThanOrEqual(Math.ceil((rpm / 60) * (elapsedS + 3 * 0.05)) + 3);
      // Each got a share: the bucket is one, not first come first served forever.
      for (const n of took) expect(n).toBeGreaterThan(0);
    } finally {
      for (const c of clients) c.disconnect();
    }
  });

  it("counts a provider's x-ratelimit-remaining seen by one taker for all", async () => {
    const clients = [new Redis(redis.url), new Redis(redis.url)];
    try {
      const [a, b] = clients.map((c) => new SharedBudget(c, 'test:budget:b', { rpm: 60_000 }));
      // a hears the provider has 0 requests left for the next 10 s; b, asking next, must wait too.
      a!.observe({ kind: 'requests', limit: undefined, remaining: 0, resetMs: 10_000, ts: Date.now() });
      await drain(a!, Date.now() + 100);
      const took = await drain(b!, Date.now() + 300);
      expect(took).toBe(0);
    } finally {
      for (const c of clients) c.disconnect();
    }
  });
});

describe('--tpm with --redis against a provider quota (the quota profile)', () => {
  // Without the headers the shared budget alone keeps the run under the quota: three workers each pacing at
  // 90,000 alone (what --tpm meant per worker before) had 42% of attempts refused in a run of this job.
  for (const headers of [true, false])
    it(
      `three workers stay under the quota together (x-ratelimit-* headers ${headers ? 'sent' : 'not sent'}): under ` +
        '1% of attempts refused',
      { timeout: 120_000 },
      async () => {
        const sim = await startSim({
          profile: parseProfile({
            base: 'quota',
            faults: { rate_limit: { tokens_per_min: 90_000, requests_per_min: 60_000, burst_s: 1, headers } },
          }),
        });
        try {
          const dir = tempDir();
          const out = join(dir, 'out');
          const r = await runCli(
            [
              'run',
              writeInput(dir, 600, { max_tokens: 8 }),
              '--endpoint',
              `${sim.url}/v1`,
              '--out',
              out,
              '--concurrency',
              '32',
              '--max-attempts',
              '20',
              '--retry-backoff-s',
              '0.1',
              '--progress',
              'off',
              '--redis',
              redis.url,
              '--local-workers',
              '3',
              '--tpm',
              '90000',
            ],
            { timeoutMs: 100_000 },
          );
          expect(r.code, r.stderr).toBe(0);
          expect(new Set(loadResults(out).map((x) => x.custom_id)).size).toBe(600);
          const ends = ofType(loadEvents(out), 'attempt_end');
          const refused = ends.filter((e) => e.status === 429).length;
          // Several workers' shards did the work (chunks of 256: three chunks), and together they stayed under
          // the quota.
          expect(new Set(ends.map((e) => e.shard)).size).toBeGreaterThan(1);
          expect(refused / ends.length).toBeLessThan(0.01);
        } finally {
          await sim.close();
        }
      },
    );
});

describe("an endpoint's own rpm with --redis", () => {
  it(
    'is one budget for the shards of every worker sending to it, the other server taking the rest',
    {
      timeout: 120_000,
    },
    async () => {
      // A answers at once; B takes ~50 ms a request (16 tokens, 3 ms each), 8 slots.
      const [a, b] = await Promise.all([
        startSim({ profile: parseProfile({ base: 'fast' }) }),
        startSim({
          profile: parseProfile({ base: 'fast', slots: 8, step_ms_base: 3, step_ms_per_seq: 0, tokens_per_step: 1 }),
        }),
      ]);
      try {
        const dir = tempDir();
        const out = join(dir, 'out');
        const rpm = 600; // 10 a second for A, whichever worker sends
        const s = await run({
          input: writeInput(dir, 768),
          endpoint: [{ url: `${a.url}/v1`, rpm }, `${b.url}/v1`],
          out,
          concurrency: 4,
          progress: 'off',
          redis: redis.url,
          localWorkers: 2,
        });
        expect(s.requests.succeeded).toBe(768);
        const events = loadEvents(out);
        const upstreamOf = new Map<number, number>();
        for (const e of ofType(events, 'shard_start')) upstreamOf.set(e.shard, e.upstream_index ?? 0);
        const starts = ofType(events, 'attempt_start');
        const onA = starts.filter((e) => upstreamOf.get(e.shard) === 0);
        // Both workers sent to A: two budgets of their own would have let through twice the rate.
        expect(new Set(onA.map((e) => e.shard)).size).toBe(2);
        const spanS = (Math.max(...onA.map((e) => e.ts)) - Math.min(...onA.map((e) => e.ts))) / 1000;
        // The bucket's rate over the span, its one second of capacity, and a grant each worker may hold.
        expect(onA.length).toBeLessThanOrEqual(Math.ceil((rpm / 60) * (spanS + 1)) + 2);
        expect(starts.length - onA.length).toBeGreaterThan(onA.length);
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    },
  );
});
