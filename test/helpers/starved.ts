import { THRESHOLDS, type Report } from '../../src/index.js';

/**
 * Whether a run's shards waited for a core (or the machine was saturated), by its own report. A client
 * starved of CPU (the suite beside a busy process on two cores) is slower at everything, which its
 * report rightly shows; tests that assert a finding's absence or an exact bound check this first.
 */
export function starved(r: Report): boolean {
  return (
    (r.event_loop.cpu_wait_p50 ?? 0) >= THRESHOLDS.cpuWait || (r.event_loop.host_busy_p50 ?? 0) >= THRESHOLDS.hostBusy
  );
}
