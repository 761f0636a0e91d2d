import { percentileOf, round3, summarize, summarizeSorted } from '../metrics/percentiles.js';
import { computeTpm } from '../metrics/tpm.js';
import { diagnose } from './verdict.js';
import { levelsByLimit } from './limit-timeline.js';
import { BUCKETS, type Bucket, type Report } from './report-types.js';
import type { Bin, RunFacts, ShareFacts } from './run-facts.js';

const MAX_POINTS = 1200;

/**
 * Turn one pass of facts into the report document (pure: no I/O, no clock). Ratios and rates are
 * exact; only millisecond figures measured between two event timestamps are rounded, to the event
 * clock's resolution (µs), which removes floating-point noise and loses nothing. Views round.
 */
export function buildReport(f: RunFacts): Report {
  const durationMs = Math.max(0, f.endMs - f.startMs - f.idleMs);
  const attempted = f.requests;
  const bins = downsample(f.bins, MAX_POINTS);
  // Sorted once for the summary, the floor and the p25.
  const serverTtft = Float64Array.from(f.serverTtft).sort();
  const floorSource = serverTtft.length > 0 ? serverTtft : Float64Array.from(f.plainServerMs).sort();
  const buckets = Object.fromEntries(BUCKETS.map((b) => [b, round3(f.buckets[b])])) as Record<Bucket, number>;
  const timelineSec = bins.map((b) => ({ b, backlogPositive: b.backlog > 0 }));
  const underBacklog = timelineSec.filter((x) => x.backlogPositive && x.b.limit > 0 && !x.b.down);
  const inflights = underBacklog.map((x) => x.b.inFlight);
  const mean = inflights.length ? inflights.reduce((a, b) => a + b, 0) / inflights.length : 0;
  const sd = inflights.length ? Math.sqrt(inflights.reduce((a, v) => a + (v - mean) ** 2, 0) / inflights.length) : 0;
  // Successful attempts ordered by the in-flight count they started with (ties in arrival order).
  const loadOrder = Array.from(f.ttftLoadInFlight.keys()).sort(
    (a, b) => f.ttftLoadInFlight[a]! - f.ttftLoadInFlight[b]! || a - b,
  );
  const q = Math.floor(loadOrder.length / 4);
  const p50Of = (idx: number[]) => percentileOf(Float64Array.from(idx, (i) => f.ttftLoadMs[i]!).sort(), 50);
  const report: Report = {
    schema: 'shardline.report/v1',
    run_id: f.runIds.length === 1 ? f.runIds[0]! : f.runIds.length ? f.runIds.join('+') : null,
    run_ids: f.runIds,
    window: {
      start: f.events ? new Date(f.startMs).toISOString() : null,
      end: f.events ? new Date(f.endMs).toISOString() : null,
      duration_s: durationMs / 1000,
      idle_s: f.idleMs / 1000,
    },
    requests: {
      total: f.requests,
      succeeded: f.succeeded,
      failed: f.failed,
      success_rate: f.succeeded + f.failed > 0 ? f.succeeded / (f.succeeded + f.failed) : null,
    },
    attempts: f.attempts,
    retries: {
      count: f.retries,
      // Attempts that were retries / attempts: neither a request's first try in a run (a
      // --retry-failed re-run starts again at 1) nor a try after a pause for a down endpoint.
      rate: f.attempts > 0 ? retriedAttempts(f) / f.attempts : null,
      per_request: attempted > 0 ? retriedAttempts(f) / attempted : null,
      causes: f.retryCauses,
    },
    tokens: { completion: f.completionTokens, prompt: f.promptTokens, estimated: f.estimatedTokens },
    tpm: computeTpm(f.minutes, f.startMs, f.endMs, f.idleMs),
    ttft_ms: { server: summarizeSorted(serverTtft), e2e: summarize(f.e2eTtft) },
    latency_ms: { e2e: summarize(f.e2eLatency) },
    tpot_ms: summarize(f.tpot),
    by_endpoint: byEndpoint(f, durationMs),
    by_upstream: byUpstream(f, durationMs),
    utilization: {
      limit: f.limitMax,
      shards: f.shards,
      limit_final: f.limitFinal,
      limit_settled: f.limitSettled,
      mean_in_flight: f.activeMs > 0 ? f.inFlightIntegral / f.activeMs : 0,
      mean_backlog: f.activeMs > 0 ? f.backlogIntegral / f.activeMs : 0,
      busy_fraction: f.activeMs > 0 ? f.busyMs / f.activeMs : 0,
      admission_gap_s: f.gapMs / 1000,
      timeline: bins.map((b) => ({
        t: new Date(b.t).toISOString(),
        backlog: b.backlog,
        in_flight: b.inFlight,
        limit: b.limit,
      })),
    },
    connections: {
      opened: f.connsOpened,
      per_request: attempted > 0 ? f.connsOpened / attempted : null,
      connect_ms: summarize(f.connectMs),
      stale_resends: f.staleResends,
      keepalive_off_shards: f.keepaliveOffShards,
      keepalive_disabled_shards: f.keepaliveDisabledShards,
    },
    outages: { count: f.outages, down_s: f.downMs / 1000, paused_attempts: f.pausedAttempts },
    event_loop: {
      lag_p99_ms: summarize(f.loopLag).p99,
      busy_p50: summarize(f.loopBusy).p50,
      host_busy_p50: summarize(f.hostBusy).p50,
      cpu_wait_p50: summarize(f.cpuWait).p50,
      read_hold: f.holdGauges > 0 ? { held_fraction: f.heldGauges / f.holdGauges, max_ms: f.readHoldMaxMs } : null,
    },
    client_cpu: {
      shard_cpu_ms: f.shardCpuMs,
      us_per_request: f.attempts > 0 && f.shardCpuMs > 0 ? (f.shardCpuMs * 1000) / f.attempts : null,
      us_per_completion_token:
        f.completionTokens > 0 && f.shardCpuMs > 0 ? (f.shardCpuMs * 1000) / f.completionTokens : null,
      reads_per_completion_token:
        f.completionTokens > 0 && f.socketReadShards > 0 ? f.socketReads / f.completionTokens : null,
    },
    buckets_ms: buckets,
    results: null,
    verdict: { bound: 'healthy', dominant: null, findings: [] },
    detail: {
      failure_causes: f.failureCauses,
      max_in_flight: f.maxInFlight,
      attempt_error_causes: f.attemptErrorCauses,
      attempt_error_statuses: f.attemptErrorStatuses,
      // The floor: the 1st percentile (the minimum below 100 samples), the server's answer when idle.
      // Where no answer had a first token (an embeddings job), the server's whole answer stands in.
      server_ttft_floor_ms: percentileOf(floorSource, 1),
      server_ttft_p25_ms: percentileOf(floorSource, 25),
      server_queue_ms: summarize(f.serverQueueMs),
      plain_server_ms: summarize(f.plainServerMs),
      max_retry_after_ms: f.maxRetryAfterMs > 0 ? f.maxRetryAfterMs : null,
      bad_lines: f.badLines,
      events: f.events,
      server_ttft_by_load: {
        low_p50: q > 0 ? p50Of(loadOrder.slice(0, q)) : null,
        high_p50: q > 0 ? p50Of(loadOrder.slice(-q)) : null,
      },
      not_work_conserving_fraction: f.backloggedMs > 0 ? f.gapMs / f.backloggedMs : 0,
      in_flight_cv_under_backlog: inflights.length > 1 && mean > 0 ? sd / mean : null,
      by_limit: levelsByLimit(f.limitSegments, f.endMs),
      per_second: bins.map((b) => {
        const s = summarize(b.ttft);
        return {
          t: b.t,
          tokens: b.tokens,
          retries: b.retries,
          conns: b.conns,
          ttft_p50: s.p50,
          ttft_p95: s.p95,
          ttft_p99: s.p99,
        };
      }),
      retry_causes_over_time: bins.filter((b) => b.retries > 0).map((b) => ({ t: b.t, causes: b.retryCauses })),
      slowest: f.slowest,
      recent_errors: f.recentErrors,
    },
  };
  report.verdict = diagnose(report);
  return report;
}

/** What every split of the run reports alike (an endpoint, a server), over the run's window. */
function shareFigures(b: ShareFacts, perMin: (n: number) => number) {
  return {
    requests: b.requests,
    succeeded: b.succeeded,
    failed: b.failed,
    success_rate: b.requests > 0 ? b.succeeded / b.requests : null,
    tpm: perMin(b.completionTokens),
    input_tpm: perMin(b.promptTokens),
    latency_ms: summarize(b.latency),
    ttft_ms: b.ttft.length > 0 ? summarize(b.ttft) : null,
  };
}

/** Each endpoint's figures, over the run's window. */
function byEndpoint(f: RunFacts, durationMs: number): Report['by_endpoint'] {
  const perMin = (n: number) => (durationMs > 0 ? (n * 60_000) / durationMs : 0);
  const out: Report['by_endpoint'] = {};
  for (const [name, e] of Object.entries(f.byEndpoint)) {
    out[name] = {
      ...shareFigures(e, perMin),
      completion_tokens: e.completionTokens,
      prompt_tokens: e.promptTokens,
      items: e.items,
      items_per_s: perMin(e.items) / 60,
    };
  }
  return out;
}

/** Each server's figures, over the run's window. */
function byUpstream(f: RunFacts, durationMs: number): Report['by_upstream'] {
  const perMin = (n: number) => (durationMs > 0 ? (n * 60_000) / durationMs : 0);
  const out: Report['by_upstream'] = {};
  for (const [index, u] of Object.entries(f.byUpstream)) {
    out[index] = {
      ...shareFigures(u, perMin),
      url: u.url,
      shards: u.shards,
      share: f.succeeded > 0 ? u.succeeded / f.succeeded : 0,
      attempts: u.attempts,
      retried_attempts: Math.max(0, u.attempts - u.firstAttempts - u.pausedAttempts),
      paused_attempts: u.pausedAttempts,
      in_flight_limit: u.limitMax,
      outages: u.outages,
      down_s: u.downMs / 1000,
      answer_ms: summarize(u.answerMs),
    };
  }
  return out;
}

/** Attempts that retried a failed attempt (see Report.retries.rate). */
function retriedAttempts(f: RunFacts): number {
  return Math.max(0, f.attempts - f.firstAttempts - f.pausedAttempts);
}

/** Merge adjacent bins so a long run's charts stay a reasonable size. */
function downsample(bins: Bin[], max: number): Bin[] {
  if (bins.length <= max) return bins;
  const k = Math.ceil(bins.length / max);
  const out: Bin[] = [];
  for (let i = 0; i < bins.length; i += k) {
    const group = bins.slice(i, i + k);
    const first = group[0]!;
    const merged: Bin = { ...first, tokens: 0, retries: 0, conns: 0, ttft: [], retryCauses: {} };
    for (const b of group) {
      merged.tokens += b.tokens;
      merged.retries += b.retries;
      merged.conns += b.conns;
      for (const v of b.ttft) merged.ttft.push(v);
      for (const [c, n] of Object.entries(b.retryCauses)) merged.retryCauses[c] = (merged.retryCauses[c] ?? 0) + n;
    }
    out.push(merged);
  }
  return out;
}
