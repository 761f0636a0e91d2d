export type RunStatus = 'finished' | 'interrupted' | 'failed';

/**
 * How an engine's run ends — finished, interrupted (drained within a timeout, or abandoned) or failed —
 * once; `stopping` from the first sign of it on. The coordinator and a worker's direct shard share it.
 */
export class RunEnd {
  stopping = false;
  failure: Error | undefined;
  /** The intake waiting for room, if it is: woken when room frees or the run stops (it then sees `stopping`). */
  private spaceWaiter: (() => void) | undefined;
  readonly ended: Promise<RunStatus>;
  private resolve!: (status: RunStatus) => void;

  constructor() {
    this.ended = new Promise((resolve) => (this.resolve = resolve));
  }

  /** Wait until `roomFreed()` (or the run stops). */
  waitForRoom(): Promise<void> {
    return new Promise((resolve) => (this.spaceWaiter = resolve));
  }

  /** Wake the intake waiting for room, if one is. */
  roomFreed(): void {
    const wake = this.spaceWaiter;
    this.spaceWaiter = undefined;
    wake?.();
  }

  finish(status: RunStatus): void {
    this.resolve(status);
  }

  /** Stop as failed with `err` (the first failure is the one told). */
  fail(err: Error): void {
    this.failure ??= err;
    this.stop();
    this.finish('failed');
  }

  /**
   * Stop taking work: `abandon` ends the run now; `drain` once `drained()` (in-flight attempts finished)
   * or after `drainTimeoutMs`. Asked again while draining, `abandon` ends it at once.
   */
  interrupt(mode: 'drain' | 'abandon', drained: () => boolean, drainTimeoutMs: number): void {
    if (this.stopping) {
      if (mode === 'abandon') this.finish('interrupted');
      return;
    }
    this.stop();
    if (mode === 'abandon') return this.finish('interrupted');
    whenDrained(drained, drainTimeoutMs, () => this.finish('interrupted'));
  }

  private stop(): void {
    this.stopping = true;
    this.roomFreed();
  }
}

/**
 * Call `done` once `drained()` holds (looked at every 10 ms) or `timeoutMs` has passed, whichever comes
 * first: how an interrupted run lets its in-flight attempts finish without waiting on a stuck one forever.
 */
function whenDrained(drained: () => boolean, timeoutMs: number, done: () => void): void {
  const deadline = setTimeout(() => {
    clearInterval(poll);
    done();
  }, timeoutMs);
  const poll = setInterval(() => {
    if (!drained()) return;
    clearInterval(poll);
    clearTimeout(deadline);
    done();
  }, 10);
}
