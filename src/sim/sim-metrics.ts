import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { capacityTpm, decodeCapacityTpm } from './capacity.js';
import type { SimProfile } from './profile-schema.js';

/** Reasons the simulator refuses a request with 429/503 before any work. */
export type RejectionReason = 'queue_full' | 'rate_limit_requests' | 'rate_limit_tokens' | 'random_429';
/** Faults the simulator injects; each is counted when it actually fires. */
export type FaultKind = 'http_500' | 'http_502' | 'http_503' | 'reset' | 'stall' | 'slow_headers';

/** Server-side timing of one request, for measuring what a client adds on top. */
export interface RequestTiming {
  id: string;
  /** The request's head was parsed. */
  arrivalMs: number;
  /**
   * The server's event loop began the I/O turn in which the head was parsed (≤ arrivalMs): the
   * earliest the server could have seen the request. Server TTFT for client-side comparisons is
   * `firstTokenMs − ioTurnMs`, so the server's own parse queue counts as server time.
   */
  ioTurnMs: number;
  admittedMs: number;
  firstTokenMs: number;
  endMs: number;
  completionTokens: number;
}

/** Prometheus metrics of one simulator instance (its own registry, never the global one). */
export class SimMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'code'>;
  readonly completionTokens: Counter;
  readonly promptTokens: Counter;
  readonly rejections: Counter<'reason'>;
  readonly faults: Counter<'fault'>;
  readonly connections: Counter;
  readonly ttftS: Histogram;

  constructor(profile: SimProfile, gauges: { active: () => number; queued: () => number; tokens: () => number }) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'sim_requests_total',
      help: 'Responses by HTTP status code.',
      labelNames: ['code'],
      registers,
    });
    this.completionTokens = new Counter({
      name: 'sim_completion_tokens_total',
      help: 'Completion tokens generated.',
      registers,
      collect() {
        this.reset();
        this.inc(gauges.tokens());
      },
    });
    this.promptTokens = new Counter({ name: 'sim_prompt_tokens_total', help: 'Prompt tokens admitted.', registers });
    this.rejections = new Counter({
      name: 'sim_rejections_total',
      help: 'Requests refused before any work, by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.faults = new Counter({
      name: 'sim_faults_total',
      help: 'Injected faults that fired, by kind.',
      labelNames: ['fault'],
      registers,
    });
    this.connections = new Counter({
      name: 'sim_connections_opened_total',
      help: 'TCP connections accepted.',
      registers,
    });
    this.ttftS = new Histogram({
      name: 'sim_time_to_first_token_seconds',
      help: 'Server-side time from request arrival to first token written.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    new Gauge({
      name: 'sim_active_sequences',
      help: 'Sequences holding a slot.',
      registers,
      collect() {
        this.set(gauges.active());
      },
    });
    new Gauge({
      name: 'sim_queued_requests',
      help: 'Requests waiting for a slot.',
      registers,
      collect() {
        this.set(gauges.queued());
      },
    });
    const fixed: [string, string, number][] = [
      ['sim_slots', 'Concurrent sequences the profile allows.', profile.slots],
      ['sim_queue_limit', 'Requests that may wait for a slot.', profile.queue_limit],
      [
        'sim_capacity_completion_tokens_per_minute',
        'Theoretical completion tokens/min at the reference workload.',
        finite(capacityTpm(profile)),
      ],
      [
        'sim_decode_capacity_completion_tokens_per_minute',
        'Decode-only upper bound of completion tokens/min.',
        finite(decodeCapacityTpm(profile)),
      ],
    ];
    for (const [name, help, value] of fixed) new Gauge({ name, help, registers }).set(value);
    for (const r of ['queue_full', 'rate_limit_requests', 'rate_limit_tokens', 'random_429'] as const)
      this.rejections.inc({ reason: r }, 0);
    for (const f of ['http_500', 'http_502', 'http_503', 'reset', 'stall', 'slow_headers'] as const)
      this.faults.inc({ fault: f }, 0);
  }
}

// Prometheus has +Inf, but a capacity gauge of +Inf breaks most dashboards' arithmetic; -1 = unbounded.
function finite(x: number): number {
  return Number.isFinite(x) ? x : -1;
}
