import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from 'undici';
import { capacityTpm, parseProfile, startSim, type RunningSim } from '../src/index.js';
import { mapLimit, postChat, scrape } from './helpers/http.js';

let sim: RunningSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe('simulator capacity model', () => {
  it('saturates at the documented capacity and queues the excess', async () => {
    const profile = parseProfile({
      slots: 8,
      queue_limit: 1000,
      prefill_ms_base: 20,
      prefill_tokens_per_s: 1e9,
      step_ms_base: 12,
      step_ms_per_seq: 1,
      jitter: 0.1,
      default_max_tokens: 40,
      reference_prompt_tokens: 0,
    });
    sim = await startSim({ profile, seed: 7 });
    const requests = 40; // five waves of eight: more load than slots, all at once
    const dispatcher = new Agent({ connections: requests });
    const t0 = performance.now();
    const replies = await mapLimit(Array.from({ length: requests }), requests, () =>
      postChat(sim!.url, { messages: [{ role: 'user', content: '' }], stream: true }, dispatcher),
    );
    const elapsedMs = performance.now() - t0;
    await dispatcher.close();
    expect(replies.every((r) => r.status === 200 && !r.error)).toBe(true);

    const measuredTpm = (requests * 40 * 60_000) / elapsedMs;
    const documented = capacityTpm(profile);
    expect(Math.abs(measuredTpm / documented - 1)).toBeLessThan(0.1);

    // Server TTFT grows with the queue: each later wave waited for the waves before it.
    const timings = sim.requestTimings().sort((a, b) => a.admittedMs - b.admittedMs);
    const ttft = timings.map((t) => t.firstTokenMs - t.arrivalMs);
    const waveMeans = [0, 1, 2, 3, 4].map((w) => ttft.slice(w * 8, w * 8 + 8).reduce((a, b) => a + b, 0) / 8);
    for (let w = 1; w < waveMeans.length; w++) expect(waveMeans[w]!).toBeGreaterThan(waveMeans[w - 1]!);

    const m = await scrape(sim.url);
    expect(m.get('sim_completion_tokens_total')).toBe(requests * 40);
    expect(m.get('sim_slots')).toBe(8);
    expect(m.get('sim_capacity_completion_tokens_per_minute')).toBeCloseTo(documented, 3);
    expect(m.get('sim_time_to_first_token_seconds_count')).toBe(requests);
  });

  it('answers the overflow status with Retry-After when the server queue is full', async () => {
    const profile = parseProfile({
      slots: 1,
      queue_limit: 2,
      overflow_status: 503,
      step_ms_base: 20,
      default_max_tokens: 5,
    });
    sim = await startSim({ profile });
    const dispatcher = new Agent({ connections: 10 });
    const replies = await mapLimit(Array.from({ length: 6 }), 6, () =>
      postChat(sim!.url, { messages: [{ role: 'user', content: 'x' }] }, dispatcher),
    );
    await dispatcher.close();
    const refused = replies.filter((r) => r.status === 503);
    expect(replies.filter((r) => r.status === 200)).toHaveLength(3);
    expect(refused).toHaveLength(3);
    expect(refused[0]!.headers['retry-after']).toBe('1');
    expect(JSON.parse(refused[0]!.text).error.code).toBe('queue_full');
    expect((await scrape(sim.url)).get('sim_rejections_total{reason="queue_full"}')).toBe(3);
  });
});
