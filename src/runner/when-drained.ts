/**
 * Call `done` once `drained()` holds (looked at every 10 ms) or `timeoutMs` has passed, whichever comes
 * first: how an interrupted run lets its in-flight attempts finish without waiting on a stuck one forever.
 */
export function whenDrained(drained: () => boolean, timeoutMs: number, done: () => void): void {
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
