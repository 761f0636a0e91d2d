import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DoneItem, RetryItem } from '../ipc-messages.js';
import { serveMetrics, type ServedMetrics } from './metrics-server.js';
import { RollingStats } from './rolling-stats.js';

/** Instantaneous state the coordinator owns, read at scrape time. */
export interface LiveState {
  backlog: () => number;
  /** Retries waiting out their backoff (part of the backlog). */
  inBackoff: () => number;
  inFlight: () => number;
  limit: () => number;
}

// Bucket boundaries recommended by the OpenTelemetry GenAI semantic conventions.
const DURATION_S = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
const TOKENS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
const TTFT_S = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/**
 * Run-wide live figures, aggregated over all shards by the coordinator (per-shard snapshots
 * mislead): a prom-client registry with names mapped from the OpenTelemetry GenAI semantic
 * conventions, plus the rolling stats the progress line shows — one source for both.
 */
export class LiveMetrics {
  readonly registry = new Registry();
  /** Completion tokens over the last 60 s and recent TTFTs: also what the progress line shows. */
  readonly stats = new RollingStats();
  private readonly opDuration: Histogram<'gen_ai_operation_name' | 'gen_ai_request_model' | 'error_type'>;
  private readonly tokenUsage: Histogram<'gen_ai_operation_name' | 'gen_ai_token_type'>;
  private readonly ttft: Histogram<'gen_ai_operation_name'>;
  private readonly retries: Counter<'cause'>;
  private readonly requests: Counter<'outcome'>;
  private readonly connections: Counter;
  private readonly staleConnections: Counter;
  private readonly pausedAttempts: Counter;
  /** Shards paused because their endpoint is down. */
  private readonly downShards = new Set<number>();
  private readonly loopLag: Gauge<'shard'>;
  private readonly loopBusy: Gauge<'shard'>;
  private readonly cpuWait: Gauge<'shard'>;
  private served: ServedMetrics | undefined;

  constructor(state: LiveState, now: () => number, startedMs: () => number) {
    const registers = [this.registry];
    const stats = this.stats;
    this.opDuration = new Histogram({
      name: 'gen_ai_client_operation_duration_seconds',
      help: 'GenAI operation duration (one attempt of a chat request), client-measured.',
      labelNames: ['gen_ai_operation_name', 'gen_ai_request_model', 'error_type'],
      buckets: DURATION_S,
      registers,
    });
    this.tokenUsage = new Histogram({
      name: 'gen_ai_client_token_usage',
      help: 'Tokens used per request, by gen_ai_token_type (input, output).',
      labelNames: ['gen_ai_operation_name', 'gen_ai_token_type'],
      buckets: TOKENS,
      registers,
    });
    this.ttft = new Histogram({
      name: 'gen_ai_server_time_to_first_token_seconds',
      help: 'Time to first token of the successful attempt, measured by the client.',
      labelNames: ['gen_ai_operation_name'],
      buckets: TTFT_S,
      registers,
    });
    new Gauge({
      name: 'shardline_backlog',
      help: 'Requests waiting for a slot (retries in backoff included).',
      registers,
      collect() {
        this.set(state.backlog());
      },
    });
    new Gauge({
      name: 'shardline_retries_waiting',
      help:
        'Retries waiting out their backoff (counted in shardline_backlog too): a backlog that is all backoff is ' +
        'not an admission gap.',
      registers,
      collect() {
        this.set(state.inBackoff());
      },
    });
    new Gauge({
      name: 'shardline_in_flight',
      help: 'Requests dispatched to shards and not finished.',
      registers,
      collect() {
        this.set(state.inFlight());
      },
    });
    new Gauge({
      name: 'shardline_in_flight_limit',
      help:
        'In-flight limit across shards: shards × concurrency, or the sum of their adaptive limits ' +
        '(--concurrency auto).',
      registers,
      collect() {
        this.set(state.limit());
      },
    });
    this.retries = new Counter({
      name: 'shardline_retries_total',
      help: 'Retries scheduled, by cause.',
      labelNames: ['cause'],
      registers,
    });
    this.requests = new Counter({
      name: 'shardline_requests_total',
      help: 'Requests finished, by outcome.',
      labelNames: ['outcome'],
      registers,
    });
    this.connections = new Counter({
      name: 'shardline_connections_opened_total',
      help: 'Connections opened by all shards.',
      registers,
    });
    this.staleConnections = new Counter({
      name: 'shardline_stale_connections_total',
      help:
        'Requests sent again at once on a fresh connection because the reused keep-alive connection had been ' +
        'closed by the server (not attempts, not retries).',
      registers,
    });
    this.pausedAttempts = new Counter({
      name: 'shardline_paused_attempts_total',
      help:
        'Attempts that failed while the endpoint was down: their requests waited for it, using up no ' +
        '--max-attempts.',
      registers,
    });
    const down = this.downShards;
    new Gauge({
      name: 'shardline_endpoint_down',
      help: '1 while shards have paused dispatch because the endpoint refuses connections or answers 502/503/504.',
      registers,
      collect() {
        this.set(down.size > 0 ? 1 : 0);
      },
    });
    this.loopLag = new Gauge({
      name: 'shardline_event_loop_lag_seconds',
      help: 'Worst event-loop lag in the last interval, by shard (-1 = coordinator).',
      labelNames: ['shard'],
      registers,
    });
    this.loopBusy = new Gauge({
      name: 'shardline_event_loop_utilization_ratio',
      help: "Share of the last interval a shard's event loop was busy.",
      labelNames: ['shard'],
      registers,
    });
    this.cpuWait = new Gauge({
      name: 'shardline_cpu_wait_ratio',
      help: "Share of the last interval a shard's loop thread waited for a core (Linux): the client starved of CPU.",
      labelNames: ['shard'],
      registers,
    });
    new Gauge({
      name: 'shardline_completion_tokens_per_minute',
      help: 'Aggregate completion tokens over the last 60 s, across shards.',
      registers,
      collect() {
        this.set(Math.round(stats.tokensPerMinute(now(), startedMs())));
      },
    });
    for (const outcome of ['succeeded', 'failed']) this.requests.inc({ outcome }, 0);
  }

  recordDone(d: DoneItem, nowMs: number): void {
    if (d.outcome === 'succeeded') this.stats.addSuccess(nowMs, d.completionTokens, d.ttftMs);
    // The Prometheus figures cost ~1 µs a request in prom-client (bench/distributed.mjs profiles)
    // and only a scrape reads them: recorded only while /metrics is served.
    if (!this.served) return;
    this.requests.inc({ outcome: d.outcome });
    const model = d.model ?? 'unknown';
    if (d.outcome === 'succeeded') {
      this.opDuration.observe({ gen_ai_operation_name: 'chat', gen_ai_request_model: model }, d.attemptMs / 1000);
      this.tokenUsage.observe({ gen_ai_operation_name: 'chat', gen_ai_token_type: 'input' }, d.promptTokens);
      this.tokenUsage.observe({ gen_ai_operation_name: 'chat', gen_ai_token_type: 'output' }, d.completionTokens);
      if (d.ttftMs !== undefined) this.ttft.observe({ gen_ai_operation_name: 'chat' }, d.ttftMs / 1000);
    } else {
      this.opDuration.observe(
        { gen_ai_operation_name: 'chat', gen_ai_request_model: model, error_type: d.cause ?? 'unknown' },
        d.attemptMs / 1000,
      );
    }
  }

  recordRetry(r: RetryItem): void {
    if (!this.served) return;
    this.retries.inc({ cause: r.cause });
    this.opDuration.observe(
      { gen_ai_operation_name: 'chat', gen_ai_request_model: 'unknown', error_type: r.cause },
      r.attemptMs / 1000,
    );
  }

  recordConnections(opened: number): void {
    if (opened > 0) this.connections.inc(opened);
  }

  /** Stale-connection re-sends and paused attempts since the last beat. */
  recordConnectionFaults(stale: number, paused: number): void {
    if (stale > 0) this.staleConnections.inc(stale);
    if (paused > 0) this.pausedAttempts.inc(paused);
  }

  recordEndpointDown(shard: number, down: boolean): void {
    if (down) this.downShards.add(shard);
    else this.downShards.delete(shard);
  }

  recordLoopLag(shard: number, lagMs: number): void {
    this.loopLag.set({ shard: String(shard) }, lagMs / 1000);
  }

  /** A shard's loop utilization and wait for a core over its last gauge interval. */
  recordLoopLoad(shard: number, busy: number, cpuWait: number | null): void {
    this.loopBusy.set({ shard: String(shard) }, busy);
    if (cpuWait !== null) this.cpuWait.set({ shard: String(shard) }, cpuWait);
  }

  /** Serve `/metrics` (Prometheus text) on host:port; resolves with the URL. Figures count from here. */
  async serve(host: string, port: number): Promise<string> {
    this.served = await serveMetrics(this.registry, host, port);
    return this.served.url;
  }

  async close(): Promise<void> {
    const served = this.served;
    this.served = undefined;
    await served?.close();
  }
}
