import type { FromShard } from '../ipc-messages.js';
import type { LiveMetrics } from './live-metrics.js';

/** What was last heard of a shard from its heartbeats (a ShardHandle is one). */
export interface BeatSeen {
  inFlight: number;
  limit: number;
  connsOpen: number;
  connsOpened: number;
  stale: number;
  paused: number;
}

/**
 * Take in a shard's heartbeat: its state now into `seen`, and into `live` what happened since the last one.
 * Its counts run over the shard process's life: a replacement starts from zero, so deltas are added.
 */
export function noteBeat(
  live: LiveMetrics,
  seen: BeatSeen,
  shard: number,
  msg: Extract<FromShard, { t: 'beat' }>,
): void {
  seen.inFlight = msg.inFlight;
  seen.limit = msg.limit;
  seen.connsOpen = msg.connsOpen;
  live.recordConnections(msg.connsOpened - seen.connsOpened);
  seen.connsOpened = msg.connsOpened;
  live.recordConnectionFaults(msg.stale - seen.stale, msg.paused - seen.paused);
  seen.stale = msg.stale;
  seen.paused = msg.paused;
  live.recordLoopLag(shard, msg.loopLagMs);
  live.recordLoopLoad(shard, msg.loopBusy, msg.cpuWait);
}
