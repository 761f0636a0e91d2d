import { EndpointHealth, type FailureVerdict } from '../../client/endpoint-health.js';
import type { Cause } from '../../events/event-types.js';

/**
 * A shard's dispatch gate for the endpoint-down pause: EndpointHealth's verdicts plus the probe
 * timer. While the endpoint is down `admit` lets one request through as a probe when one is due
 * (250 ms after the outage began, then 0.5 s, then every second); `onDue` is called when a probe
 * may go, so the shard can start one.
 */
export class ProbeGate {
  readonly health: EndpointHealth;
  private timer: NodeJS.Timeout | undefined;
  private due = false;
  /** The id of the attempt in flight as a probe, if any. */
  private probeId: string | undefined;

  constructor(
    maxDownMs: number,
    private readonly onDue: () => void,
    /** One of the run's several endpoints (see EndpointHealth). @default false */
    oneOfSeveral = false,
  ) {
    this.health = new EndpointHealth(maxDownMs, oneOfSeveral);
  }

  /** Whether the request `id` may start now; while down, it goes only as the due probe. */
  admit(id: string): boolean {
    if (!this.health.down) return true;
    if (!this.due || this.probeId !== undefined) return false;
    this.due = false;
    this.health.probes++;
    this.probeId = id;
    return true;
  }

  /** The attempt of request `id` ended (call before its failure is judged). */
  ended(id: string): void {
    if (this.probeId === id) this.probeId = undefined;
  }

  /** An answer's status line arrived. Returns true when it ended an outage. */
  noteStatus(status: number): boolean {
    if (!this.health.noteStatus(status)) return false;
    this.reset();
    return true;
  }

  /** An attempt failed: what it means for the endpoint; the next probe is scheduled when one is owed. */
  noteFailure(cause: Cause, status: number | undefined, ts: number): FailureVerdict {
    const verdict = this.health.noteFailure(cause, status, ts);
    if (verdict === 'gave_up') this.reset();
    // The outage began, or the probe failed (nothing in flight as a probe, none due or scheduled).
    else if (
      verdict === 'opened' ||
      (verdict === 'held' && this.probeId === undefined && !this.due && this.timer === undefined)
    )
      this.schedule();
    return verdict;
  }

  stop(): void {
    this.reset();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.due = true;
      this.onDue();
    }, this.health.nextProbeDelayMs());
  }

  private reset(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.due = false;
  }
}
