/** Epoch milliseconds (fractional) from a monotonic source. */
export type Clock = () => number;

/**
 * The event clock: `performance.timeOrigin + performance.now()`. Monotonic within a process and
 * anchored to wall time at process start, so files written by different processes on one machine
 * merge by timestamp to within microseconds.
 */
export const monotonicEpochMs: Clock = () => performance.timeOrigin + performance.now();
