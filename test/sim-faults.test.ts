import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from 'undici';
import { parseProfile, startSim, type RunningSim, type SimProfileInput } from '../src/index.js';
import { mapLimit, postChat, scrape, type ChatReply } from './helpers/http.js';

let sim: RunningSim | undefined;
let dispatcher: Agent | undefined;
afterEach(async () => {
  await dispatcher?.close();
  await sim?.close();
  sim = dispatcher = undefined;
});

const N = 1500;
const instant: SimProfileInput = { prefill_ms_base: 0, step_ms_base: 0, step_ms_per_seq: 0, slots: 256, jitter: 0 };

async function fire(faults: SimProfileInput['faults'], n = N, body: object = {}): Promise<ChatReply[]> {
  sim = await startSim({ profile: parseProfile({ ...instant, faults }), seed: 42 });
  dispatcher = new Agent({ connections: 32 });
  return mapLimit(Array.from({ length: n }), 32, () =>
    postChat(
      sim!.url,
      { messages: [{ role: 'user', content: 'hi' }], max_tokens: 8, stream: true, ...body },
      dispatcher,
    ),
  );
}

/** Assert a binomial count sits within ±3σ of n·p. */
function expectRate(count: number, n: number, p: number): void {
  const sigma = Math.sqrt(n * p * (1 - p));
  expect(count).toBeGreaterThanOrEqual(n * p - 3 * sigma);
  expect(count).toBeLessThanOrEqual(n * p + 3 * sigma);
}

describe('simulator fault injection', () => {
  it('random 429s fire at their rate with Retry-After and retry-after-ms', async () => {
    const replies = await fire({ rate_limit: { random_429_p: 0.1, retry_after_s: 2 } });
    const limited = replies.filter((r) => r.status === 429);
    expectRate(limited.length, N, 0.1);
    for (const r of limited) {
      expect(r.headers['retry-after']).toBe('2');
      expect(r.headers['retry-after-ms']).toBe('2000');
    }
    expect((await scrape(sim!.url)).get('sim_rejections_total{reason="random_429"}')).toBe(limited.length);
  });

  it('5xx fire at their separate rates and are counted', async () => {
    const replies = await fire({ errors: { p_500: 0.05, p_502: 0.04, p_503: 0.03 } });
    const m = await scrape(sim!.url);
    for (const [status, p] of [
      [500, 0.05],
      [502, 0.04],
      [503, 0.03],
    ] as const) {
      const count = replies.filter((r) => r.status === status).length;
      expectRate(count, N, p);
      expect(m.get(`sim_faults_total{fault="http_${status}"}`)).toBe(count);
      expect(m.get(`sim_requests_total{code="${status}"}`)).toBe(count);
    }
    const err = replies.find((r) => r.status === 502)!;
    expect(JSON.parse(err.text).error.type).toBe('server_error');
  });

  it('5xx bursts apply only inside the burst window', async () => {
    let clock = 0;
    sim = await startSim({
      profile: parseProfile({ ...instant, faults: { errors: { p_500: 1, burst_every_s: 10, burst_len_s: 2 } } }),
      now: () => clock,
    });
    const body = { messages: [{ role: 'user', content: 'x' }], max_tokens: 2 };
    clock = 1_000;
    expect((await postChat(sim.url, body)).status).toBe(500);
    clock = 5_000;
    expect((await postChat(sim.url, body)).status).toBe(200);
    clock = 11_500;
    expect((await postChat(sim.url, body)).status).toBe(500);
  });

  it('resets connections mid-stream after k tokens at the configured rate', async () => {
    const replies = await fire({ reset: { p: 0.1, after_tokens: 3 } });
    const cut = replies.filter((r) => r.error);
    expectRate(cut.length, N, 0.1);
    for (const r of cut) {
      expect(r.status).toBe(200);
      // A real RST may discard bytes still in flight: at most k tokens arrive, never more.
      expect(r.text.match(/"content":" /g)?.length ?? 0).toBeLessThanOrEqual(3);
      expect(r.error!.message).toMatch(/reset|closed|terminated/i);
      expect(r.text).not.toContain('[DONE]');
    }
    expect((await scrape(sim!.url)).get('sim_faults_total{fault="reset"}')).toBe(cut.length);
  });

  it('stalls streams for stall_ms after k tokens at the configured rate', async () => {
    const replies = await fire({ stall: { p: 0.1, after_tokens: 2, stall_ms: 200 } }, 600);
    const count = (await scrape(sim!.url)).get('sim_faults_total{fault="stall"}')!;
    expectRate(count, 600, 0.1);
    // A stalled stream shows a long gap between body chunks (client-side delivery can shave a few ms).
    expect(replies.filter((r) => r.maxGapMs >= 150).length).toBeGreaterThanOrEqual(count);
    expect(replies.every((r) => r.text.endsWith('data: [DONE]\n\n'))).toBe(true);
  });

  it('delays status lines at the configured rate', async () => {
    const replies = await fire({ slow_headers: { p: 0.1, delay_ms: 60 } }, 600);
    const count = (await scrape(sim!.url)).get('sim_faults_total{fault="slow_headers"}')!;
    expectRate(count, 600, 0.1);
    expect(replies.filter((r) => r.headersMs >= 59).length).toBeGreaterThanOrEqual(count);
  });

  it('enforces requests/min and tokens/min budgets with Retry-After', async () => {
    const replies = await fire({ rate_limit: { requests_per_min: 120 } }, 200, { stream: false });
    const ok = replies.filter((r) => r.status === 200).length;
    // The bucket starts full (120) and refills at 2/s while the burst runs.
    expect(ok).toBeGreaterThanOrEqual(120);
    expect(ok).toBeLessThan(130);
    const limited = replies.find((r) => r.status === 429)!;
    expect(Number(limited.headers['retry-after-ms'])).toBeGreaterThan(0);
    expect(Number(limited.headers['retry-after-ms'])).toBeLessThanOrEqual(500);
    expect(limited.headers['retry-after']).toBe('1');
    expect((await scrape(sim!.url)).get('sim_rejections_total{reason="rate_limit_requests"}')).toBe(200 - ok);
    await sim!.close();
    await dispatcher!.close();

    // Each request charges prompt (8) + max_tokens (8) = 16 tokens against 160/min: ten pass.
    const byTokens = await fire({ rate_limit: { tokens_per_min: 160 } }, 30, { stream: false });
    expect(byTokens.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(10);
    expect(byTokens.filter((r) => r.status === 200).length).toBeLessThan(13);
    expect(JSON.parse(byTokens.find((r) => r.status === 429)!.text).error.code).toBe('rate_limit_tokens');
  });

  it('keep-alive off closes every connection; on reuses one', async () => {
    for (const keepAlive of [false, true]) {
      sim = await startSim({ profile: parseProfile({ ...instant, faults: { keep_alive: keepAlive } }) });
      dispatcher = new Agent({ connections: 1 });
      for (let i = 0; i < 10; i++) {
        const r = await postChat(
          sim.url,
          { messages: [{ role: 'user', content: 'x' }], max_tokens: 2, stream: i % 2 === 0 },
          dispatcher,
        );
        expect(r.status).toBe(200);
        expect(r.headers.connection).toBe(keepAlive ? 'keep-alive' : 'close');
      }
      expect(sim.stats().connections).toBe(keepAlive ? 1 : 10);
      expect((await scrape(sim.url)).get('sim_connections_opened_total')).toBe(keepAlive ? 2 : 11);
      await dispatcher.close();
      await sim.close();
    }
    sim = dispatcher = undefined;
  });

  it('can omit usage, as some servers do', async () => {
    sim = await startSim({ profile: parseProfile({ ...instant, faults: { usage: false } }) });
    const body = { messages: [{ role: 'user', content: 'x' }], max_tokens: 4 };
    const plain = JSON.parse((await postChat(sim.url, body)).text);
    expect(plain.usage).toBeUndefined();
    expect(plain.choices[0].message.content).toBe(' the of and to');
    const streamed = await postChat(sim.url, { ...body, stream: true, stream_options: { include_usage: true } });
    expect(streamed.text).not.toContain('usage');
    expect(streamed.text).toContain('[DONE]');
  });
});
