import type { EventPayloads } from '../../events/event-types.js';
import { round3 } from '../../metrics/percentiles.js';
import type { Clock } from '../../util/clock.js';
import { LoadSampler, rssMb } from '../live/load-sampler.js';
import { LoopLagSampler } from '../live/loop-lag.js';
import type { BeatSeen } from '../live/note-beat.js';
import type { FromShard } from '../ipc-messages.js';

/** What the runtime knows of itself at a gauge: what its beat tells the coordinator, and its backlog. */
export interface ShardState extends BeatSeen {
  /** Prefetched items not started yet: the shard holds them, so they are its backlog. */
  backlog: number;
}

/**
 * A shard's periodic self-measurement: the `gauge` event for its log and the `beat` for its
 * coordinator's live figures, each over the time since the previous one (loop lag and load, CPU).
 */
export class ShardGauge {
  private readonly loopLag: LoopLagSampler;
  private readonly load = new LoadSampler();
  private cpuMark = process.cpuUsage();

  constructor(clock: Clock) {
    this.loopLag = new LoopLagSampler(clock);
  }

  take(s: ShardState): { gauge: EventPayloads['gauge']; beat: Extract<FromShard, { t: 'beat' }> } {
    const lagMs = this.loopLag.take();
    const cpu = process.cpuUsage(this.cpuMark);
    this.cpuMark = process.cpuUsage();
    const load = this.load.take();
    const gauge: EventPayloads['gauge'] = {
      backlog: s.backlog,
      in_flight: s.inFlight,
      limit: s.limit,
      loop_lag_ms: round3(lagMs),
      conns_open: s.connsOpen,
      cpu_ms: round3((cpu.user + cpu.system) / 1000),
      loop_busy: round3(load.loopBusy),
      host_busy: round3(load.hostBusy),
      rss_mb: rssMb(),
    };
    if (load.cpuWait !== null) gauge.cpu_wait = round3(load.cpuWait);
    const beat: Extract<FromShard, { t: 'beat' }> = {
      t: 'beat',
      inFlight: s.inFlight,
      limit: s.limit,
      loopLagMs: lagMs,
      connsOpen: s.connsOpen,
      connsOpened: s.connsOpened,
      stale: s.stale,
      paused: s.paused,
      loopBusy: load.loopBusy,
      cpuWait: load.cpuWait,
    };
    return { gauge, beat };
  }

  close(): void {
    this.load.close();
    this.loopLag.stop();
  }
}

/** The shard's `shard_end`: requests it finished, its CPU since `cpuSince` (its start), its socket reads. */
export function shardEnd(
  requests: number,
  cpuSince: NodeJS.CpuUsage | undefined,
  socketReads: number | undefined,
): EventPayloads['shard_end'] {
  const cpu = process.cpuUsage(cpuSince);
  const end: EventPayloads['shard_end'] = { requests, cpu_user_ms: cpu.user / 1000, cpu_system_ms: cpu.system / 1000 };
  if (socketReads !== undefined) end.socket_reads = socketReads;
  return end;
}
