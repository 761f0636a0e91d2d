/** The hold `--read-coalesce-ms auto` uses when it holds. */
export const AUTO_READ_HOLD_MS = 50;
/** CPU demand (loop utilization + time waiting for a core) at which auto starts holding reads… */
export const AUTO_HOLD_ON_BUSY = 0.6;
/** …and below which it stops (apart, so a shard near the line does not flip every second)… */
export const AUTO_HOLD_OFF_BUSY = 0.3;
/** …unless the machine's cores are this busy: then a loop half as busy is worth relieving too… */
export const AUTO_HOLD_ON_HOST = 0.85;
/** …until the machine is below this. */
export const AUTO_HOLD_OFF_HOST = 0.6;
/** A loop this idle has nothing worth saving, however busy the machine. */
export const AUTO_HOLD_MIN_BUSY = 0.15;
/** Streams must deliver content chunks at least this far apart: closer chunks share reads anyway. */
export const AUTO_MIN_CHUNK_GAP_MS = 2;
/** Streams must last this many holds, so reading each end up to a hold late costs them ≤ ~5%. */
export const AUTO_MIN_DECODE_HOLDS = 10;

/** What the shard saw over the last decision window (250 ms). */
export interface ReadHoldInputs {
  /** Event-loop utilization, 0–1. */
  loopBusy: number;
  /** Share of the time the loop's thread was runnable but waiting for a core (0 where unknown). */
  cpuWait: number;
  /** The machine's CPU utilization over all cores, 0–1 (other shards, the coordinator, anything else). */
  hostBusy: number;
  /** Streams that ended in the interval after at least two content chunks. */
  streams: number;
  /** Their mean first → last content chunk time. */
  decodeMs: number;
  /** Their mean gap between content chunks. */
  chunkGapMs: number;
}

/**
 * The read hold for the next decision window. A number is used as is. `auto` holds
 * AUTO_READ_HOLD_MS while CPU is scarce — the shard's demand (loop utilization plus the time its
 * thread waited for a core) ≥ 60%, or the machine's cores ≥ 85% busy with the loop ≥ 30% — and
 * the streams that ended were paced (chunks ≥ 2 ms apart, so each was its own socket read) and
 * long (≥ 10 holds). It lets go when the loop is < 15% busy, or demand < 30% with the machine
 * < 60%, or the streams stop looking like that. The wait counts because a loop that cannot get a
 * core looks idle to utilization: two shards and a server on two cores each ran at ~40% while
 * waiting ~29% of the time, and holding there saved a quarter of their CPU per token. Why so
 * narrow: a hold reads each stream's end up to the hold late. With 512 paced streams that buys a
 * sixth to a third less CPU per token for 0–2% of the throughput; with fast short streams (many
 * tokens per read already) the same hold cost 41–55% of it (BENCHMARKS.md, "Read coalescing").
 */
export function nextReadHoldMs(setting: number | 'auto', currentMs: number, s: ReadHoldInputs): number {
  if (setting !== 'auto') return setting;
  const demand = s.loopBusy + s.cpuWait;
  if (s.loopBusy < AUTO_HOLD_MIN_BUSY || (demand < AUTO_HOLD_OFF_BUSY && s.hostBusy < AUTO_HOLD_OFF_HOST)) return 0;
  if (s.streams > 0 && (s.chunkGapMs < AUTO_MIN_CHUNK_GAP_MS || s.decodeMs < AUTO_MIN_DECODE_HOLDS * AUTO_READ_HOLD_MS)) return 0;
  const scarce = demand >= AUTO_HOLD_ON_BUSY || (s.hostBusy >= AUTO_HOLD_ON_HOST && s.loopBusy >= AUTO_HOLD_OFF_BUSY);
  if (scarce && s.streams > 0) return AUTO_READ_HOLD_MS;
  return currentMs;
}

/**
 * The auto policy's state: streams that ended since the last decision, folded into the means
 * nextReadHoldMs takes. The shard notes each stream as it ends and decides every 250 ms.
 */
export class ReadHoldTracker {
  private streams = 0;
  private decodeMs = 0;
  private gaps = 0;
  /** The hold decided last, before the cap (`auto` starts unheld). */
  private currentMs: number;

  constructor(
    private readonly setting: number | 'auto',
    /** Holds above this are cut to it (a quarter of the idle timeout, a twentieth of the total). */
    private readonly maxMs: number,
  ) {
    this.currentMs = setting === 'auto' ? 0 : setting;
  }

  get holdMs(): number {
    return Math.min(this.currentMs, this.maxMs);
  }

  /** A stream ended after `chunks` content chunks, the first and last read at these times. */
  noteStream(firstTs: number, lastTs: number, chunks: number): void {
    if (chunks < 2) return;
    this.streams++;
    this.decodeMs += lastTs - firstTs;
    this.gaps += chunks - 1;
  }

  /** Decide the hold from the loop's and the machine's load since the last call; returns it. */
  decide(loopBusy: number, hostBusy: number, cpuWait = 0): number {
    const inputs: ReadHoldInputs = {
      loopBusy,
      cpuWait,
      hostBusy,
      streams: this.streams,
      decodeMs: this.streams ? this.decodeMs / this.streams : 0,
      chunkGapMs: this.gaps ? this.decodeMs / this.gaps : 0,
    };
    this.streams = this.decodeMs = this.gaps = 0;
    this.currentMs = nextReadHoldMs(this.setting, this.currentMs, inputs);
    return this.holdMs;
  }
}
