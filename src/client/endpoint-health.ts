import type { Cause } from '../events/event-types.js';

/** Answers that mean "the server is not there right now" rather than "this request failed". */
const DOWN_STATUSES = new Set([502, 503, 504]);
/** 502/503/504 answers in a row (no other answer between) that open the breaker. */
const DOWN_ANSWERS_IN_A_ROW = 3;
/** First probe delay after the breaker opens, and the most it grows to (doubling). */
const PROBE_FIRST_MS = 250;
const PROBE_MAX_MS = 1000;

/** What a failed attempt means for the endpoint (see EndpointHealth.noteFailure). */
export type FailureVerdict =
  /** An ordinary failure: retry policy as usual. */
  | 'counts'
  /** This failure opened the breaker: the request waits for the endpoint, free. */
  | 'opened'
  /** The endpoint was already down: the request waits for it, free. */
  | 'held'
  /** Down for longer than the pause may last: the breaker gave up; this failure counts. */
  | 'gave_up';

/**
 * A circuit breaker for one endpoint, per shard. Down-signals are a refused connection (or a
 * connect timeout) and 502/503/504 answers; a refused connection opens it at once, the 5xx after
 * three in a row. With one endpoint it engages only once the endpoint has answered in this run, so a
 * wrong URL or a server that never came up fails as before. With several (`oneOfSeveral`) a refused
 * connection opens it from the start: a replica down when the run begins is down like one that went
 * down later, or its shard — all slots free, every attempt failing at once — would draw the others'
 * work and fail it (one of two servers down at start: 2,259 retries and 11 failed requests of 2,000,
 * 120 s for a run of 1 s). While open the shard
 * starts no attempts but one probe at a time, every 250 ms doubling to 1 s; any answer that is not
 * a down-status closes it. After `maxDownMs` it gives up and failures count again.
 */
export class EndpointHealth {
  /** Whether dispatch is paused. */
  down = false;
  /** When the current outage began (clock ms). */
  downSinceTs = 0;
  /** Probes sent in the current outage. */
  probes = 0;
  private seenUp = false;
  private downAnswers = 0;
  private probeDelayMs = PROBE_FIRST_MS;

  constructor(
    private readonly maxDownMs: number,
    /** One of the run's several endpoints: the others carry the run while this one is down. @default false */
    private readonly oneOfSeveral = false,
  ) {}

  /** An answer's status line arrived. Returns true when it ended an outage. */
  noteStatus(status: number): boolean {
    if (DOWN_STATUSES.has(status)) return false;
    this.seenUp = true;
    this.downAnswers = 0;
    if (!this.down) return false;
    this.down = false;
    return true;
  }

  /** An attempt failed with `cause` (and `status` when it got an answer): what it means here. */
  noteFailure(cause: Cause, status: number | undefined, ts: number): FailureVerdict {
    if (this.down) {
      if (ts - this.downSinceTs < this.maxDownMs) return 'held';
      this.down = false;
      this.seenUp = false;
      return 'gave_up';
    }
    const refused = status === undefined && (cause === 'conn_refused' || cause === 'timeout_connect');
    const downAnswer = status !== undefined && DOWN_STATUSES.has(status);
    if (downAnswer) this.downAnswers++;
    const opens = refused || (downAnswer && this.downAnswers >= DOWN_ANSWERS_IN_A_ROW);
    if (!opens || !(this.seenUp || (this.oneOfSeveral && refused))) return 'counts';
    this.down = true;
    this.downSinceTs = ts;
    this.probes = 0;
    this.probeDelayMs = PROBE_FIRST_MS;
    return 'opened';
  }

  /** The delay before the next probe (250 ms, doubling to 1 s within one outage). */
  nextProbeDelayMs(): number {
    const d = this.probeDelayMs;
    this.probeDelayMs = Math.min(PROBE_MAX_MS, d * 2);
    return d;
  }
}
