/** A request the report names: one of the slowest, by e2e latency. */
export interface SlowRequest {
  rid: number;
  e2e_ms: number;
  attempts: number;
  outcome: string;
}

/** A failed attempt the report shows with its message. */
export interface FailedAttempt {
  rid: number;
  attempt: number;
  cause: string;
  status: number | null;
  error: string;
}

/**
 * The few requests a report names by id — the 10 slowest and the last 10 failed attempts — kept by
 * interned id while events stream by; ids become strings only once, at the end.
 */
export class NotableRequests {
  /** Slowest first; ties keep arrival order. */
  readonly slowest: SlowRequest[] = [];
  readonly recentErrors: FailedAttempt[] = [];

  noteFinished(rid: number, e2eMs: number, attempts: number, outcome: string): void {
    const s = this.slowest;
    if (s.length === 10 && e2eMs <= s[9]!.e2e_ms) return;
    const e2e = Math.round(e2eMs * 1000) / 1000;
    let at = s.length;
    while (at > 0 && s[at - 1]!.e2e_ms < e2e) at--;
    s.splice(at, 0, { rid, e2e_ms: e2e, attempts, outcome });
    if (s.length > 10) s.pop();
  }

  noteFailedAttempt(failed: FailedAttempt): void {
    this.recentErrors.push(failed);
    if (this.recentErrors.length > 10) this.recentErrors.shift();
  }

  /** The interned ids these name. */
  rids(): number[] {
    return [...new Set([...this.slowest, ...this.recentErrors].map((x) => x.rid).filter((rid) => rid >= 0))];
  }

  /** The lists with ids as strings (`names` from rids()). */
  named(names: ReadonlyMap<number, string>) {
    const name = (rid: number) => names.get(rid) ?? '';
    return {
      slowest: this.slowest.map(({ rid, ...rest }) => ({ id: name(rid), ...rest })),
      recentErrors: this.recentErrors.map(({ rid, ...rest }) => ({ id: name(rid), ...rest })),
    };
  }
}
