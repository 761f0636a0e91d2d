import { summarize } from '../metrics/percentiles.js';

/** A stretch of the run at one usable in-flight limit (0: no slots, or the endpoint was down). */
export interface LimitSegment {
  /** Start, epoch ms; it lasts until the next segment's start (the last one until the run's end). */
  t: number;
  limit: number;
  /** Completion tokens generated in it (each request's spread over its decode). */
  tokens: number;
  /** Server TTFT of the answers whose attempt started in it. */
  ttft: number[];
}

/** One row of `detail.by_limit`. */
export interface LimitLevel {
  limit: number;
  seconds: number;
  tpm: number;
  ttft_p50: number | null;
  ttft_p95: number | null;
}

/**
 * The run's in-flight limit over time, kept at the events' own resolution rather than a timeline
 * bin's: an adaptive limit that moved in the run's last half-second ran at its last level, and a
 * table by limit built from whole seconds left that level out (the run "settled at 9" while its
 * table's levels were 10–12).
 */
export class LimitTimeline {
  readonly segments: LimitSegment[] = [];

  /** The run ran at `limit` from `fromTs` on (until the next note). */
  note(fromTs: number, limit: number): void {
    if (this.segments[this.segments.length - 1]?.limit !== limit)
      this.segments.push({ t: fromTs, limit, tokens: 0, ttft: [] });
  }

  /** Tokens generated evenly over [fromTs, toTs] (at fromTs when the span is empty). */
  addTokens(fromTs: number, toTs: number, tokens: number): void {
    const s = this.segments;
    let i = this.indexAt(fromTs);
    const span = toTs - fromTs;
    if (span <= 0) {
      if (i >= 0) s[i]!.tokens += tokens;
      return;
    }
    // A decode that began before the first level counts from it on.
    if (i < 0) i = 0;
    for (; i < s.length && s[i]!.t <= toTs; i++) {
      const lo = Math.max(fromTs, s[i]!.t);
      const hi = Math.min(toTs, s[i + 1]?.t ?? toTs);
      if (hi > lo) s[i]!.tokens += (tokens * (hi - lo)) / span;
    }
  }

  /** An answer whose attempt started at `startTs` had this server TTFT. */
  addTtft(startTs: number, ttftMs: number): void {
    const i = this.indexAt(startTs);
    if (i >= 0) this.segments[i]!.ttft.push(ttftMs);
  }

  /** The last segment that started at or before `ts`; -1 before the first. */
  private indexAt(ts: number): number {
    const s = this.segments;
    let lo = 0;
    let hi = s.length - 1;
    if (hi < 0 || s[0]!.t > ts) return -1;
    // The common case: the latest segment (events arrive in time order, limits change rarely).
    if (s[hi]!.t <= ts) return hi;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (s[mid]!.t <= ts) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

/**
 * Time, throughput and TTFT at each limit the run ran at, lowest limit first (see
 * ReportDetail.by_limit). Stretches with no slots (limit 0, an endpoint down) are left out.
 */
export function levelsByLimit(segments: readonly LimitSegment[], endMs: number): LimitLevel[] {
  const groups = new Map<number, { ms: number; tokens: number; ttft: number[] }>();
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    const ms = Math.max(0, (segments[i + 1]?.t ?? endMs) - seg.t);
    if (seg.limit <= 0 || ms <= 0) continue;
    let g = groups.get(seg.limit);
    if (!g) groups.set(seg.limit, (g = { ms: 0, tokens: 0, ttft: [] }));
    g.ms += ms;
    g.tokens += seg.tokens;
    for (const t of seg.ttft) g.ttft.push(t);
  }
  return [...groups.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([limit, g]) => {
      const s = summarize(g.ttft);
      return {
        limit,
        seconds: g.ms / 1000,
        tpm: (g.tokens * 60_000) / g.ms,
        ttft_p50: s.p50,
        ttft_p95: s.p95,
      };
    });
}
