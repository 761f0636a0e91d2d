import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { analyze, parseProfile, run, startSim, type RunningSim } from '../src/index.js';
import { runCli } from './helpers/cli.js';
import { loadEvents, ofType, tempDir, writeInput } from './helpers/run-dir.js';

let sim: RunningSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

interface Exposition {
  types: Map<string, string>;
  samples: Map<string, number>;
}

/** Parse Prometheus text exposition: `# TYPE name kind` lines and `name{labels} value` samples. */
function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const [, , name, kind] = line.split(' ');
      types.set(name!, kind!);
    } else if (line && !line.startsWith('#')) {
      const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/);
      if (!m) throw new Error(`not exposition format: ${line}`);
      samples.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
    }
  }
  return { types, samples };
}

describe('live Prometheus metrics during a run', () => {
  it('serves aggregate figures with OpenTelemetry GenAI names, scraped mid-run', async () => {
    sim = await startSim({
      profile: parseProfile({ base: 'fast', step_ms_base: 5, tokens_per_step: 1, faults: { errors: { p_503: 0.1 } } }),
    });
    const dir = tempDir();
    let url: string | undefined;
    const scrapes: Exposition[] = [];
    let done = false;
    const running = run(
      {
        input: writeInput(dir, 120, { max_tokens: 30 }),
        endpoint: `${sim.url}/v1`,
        out: join(dir, 'out'),
        shards: 2,
        concurrency: 4,
        retryBackoffS: 0.01,
        maxAttempts: 10,
        metricsPort: 0,
        progress: 'off',
        gaugeIntervalMs: 200,
      },
      { onMetrics: (u) => (url = u) },
    ).finally(() => (done = true));
    while (!done) {
      await new Promise((r) => setTimeout(r, 150));
      if (!url || done) continue;
      try {
        const res = await fetch(url);
        expect(res.headers.get('content-type')).toMatch(/text\/plain/);
        scrapes.push(parseExposition(await res.text()));
      } catch {
        // the run may have just closed the server
      }
    }
    const summary = await running;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(scrapes.length).toBeGreaterThan(3);
    const last = scrapes[scrapes.length - 1]!;
    expect(last.types.get('gen_ai_client_operation_duration_seconds')).toBe('histogram');
    expect(last.types.get('gen_ai_client_token_usage')).toBe('histogram');
    expect(last.types.get('gen_ai_server_time_to_first_token_seconds')).toBe('histogram');
    for (const g of [
      'shardline_backlog',
      'shardline_in_flight',
      'shardline_in_flight_limit',
      'shardline_event_loop_lag_seconds',
      'shardline_completion_tokens_per_minute',
    ]) {
      expect(last.types.get(g), g).toBe('gauge');
    }
    for (const c of ['shardline_retries_total', 'shardline_requests_total', 'shardline_connections_opened_total'])
      expect(last.types.get(c), c).toBe('counter');
    // Aggregated across both shards: the limit is shards × concurrency (less only once a shard has
    // stopped at the end of the run), and in-flight never above it.
    for (const s of scrapes) {
      const limit = s.samples.get('shardline_in_flight_limit')!;
      expect([0, 4, 8]).toContain(limit);
      expect(s.samples.get('shardline_in_flight')!).toBeLessThanOrEqual(limit);
      if (s.samples.get('shardline_in_flight')! > 4) expect(limit).toBe(8);
    }
    expect(scrapes.filter((s) => s.samples.get('shardline_in_flight_limit') === 8).length).toBeGreaterThan(
      scrapes.length / 2,
    );
    expect(scrapes.some((s) => s.samples.get('shardline_in_flight')! > 0)).toBe(true);
    const succeeded = last.samples.get('shardline_requests_total{outcome="succeeded"}')!;
    expect(succeeded).toBeGreaterThan(0);
    expect(succeeded).toBeLessThanOrEqual(summary.requests.succeeded);
    expect(
      last.samples.get('gen_ai_client_token_usage_count{gen_ai_operation_name="chat",gen_ai_token_type="output"}'),
    ).toBe(succeeded);
    expect(
      last.samples.get('gen_ai_client_token_usage_sum{gen_ai_operation_name="chat",gen_ai_token_type="output"}'),
    ).toBe(succeeded * 30);
    expect(last.samples.get('gen_ai_server_time_to_first_token_seconds_count{gen_ai_operation_name="chat"}')).toBe(
      succeeded,
    );
    expect(last.samples.get('shardline_retries_total{cause="http_5xx"}')!).toBeGreaterThan(0);
    expect(last.samples.get('shardline_completion_tokens_per_minute')!).toBeGreaterThan(0);
    expect(last.samples.get('shardline_connections_opened_total')!).toBeGreaterThanOrEqual(2);
    expect(last.samples.has('shardline_event_loop_lag_seconds{shard="0"}')).toBe(true);
    expect(last.samples.has('shardline_event_loop_lag_seconds{shard="-1"}')).toBe(true);
    // Each shard's loop load: how busy, and (Linux) how long it waited for a core.
    for (const shard of ['0', '1']) {
      const busy = last.samples.get(`shardline_event_loop_utilization_ratio{shard="${shard}"}`);
      expect(busy, `utilization of shard ${shard}`).toBeGreaterThan(0);
      expect(busy!).toBeLessThanOrEqual(1);
      if (process.platform === 'linux') {
        const wait = last.samples.get(`shardline_cpu_wait_ratio{shard="${shard}"}`);
        expect(wait, `cpu wait of shard ${shard}`).toBeGreaterThanOrEqual(0);
        expect(wait!).toBeLessThanOrEqual(1);
      }
    }
    expect(last.types.get('shardline_event_loop_utilization_ratio')).toBe('gauge');
    // Histogram buckets are cumulative.
    let prev = 0;
    for (const le of ['0.001', '0.01', '0.1', '1', '10', '+Inf']) {
      const v = last.samples.get(
        `gen_ai_server_time_to_first_token_seconds_bucket{le="${le}",gen_ai_operation_name="chat"}`,
      )!;
      expect(v).toBeGreaterThanOrEqual(prev);
      prev = v;
    }
  });

  it('counts stale connections and paused attempts, and says while the endpoint is down', async () => {
    sim = await startSim({
      profile: parseProfile({
        base: 'fast',
        slots: 4,
        step_ms_base: 4,
        tokens_per_step: 1,
        faults: { close_after_stream: true },
      }),
    });
    const dir = tempDir();
    let url: string | undefined;
    const scrapes: Exposition[] = [];
    let done = false;
    let outage = false;
    const running = run(
      {
        input: writeInput(dir, 300, { stream: true, max_tokens: 16 }),
        endpoint: `${sim.url}/v1`,
        out: join(dir, 'out'),
        concurrency: 4,
        retryBackoffS: 0.05,
        metricsPort: 0,
        progress: 'off',
        gaugeIntervalMs: 100,
      },
      { onMetrics: (u) => (url = u) },
    ).finally(() => (done = true));
    while (!done) {
      await new Promise((r) => setTimeout(r, 100));
      // Once the endpoint has answered (the pause engages only then), it goes away for a second.
      if (!outage && sim.stats().requests >= 40) {
        outage = true;
        void sim.outage(1000);
      }
      if (!url || done) continue;
      try {
        scrapes.push(parseExposition(await (await fetch(url)).text()));
      } catch {
        // the run may have just closed the server
      }
    }
    const summary = await running;
    expect(summary.exit_code).toBe(0);
    const last = scrapes[scrapes.length - 1]!;
    for (const c of ['shardline_stale_connections_total', 'shardline_paused_attempts_total'])
      expect(last.types.get(c), c).toBe('counter');
    expect(last.types.get('shardline_endpoint_down')).toBe('gauge');
    const report = await analyze([join(dir, 'out')]);
    expect(report.connections.stale_resends).toBeGreaterThan(0);
    expect(report.outages.paused_attempts).toBeGreaterThan(0);
    // Counters arrive with the shards' heartbeats: never above what the events count, and the most
    // scraped is what the events count by the time the last heartbeat came in.
    const most = (name: string) => Math.max(...scrapes.map((x) => x.samples.get(name) ?? 0));
    expect(most('shardline_stale_connections_total')).toBeGreaterThan(0);
    expect(most('shardline_stale_connections_total')).toBeLessThanOrEqual(report.connections.stale_resends);
    expect(most('shardline_paused_attempts_total')).toBeGreaterThan(0);
    expect(most('shardline_paused_attempts_total')).toBeLessThanOrEqual(report.outages.paused_attempts);
    // While the outage lasted, some scrape said so; before it, none did.
    expect(scrapes.some((x) => x.samples.get('shardline_endpoint_down') === 1)).toBe(true);
    expect(scrapes[0]!.samples.get('shardline_endpoint_down')).toBe(0);
  });

  it('says apart the retries waiting out their backoff: progress, gauge events and Prometheus', async () => {
    // Every first attempt fails; each retry then waits exactly 1 s (fixed mode: no jitter).
    sim = await startSim({ profile: parseProfile({ base: 'fast', faults: { errors: { p_500: 1 } } }) });
    const dir = tempDir();
    const out = join(dir, 'out');
    let url: string | undefined;
    const inBackoff: number[] = [];
    const scraped: number[] = [];
    let done = false;
    const running = run(
      {
        input: writeInput(dir, 6),
        endpoint: `${sim.url}/v1`,
        out,
        concurrency: 8,
        maxAttempts: 2,
        retryMode: 'fixed',
        retryBackoffS: 1,
        metricsPort: 0,
        progress: 'off',
        gaugeIntervalMs: 100,
      },
      { onMetrics: (u) => (url = u), onProgress: (p) => inBackoff.push(p.inBackoff) },
    ).finally(() => (done = true));
    while (!done) {
      await new Promise((r) => setTimeout(r, 100));
      if (!url || done) continue;
      try {
        const text = await (await fetch(url)).text();
        scraped.push(parseExposition(text).samples.get('shardline_retries_waiting')!);
      } catch {
        // the run may have just closed the server
      }
    }
    const summary = await running;
    expect(summary.requests.failed).toBe(6);
    // All six wait at once for a second: seen by the progress callback and the scrapes alike.
    expect(Math.max(...inBackoff)).toBe(6);
    expect(Math.max(...scraped)).toBe(6);
    // The coordinator's gauges: the backlog then is all backoff, with nothing in flight.
    const gauges = ofType(loadEvents(out), 'gauge').filter((g) => g.shard === -1);
    const waiting = gauges.filter((g) => g.backoff === 6);
    expect(waiting.length).toBeGreaterThan(3);
    for (const g of waiting) expect(g).toMatchObject({ backlog: 6, in_flight: 0 });
    for (const g of gauges) expect(g.backoff!).toBeLessThanOrEqual(g.backlog);
  });

  it('CLI: --metrics-port prints where it serves; a bad port exits 2', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast' }) });
    const dir = tempDir();
    const ok = await runCli([
      'run',
      writeInput(dir, 3),
      '--endpoint',
      `${sim.url}/v1`,
      '--out',
      join(dir, 'o'),
      '--metrics-port',
      '0',
    ]);
    expect(ok.code).toBe(0);
    expect(ok.stderr).toMatch(/metrics on http:\/\/127\.0\.0\.1:\d+\/metrics/);
    const bad = await runCli([
      'run',
      writeInput(dir, 3, {}, 'b.jsonl'),
      '--endpoint',
      `${sim.url}/v1`,
      '--out',
      join(dir, 'o2'),
      '--metrics-port',
      '99999',
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/`--metrics-port`/);
  });
});
