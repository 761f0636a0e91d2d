import { performance } from 'node:perf_hooks';
import { CpuWait } from './cpu-wait.js';
import { HostCpu } from './host-cpu.js';

/** This process's resident memory in MiB, one decimal (for gauges: a long run's memory growth). */
export function rssMb(): number {
  return Math.round(process.memoryUsage.rss() / 104857.6) / 10;
}

/** How loaded a shard and its machine were between two samples. */
export interface LoadSample {
  /** The event loop's utilization, 0–1. */
  loopBusy: number;
  /** The machine's CPU utilization over all cores, 0–1. */
  hostBusy: number;
  /** Share of the time the loop's thread waited for a core (Linux), 0–1; null where unknown. */
  cpuWait: number | null;
}

/**
 * The three load figures a shard reports in its gauges, each measured since the
 * previous `take()`.
 */
export class LoadSampler {
  private elu = performance.eventLoopUtilization();
  private readonly host = new HostCpu();
  private readonly wait = new CpuWait();

  take(): LoadSample {
    const loopBusy = performance.eventLoopUtilization(this.elu).utilization;
    this.elu = performance.eventLoopUtilization();
    return { loopBusy, hostBusy: this.host.take(), cpuWait: this.wait.take() };
  }

  close(): void {
    this.wait.close();
  }
}
