import type { Dispatcher } from 'undici';
import { Deque } from '../util/deque.js';

interface Held {
  c: Dispatcher.DispatchController;
  onResume: () => void;
  dueMs: number;
}

/**
 * Holds a stream's socket reads for `windowMs` after a read, so a stream whose server writes a
 * token every few ms is read several tokens per syscall. With 512 streams of one-token chunks, a
 * read per token is most of a shard's CPU (kernel, libuv, the read callback) while the parsing is
 * a fraction of it; a 50 ms hold cut CPU per token by a sixth to a quarter (BENCHMARKS.md, "Read
 * coalescing"). Each stream resumes on its own schedule rather than all from one timer tick: one
 * shared tick made every held stream read in the same loop turn, and those bursts delayed the
 * first tokens of other streams. Holds are a FIFO (the same window for all, so due times are in
 * order; after the window shrinks, a newer hold waits at most the old window) served by one timer.
 * Only the raw transport stops reading while paused; undici keeps reading into its socket buffer.
 */
export class ReadCoalescer {
  private readonly held = new Deque<Held>();
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param windowMs how long a held stream waits; 0 holds nothing (changeable, see setWindow)
   * @param now monotonic clock in ms @default performance.now
   */
  constructor(
    private windowMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Whether streams should be held right now. */
  get active(): boolean {
    return this.windowMs > 0;
  }

  get window(): number {
    return this.windowMs;
  }

  setWindow(ms: number): void {
    this.windowMs = ms;
  }

  /** Pause `c` until the window has passed; `onResume` runs just before it resumes. */
  hold(c: Dispatcher.DispatchController, onResume: () => void): void {
    c.pause();
    this.held.push({ c, onResume, dueMs: this.now() + this.windowMs });
    this.timer ??= setTimeout(this.flush, this.windowMs);
  }

  private readonly flush = (): void => {
    this.timer = undefined;
    // Half a millisecond early rather than a timer per stream: timers fire late, never early.
    const now = this.now() + 0.5;
    let h = this.held.peek();
    while (h && h.dueMs <= now) {
      this.held.shift();
      h.onResume();
      h.c.resume();
      h = this.held.peek();
    }
    if (h) this.timer = setTimeout(this.flush, Math.max(1, h.dueMs - now));
  };

  /** Resume everything held now (shutdown). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (let h = this.held.shift(); h; h = this.held.shift()) {
      h.onResume();
      h.c.resume();
    }
  }
}
