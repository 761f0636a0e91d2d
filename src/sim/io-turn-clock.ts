/**
 * When the event loop began the I/O turn it is in. Every socket read handled in one poll phase was
 * already in the kernel when that phase began, so for a request parsed late in a busy turn, the
 * turn's start — not the moment its head was parsed — is when the server could first have seen it;
 * the difference is the server's own queue (parsing the requests ahead of it), which a benchmark
 * must count as server time, not as time the client added.
 *
 * `read()` is meant for handlers that run in the poll phase (socket reads): the first call in a turn
 * takes the clock, later calls in the same turn return that reading, and a check-phase callback
 * (setImmediate) forgets it before the next turn.
 */
export class IoTurnClock {
  private turnStartMs: number | undefined;

  constructor(private readonly now: () => number) {}

  /** The start of the current I/O turn (`nowMs`, or the clock, if this is its first read). */
  read(nowMs: number = this.now()): number {
    if (this.turnStartMs === undefined) {
      this.turnStartMs = nowMs;
      setImmediate(this.forget);
    }
    return this.turnStartMs;
  }

  private readonly forget = (): void => {
    this.turnStartMs = undefined;
  };
}
