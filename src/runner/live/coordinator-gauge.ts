import type { EventWriter } from '../../events/event-writer.js';
import { rssMb } from './load-sampler.js';
import type { LiveMetrics } from './live-metrics.js';
import type { LoopLagSampler } from './loop-lag.js';

/** What the side that hands out work holds at a gauge tick. */
export interface DispatchFigures {
  /** Waiting to be handed out, retries in backoff included. */
  backlog: number;
  backoff: number;
  inFlight: number;
  limit: number;
  connsOpen: number;
}

/** Write a `gauge` event of the process that hands out work (shard -1) and its loop's lag into `live`. */
export function writeCoordinatorGauge(
  events: EventWriter,
  live: LiveMetrics,
  loopLag: LoopLagSampler,
  f: DispatchFigures,
): void {
  const lag = loopLag.take();
  live.recordLoopLag(-1, lag);
  events.write('gauge', {
    backlog: f.backlog,
    backoff: f.backoff,
    in_flight: f.inFlight,
    limit: f.limit,
    loop_lag_ms: Math.round(lag * 1000) / 1000,
    conns_open: f.connsOpen,
    rss_mb: rssMb(),
  });
}
