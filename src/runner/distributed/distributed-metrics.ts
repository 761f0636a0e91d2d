import { Counter, Gauge, Registry } from 'prom-client';
import { RollingStats } from '../live/rolling-stats.js';
import { serveMetrics, type ServedMetrics } from '../live/metrics-server.js';
import type { ResultFacts } from './result-facts.js';

/**
 * A distributed run's coordinator's `/metrics`: the run as a whole, from the results it collects
 * from every worker (each worker serves its own shards' detail). Names match the one-machine
 * runner's, so a dashboard works for both.
 */
export class DistributedMetrics {
  readonly registry = new Registry();
  private readonly stats = new RollingStats();
  private readonly requests: Counter<'outcome'>;
  private served: ServedMetrics | undefined;

  constructor(state: { backlog: () => number }, now: () => number, startedMs: number) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'shardline_requests_total',
      help: 'Requests finished across all workers, by outcome.',
      labelNames: ['outcome'],
      registers,
    });
    new Gauge({
      name: 'shardline_backlog',
      help: 'Requests enqueued for workers and not finished (in chunks waiting or running).',
      registers,
      collect() {
        this.set(state.backlog());
      },
    });
    const stats = this.stats;
    new Gauge({
      name: 'shardline_completion_tokens_per_minute',
      help: 'Completion tokens over the last 60 s across all workers (scaled while the run is younger).',
      registers,
      collect() {
        this.set(Math.round(stats.tokensPerMinute(now(), startedMs)));
      },
    });
  }

  record(f: ResultFacts, nowMs: number): void {
    this.requests.inc({ outcome: f.outcome });
    if (f.outcome === 'succeeded') this.stats.addSuccess(nowMs, f.completionTokens, f.ttftMs);
  }

  /** Nearest-rank p95 of the latest successes' TTFT (the local runner's definition), or undefined before one. */
  ttftP95(): number | undefined {
    return this.stats.ttftP95();
  }

  async serve(host: string, port: number): Promise<string> {
    this.served = await serveMetrics(this.registry, host, port);
    return this.served.url;
  }

  async close(): Promise<void> {
    await this.served?.close();
    this.served = undefined;
  }
}
