import type { Clock } from '../../util/clock.js';

/**
 * Event-loop lag: a timer that should fire every `intervalMs` records how late it fires; `take()`
 * returns the worst lateness since the last call. (perf_hooks' monitorEventLoopDelay on Node 20
 * reports its own resolution as delay and missed a 50 ms block in our check, so we measure directly.)
 */
export class LoopLagSampler {
  private maxLagMs = 0;
  private expected: number;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly clock: Clock,
    private readonly intervalMs = 20,
  ) {
    this.expected = clock() + intervalMs;
    this.timer = setInterval(() => {
      const now = this.clock();
      const lag = now - this.expected;
      if (lag > this.maxLagMs) this.maxLagMs = lag;
      this.expected = now + this.intervalMs;
    }, intervalMs);
    this.timer.unref();
  }

  /** Worst lag in ms since the previous call (0 if the loop was never late). */
  take(): number {
    const lag = Math.max(0, this.maxLagMs);
    this.maxLagMs = 0;
    return lag;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
