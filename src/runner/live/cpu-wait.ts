import { closeSync, openSync, readSync } from 'node:fs';

/**
 * The share of wall time this thread was runnable but waiting for a core, between calls of
 * `take()`: Linux's per-thread scheduler statistics (`/proc/thread-self/schedstat`, field 2,
 * run-queue wait in ns). Event-loop utilization cannot see it — a thread woken from epoll that
 * waits for a core counts as idle — yet it is what a loop on a shared, saturated machine loses:
 * two shards and a server on two cores waited 29% of the time (median) while their loops looked
 * 40% busy. null where the file does not exist (other systems) or the kernel keeps no statistics.
 */
export class CpuWait {
  private readonly fd: number | undefined;
  private readonly buf = Buffer.alloc(128);
  private lastWaitMs = 0;
  private lastMs = 0;

  constructor(private readonly now: () => number = () => performance.now()) {
    try {
      this.fd = openSync('/proc/thread-self/schedstat', 'r');
      this.lastWaitMs = this.read() ?? 0;
      this.lastMs = this.now();
    } catch {
      this.fd = undefined;
    }
  }

  /** Share of the time since the last call spent waiting for a core (0–1), or null if unknown. */
  take(): number | null {
    if (this.fd === undefined) return null;
    const waitMs = this.read();
    const now = this.now();
    if (waitMs === undefined) return null;
    const share = now > this.lastMs ? (waitMs - this.lastWaitMs) / (now - this.lastMs) : 0;
    this.lastWaitMs = waitMs;
    this.lastMs = now;
    return Math.min(1, Math.max(0, share));
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
  }

  private read(): number | undefined {
    const n = readSync(this.fd!, this.buf, 0, this.buf.length, 0);
    const fields = this.buf.toString('latin1', 0, n).split(' ');
    const waitNs = Number(fields[1]);
    return Number.isFinite(waitNs) ? waitNs / 1e6 : undefined;
  }
}
