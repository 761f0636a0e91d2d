import { cpus } from 'node:os';

/**
 * The machine's CPU utilization over all cores between calls of `take()`, 0–1: what is left for
 * the server, the other shards and the coordinator when they share the machine. os.cpus() costs
 * ~60 µs here, so a few calls a second are free.
 */
export class HostCpu {
  private mark = HostCpu.totals();

  take(): number {
    const now = HostCpu.totals();
    const total = now.total - this.mark.total;
    const idle = now.idle - this.mark.idle;
    this.mark = now;
    return total > 0 ? Math.min(1, Math.max(0, 1 - idle / total)) : 0;
  }

  private static totals(): { total: number; idle: number } {
    let total = 0;
    let idle = 0;
    for (const c of cpus()) {
      const t = c.times;
      total += t.user + t.nice + t.sys + t.idle + t.irq;
      idle += t.idle;
    }
    return { total, idle };
  }
}
