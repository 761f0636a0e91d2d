import { BUCKETS, CLIENT_BUCKETS, type Bucket, type Finding, type Report, type Verdict } from './report-types.js';

/** Thresholds of the diagnosis, in one place (documented in docs/report.md). */
export const THRESHOLDS = {
  controlPlaneShare: 0.5,
  errorsSuccessRate: 0.99,
  retryRate: 0.1,
  retryShare: 0.15,
  churnPerRequest: 0.5,
  churnMinConnections: 20,
  /** Share of request time spent connecting below which churn is at most low (and never sets the verdict). */
  churnCostShare: 0.02,
  /** ... and from which it is high. */
  churnHighShare: 0.1,
  /**
   * Server TTFT p50 this multiple of its floor (p1), p25 the second, and p50 this many ms above
   * the floor: most answers waited in the server. Not streamed, TTFT is the whole answer, so a job
   * whose answer lengths vary tenfold could pass the ratios without a queue (docs/report.md).
   */
  saturationFloorRatio: 2.5,
  saturationFloorP25Ratio: 1.75,
  saturationFloorMs: 50,
  admissionShare: 0.05,
  notConservingFraction: 0.2,
  inFlightCv: 0.2,
  queueingShare: 0.25,
  postprocessShare: 0.1,
  loopLagMs: 50,
  /** Median machine CPU utilization from which a lagging loop is put down to a saturated machine. */
  hostBusy: 0.9,
  /** Median share of time the shards waited for a core from which the same holds. */
  cpuWait: 0.2,
  saturationTtftShare: 0.3,
  saturationLoadRatio: 2,
  saturationTtftPerTpot: 20,
  saturationTailRatio: 4,
} as const;

const pct = (x: number) => `${Math.round(x * 100)}%`;
const ms = (x: number | null | undefined) => (x === null || x === undefined ? '–' : `${Math.round(x)} ms`);

/**
 * Say whether the run was model-bound, control-plane-bound or healthy, which bucket dominates, and
 * each failure mode found with numeric evidence and a concrete action. Pure over the report.
 */
export function diagnose(r: Report): Verdict {
  const b = r.buckets_ms;
  const total = BUCKETS.reduce((a, k) => a + b[k], 0);
  const share = (k: Bucket) => (total > 0 ? b[k] / total : 0);
  const clientShare = CLIENT_BUCKETS.reduce((a, k) => a + share(k), 0);
  const T = THRESHOLDS;
  // An adaptive run (or one whose shards' limits moved) settled at its limit the last time work
  // waited for a slot: a cut in the run's tail, with nothing waiting, bound nothing.
  const autoRun = r.utilization.limit_final > 0 && r.utilization.limit_final !== r.utilization.limit;
  const settled = (autoRun && r.utilization.limit_settled) || r.utilization.limit_final;
  // Advice is in the units of the flag it names: --concurrency is per shard.
  const L = settled || r.utilization.limit;
  const shards = Math.max(1, r.utilization.shards);
  const concurrencyNow = concurrencyPhrase(L, shards);
  const findings: Finding[] = [];
  const topCauses = (causes: Record<string, number>) =>
    Object.entries(causes)
      .sort((x, y) => y[1] - x[1])
      .slice(0, 3)
      .map(([c, n]) => `${c} ${n}`)
      .join(', ');

  const finished = r.requests.succeeded + r.requests.failed;
  const statuses = r.detail.attempt_error_statuses ?? {};
  if (r.requests.failed > 0 && (r.requests.success_rate ?? 1) < T.errorsSuccessRate) {
    const causes = r.detail.failure_causes;
    const main = Object.entries(causes).sort((x, y) => y[1] - x[1])[0]?.[0] ?? 'unknown';
    const topStatus = Object.entries(statuses).sort((x, y) => y[1] - x[1])[0]?.[0];
    findings.push({
      mode: 'errors',
      severity: (r.requests.success_rate ?? 0) < 0.9 ? 'high' : 'medium',
      evidence:
        `${r.requests.failed} of ${finished} requests failed (${pct(r.requests.failed / finished)}): ` +
        `${topCauses(causes)}${topStatus ? ` (mostly HTTP ${topStatus})` : ''}`,
      action: errorAction(
        main,
        concurrencyNow,
        r.detail.max_retry_after_ms,
        topStatus === undefined ? undefined : Number(topStatus),
      ),
    });
  }
  // Nothing succeeded: the endpoint refused the job. Throughput and queueing findings would be
  // about requests that never ran.
  if (r.requests.succeeded === 0 && r.requests.failed > 0) {
    return { bound: 'refused', dominant: null, findings };
  }

  const retryShare = share('retry_backoff') + share('failed_attempts');
  if ((r.retries.rate ?? 0) >= T.retryRate || retryShare >= T.retryShare) {
    const main = Object.entries(r.retries.causes).sort((x, y) => y[1] - x[1])[0]?.[0] ?? 'unknown';
    findings.push({
      mode: 'retry_loop',
      severity: (r.retries.rate ?? 0) >= 0.3 || retryShare >= 0.3 ? 'high' : 'medium',
      evidence:
        `${pct(r.retries.rate ?? 0)} of ${r.attempts} attempts were retries ` +
        `(${topCauses(r.retries.causes) || 'no causes recorded'}); ` +
        `${pct(share('retry_backoff'))} of request time in backoff, ${pct(share('failed_attempts'))} in ` +
        `failed attempts`,
      action: retryAction(main, concurrencyNow),
    });
  }

  const perReq = r.connections.per_request ?? 0;
  // A healthy pool opens one connection per attempt in flight at the peak: only more is churn.
  const excess = Math.max(0, r.connections.opened - Math.min(L, r.detail.max_in_flight || L));
  if (r.requests.total > 0 && excess / r.requests.total >= T.churnPerRequest && excess >= T.churnMinConnections) {
    // Its severity is what it cost: many connections that take 0.1% of request time are no fault.
    const cost = share('connect');
    const cheap = cost < T.churnCostShare;
    const c = r.connections;
    let action =
      'keep connections alive: the server or a proxy closes them (Connection: close, or an idle timeout shorter ' +
      'than the gap between requests); enable keep-alive there, and reuse one client pool per worker';
    if (c.keepalive_disabled_shards > 0)
      action =
        `drop --no-keep-alive: this run asked for a new connection for every request (${pct(cost)} of ` +
        `request time went to connecting)`;
    else if (c.keepalive_off_shards > 0) {
      action =
        "the server closes each connection after a streamed answer while advertising keep-alive (llama.cpp's " +
        'llama-server does); shardline stopped reusing those connections, so each streamed request connects first' +
        (cheap
          ? `: ${pct(cost)} of request time, nothing to change`
          : `: ${pct(cost)} of request time — put a keep-alive proxy in front, or send non-streamed requests`);
    } else if (cheap)
      action =
        `connections are opened often but cost ${pct(cost)} of request time: nothing to change unless the ` +
        `endpoint moves further away (TLS, a WAN)`;
    findings.push({
      mode: 'connection_churn',
      severity: cheap ? 'low' : cost >= T.churnHighShare ? 'high' : 'medium',
      evidence:
        `${c.opened} connections opened for ${r.requests.total} requests (${perReq.toFixed(2)} per request; ` +
        `connect p95 ${ms(c.connect_ms.p95)}, ${Math.round(b.connect)} ms in total, ${pct(cost)} of request time)`,
      action,
    });
  }

  const nwc = r.detail.not_work_conserving_fraction;
  const cv = r.detail.in_flight_cv_under_backlog ?? 0;
  if (share('admission_gap') >= T.admissionShare || (nwc >= T.notConservingFraction && cv >= T.inFlightCv)) {
    findings.push({
      mode: 'admission_gap',
      severity: share('admission_gap') >= 0.2 || nwc >= 0.5 ? 'high' : 'medium',
      evidence:
        `backlog stays high while in-flight is unstable: for ${pct(nwc)} of the time with work waiting a client ` +
        `slot was free ` +
        `(in-flight varied ±${pct(cv)} around ${r.utilization.mean_in_flight.toFixed(1)} of ${L}); ` +
        `${r.utilization.admission_gap_s.toFixed(1)} s of free slots with a backlog, ${pct(share('admission_gap'))} ` +
        `of request time`,
      action:
        'the dispatcher is not work-conserving: start the next request the moment a slot frees (pull-based ' +
        'dispatch, as `shardline run` does) instead of waiting for a batch or a whole worker to drain; check for a ' +
        'blocking hook or lock',
    });
  }

  const ttft = r.ttft_ms.server;
  const byLoad = r.detail.server_ttft_by_load;
  const loadRising =
    byLoad.low_p50 !== null &&
    byLoad.high_p50 !== null &&
    byLoad.high_p50 >= T.saturationLoadRatio * byLoad.low_p50 &&
    byLoad.high_p50 - byLoad.low_p50 >= 20;
  const ttftHeavy = share('server_ttft') >= T.saturationTtftShare && b.server_ttft >= 0.5 * b.decode;
  // An idle server's TTFT is about a prefill: a few decode steps. Far more means a server-side queue.
  const tpot = r.tpot_ms.p50;
  const ttftVsTpot =
    ttft.p50 !== null && tpot !== null && tpot > 0 && ttft.p50 >= 100 && ttft.p50 >= T.saturationTtftPerTpot * tpot;
  // Some requests waiting in the server's queue and others not shows as a long TTFT tail.
  const ttftTail =
    ttft.p50 !== null &&
    ttft.p95 !== null &&
    ttft.p50 > 0 &&
    ttft.p95 >= T.saturationTailRatio * ttft.p50 &&
    ttft.p95 - ttft.p50 >= 500;
  // Most answers far above the fastest ones (an idle server's): they waited for a slot in the
  // server. Needs no streams (non-streamed TTFT is the whole answer, TPOT is 0) and no load change
  // (a fixed bound keeps in-flight constant); the absolute slack keeps a fast server's jitter out.
  const floor = r.detail.server_ttft_floor_ms ?? null;
  const p25 = r.detail.server_ttft_p25_ms ?? null;
  const ttftVsFloor =
    floor !== null &&
    p25 !== null &&
    ttft.p50 !== null &&
    floor > 0 &&
    ttft.p50 >= T.saturationFloorRatio * floor &&
    p25 >= T.saturationFloorP25Ratio * floor &&
    ttft.p50 - floor >= T.saturationFloorMs;
  // The server's own timings (llama-server's), where it sends them: time it did not account for is
  // time the request waited before it started on it.
  const sq = r.detail.server_queue_ms;
  const serverSaysQueued =
    sq !== undefined &&
    sq.count >= 20 &&
    sq.p50 !== null &&
    ttft.p50 !== null &&
    sq.p50 >= T.saturationFloorMs &&
    sq.p50 >= 0.3 * ttft.p50;
  const saturated = loadRising || ttftHeavy || ttftVsTpot || ttftTail || ttftVsFloor || serverSaysQueued;
  if (saturated) {
    findings.push({
      mode: 'model_saturation',
      severity: share('server_ttft') >= 0.5 ? 'high' : 'medium',
      evidence:
        `server TTFT p50 ${ms(ttft.p50)}, p95 ${ms(ttft.p95)} is ${pct(share('server_ttft'))} of request time` +
        (loadRising
          ? ` and rises with load (p50 ${ms(byLoad.low_p50)} at low in-flight → ${ms(byLoad.high_p50)} at high)`
          : '') +
        (ttftVsTpot ? ` and is ${Math.round(ttft.p50! / tpot!)}× the time per output token (${ms(tpot)})` : '') +
        (ttftTail && !ttftVsTpot
          ? ` with a long tail (p95 ${Math.round(ttft.p95! / ttft.p50!)}× p50: some requests waited in the ` +
            `server's queue)`
          : '') +
        (serverSaysQueued
          ? `; by the server's own timings answers waited ${ms(sq!.p50)} (p50) before it started on them`
          : '') +
        (ttftVsFloor && !ttftVsTpot
          ? `; its p50 is ${(ttft.p50! / floor!).toFixed(1)}× its floor (${ms(floor)}, an idle server's answer), ` +
            `p25 ${(p25! / floor!).toFixed(1)}×`
          : '') +
        `, with the client holding ${r.utilization.mean_in_flight.toFixed(1)} of ${L} slots busy: the server is ` +
        `queueing requests`,
      action: autoRun
        ? `the model server is at capacity: add replicas or faster hardware for throughput; --concurrency auto ` +
          `settled at ${concurrencyPhrase(settled, shards, 'in flight')}, where its controller ` +
          `saw the server start to queue (the slot timeline by limit says what each level gave)`
        : `the model server is at capacity: add replicas or faster hardware for throughput; to cut latency lower ` +
          `${concurrencyNow} (raising it adds only queueing)`,
    });
  }

  if (share('queue_wait') >= T.queueingShare && !saturated) {
    // One run at one bound shows the bound was the limit, not that the server has room for more:
    // say what was measured and what would tell. An auto run measured it: its settled limit.
    findings.push({
      mode: 'queueing',
      severity: 'medium',
      evidence:
        `server TTFT flat at ${ms(ttft.p50)} (p95 ${ms(ttft.p95)}) while ${pct(share('queue_wait'))} of e2e ` +
        `time was spent waiting for a client slot (busy ${pct(r.utilization.busy_fraction)} of the time)`,
      action: autoRun
        ? `--concurrency auto settled at ${concurrencyPhrase(settled, shards, 'in flight')} (it ` +
          `tried up to ${r.utilization.limit}): above that its controller saw the server queue, so a higher bound ` +
          `would add only queueing`
        : `the client bound was the limit of this run (${concurrencyNow}) and the server showed no queueing at it; ` +
          `one run at one bound cannot tell whether more would help: \`shardline sweep\` measures it level by ` +
          `level, \`--concurrency auto\` finds it while the job runs`,
    });
  }

  if (share('postprocess') >= T.postprocessShare) {
    findings.push({
      mode: 'postprocess_stall',
      severity: share('postprocess') >= 0.3 ? 'high' : 'medium',
      evidence:
        `post-processing took ${pct(share('postprocess'))} of request time (${Math.round(b.postprocess)} ms ` +
        `in total)`,
      action:
        'move post-processing off the request path (a worker pool, as --postprocess does), give it more threads, or ' +
        'make the hook cheaper',
    });
  }

  const lag = r.event_loop.lag_p99_ms;
  const { host_busy_p50: hostBusy, cpu_wait_p50: cpuWait } = r.event_loop;
  const hostSaturated = (hostBusy !== null && hostBusy >= T.hostBusy) || (cpuWait !== null && cpuWait >= T.cpuWait);
  if (lag !== null && lag >= T.loopLagMs) {
    findings.push({
      mode: 'event_loop_stall',
      severity: lag >= 200 ? 'high' : 'medium',
      evidence:
        `client event-loop lag p99 ${ms(lag)}: the client itself delayed reading responses and dispatching work` +
        (r.client_cpu.us_per_completion_token !== null
          ? ` (client CPU ${r.client_cpu.us_per_completion_token.toFixed(1)} µs per completion token)`
          : '') +
        (r.client_cpu.reads_per_completion_token !== null && r.client_cpu.reads_per_completion_token >= 0.5
          ? `; ${r.client_cpu.reads_per_completion_token.toFixed(2)} socket reads per token: tokens mostly arrive ` +
            `one per read`
          : '') +
        (hostSaturated
          ? `; the shards also waited for a core (medians: ` +
            [
              cpuWait !== null ? `waiting ${pct(cpuWait)} of the time` : '',
              hostBusy !== null ? `machine CPU ${pct(hostBusy)} busy` : '',
            ]
              .filter(Boolean)
              .join(', ') +
            ')'
          : ''),
      action:
        (hostSaturated
          ? 'give the client CPU of its own (a machine or cores not shared with the server or other work); more ' +
            'shards than free cores only add to the queue for them; '
          : 'add --shards to spread the load over more event loops, and keep CPU-heavy work (parsing, hooks) off ' +
            'the dispatch loop; ') +
        'when every token arrives in its own read, --transport raw spends about a third less CPU per chunk (for ' +
        'endpoints you run or trust)',
    });
  }

  if (r.outages.count > 0) {
    findings.push({
      mode: 'endpoint_down',
      severity: share('endpoint_down') >= 0.2 ? 'high' : 'medium',
      evidence:
        `the endpoint was down ${r.outages.count} time(s), ${r.outages.down_s.toFixed(1)} s in all (refused ` +
        `connections or 502/503/504): dispatch paused, ` +
        `${r.outages.paused_attempts} attempts failed against it and none was charged to --max-attempts; ` +
        `${pct(share('endpoint_down'))} of request time waited for it`,
      action:
        'nothing to change in the client (it paused and resumed by itself): find out why the server went away — its ' +
        'logs, OOM kills, restarts, a deploy',
    });
  }

  findings.push(...upstreamFindings(r, autoRun));

  const sevRank = { high: 0, medium: 1, low: 2 } as const;
  findings.sort((x, y) => sevRank[x.severity] - sevRank[y.severity]);
  let dominant: Bucket | null = null;
  for (const k of BUCKETS) if (b[k] > 0 && (dominant === null || b[k] > b[dominant])) dominant = k;
  // Waiting for a client slot is the bound at work, not a control-plane fault: behind a saturated
  // server it is the model's slowness showing through, and in front of a flat one it says the
  // bound was the limit (the queueing finding says what would tell whether more helps).
  const controlPlane = clientShare - share('queue_wait');
  // A high-severity control-plane finding makes the run control-plane-bound even when the model's
  // buckets are larger: the findings say what is costing throughput.
  const cpHigh = findings.some(
    (f) =>
      f.severity === 'high' &&
      f.mode !== 'errors' &&
      f.mode !== 'model_saturation' &&
      f.mode !== 'endpoint_down' &&
      f.mode !== 'slow_upstream',
  );
  const bound: Verdict['bound'] =
    controlPlane >= T.controlPlaneShare || cpHigh ? 'control-plane' : saturated ? 'model' : 'healthy';
  return { bound, dominant, findings };
}

/** A server whose median answer takes this many times the others' (their median) held the run back. */
const SLOW_UPSTREAM_RATIO = 2;
/** Successes a server needs before its figures are judged. */
const UPSTREAM_MIN_SUCCEEDED = 20;

/**
 * With several servers: each one that went down while the others carried the run, and the one that held
 * the run back — answering much slower than the others at the in-flight limit its shards gave it.
 */
export function upstreamFindings(r: Report, autoRun: boolean): Finding[] {
  const ups = Object.entries(r.by_upstream ?? {});
  if (ups.length < 2) return [];
  const findings: Finding[] = [];
  const name = (i: string, u: { url: string }) => `endpoint ${Number(i) + 1} (${u.url || 'unknown URL'})`;
  for (const [i, u] of ups) {
    if (u.outages === 0) continue;
    findings.push({
      mode: 'endpoint_down',
      severity: 'medium',
      evidence:
        `${name(i, u)} was down ${u.outages} time(s), ${u.down_s.toFixed(1)} s in all: ${u.paused_attempts} ` +
        `attempts failed against it uncharged and its waiting work went to the other ${ups.length - 1}`,
      action: 'nothing to change in the client: find out why that server went away (its logs, OOM kills, restarts)',
    });
  }
  const slowness = (u: (typeof ups)[number][1]) => u.answer_ms.p50;
  const judged = ups.filter(([, u]) => u.succeeded >= UPSTREAM_MIN_SUCCEEDED && slowness(u) !== null);
  if (judged.length < 2) return findings;
  const sorted = [...judged].sort((a, b) => slowness(b[1])! - slowness(a[1])!);
  const [worstIndex, worst] = sorted[0]!;
  const others = sorted.slice(1).map(([, u]) => slowness(u)!);
  const othersMid = others.sort((a, b) => a - b)[Math.floor(others.length / 2)]!;
  if (othersMid <= 0 || slowness(worst)! < SLOW_UPSTREAM_RATIO * othersMid) return findings;
  const ratio = slowness(worst)! / othersMid;
  const ttft =
    worst.ttft_ms?.p95 !== undefined && worst.ttft_ms.p95 !== null ? `, TTFT p95 ${ms(worst.ttft_ms.p95)}` : '';
  findings.push({
    mode: 'slow_upstream',
    severity: ratio >= 4 && worst.share >= 1 / (2 * ups.length) ? 'high' : 'medium',
    evidence:
      `${name(worstIndex, worst)} took ${Math.round(slowness(worst)!)} ms a median answer${ttft} at up to ` +
      `${worst.in_flight_limit} in flight, ${ratio.toFixed(1)}× the others' ${Math.round(othersMid)} ms, and ` +
      `gave ${pct(worst.share)} of the answers: it is model-bound there while the others have headroom`,
    action: autoRun
      ? 'give it more replicas or faster hardware, or take it out of --endpoint: its shards already settled at ' +
        'the limit it sustains'
      : "route less to it: run with --concurrency auto (each endpoint's shards then settle at the limit it " +
        'sustains), or give it more replicas or faster hardware',
  });
  return findings;
}

/** A Retry-After this long is not a rate limit to pace under but a quota to wait out. */
const QUOTA_RETRY_AFTER_MS = 60_000;

/** `--concurrency N` per shard, with the run-wide total beside it when there are several shards. */
function concurrencyPhrase(total: number, shards: number, what = ''): string {
  const per = Math.round(total / shards);
  return shards > 1
    ? `--concurrency ${per} per shard (× ${shards} shards = ${total}${what ? ` ${what}` : ''})`
    : `--concurrency ${total}${what ? ` ${what}` : ''}`;
}

function errorAction(cause: string, limit: string, maxRetryAfterMs: number | null, status?: number): string {
  if (status === 401 || status === 403) {
    return (
      `the endpoint refused the credentials (HTTP ${status}): check the API key (OPENAI_API_KEY or ` +
      `SHARDLINE_API_KEY) and any auth --header; retrying cannot help`
    );
  }
  if (status === 404)
    return (
      'the endpoint answered 404: check --model (the server may not serve that model) and --endpoint (the API ' +
      'base URL, e.g. …/v1); retrying cannot help'
    );
  if (cause === 'http_4xx')
    return (
      'fix the requests: the server rejected them as invalid (see the error messages in results.jsonl); ' +
      'retrying cannot help'
    );
  if (cause === 'http_429' && maxRetryAfterMs !== null && maxRetryAfterMs >= QUOTA_RETRY_AFTER_MS) {
    return (
      `the server asked to wait up to ${Math.round(maxRetryAfterMs / 1000)} s before retrying — a spent quota ` +
      `rather than a pace to stay under: ` +
      'run the failures again once it resets (`shardline run … --retry-failed http_429`), or raise ' +
      '--retry-after-max-s to wait it out; lowering --concurrency will not bring it back sooner'
    );
  }
  if (cause === 'http_429')
    return (
      `stay under the rate limit: lower ${limit} or pace with --rate; raise --max-attempts only if the limit ` +
      `is bursty`
    );
  if (cause === 'http_5xx')
    return (
      'the server errs under this load: check its health and logs, lower --concurrency, or raise ' +
      '--max-attempts if errors are transient'
    );
  if (cause.startsWith('timeout_'))
    return (
      `requests time out (${cause}): raise --${cause.replace('_', '-')}-s if the server is just slow, or lower ` +
      `--concurrency if it is overloaded`
    );
  if (cause === 'conn_refused' || cause === 'conn_reset')
    return 'the endpoint drops or refuses connections: check the server, the network path and any proxy in between';
  if (cause === 'postprocess_error') return 'the --postprocess hook threw: see the error messages in results.jsonl';
  return 'see the error messages in results.jsonl';
}

function retryAction(cause: string, limit: string): string {
  if (cause === 'http_429')
    return (
      `the run is fighting a rate limit or a full server queue: lower ${limit} or set --rate below the limit, ` +
      `and back off with jitter honouring Retry-After (--retry-mode backoff) instead of retrying on a fixed timer`
    );
  if (cause === 'http_5xx')
    return 'the server fails under this load: check its health; lower --concurrency so retries stop adding load';
  if (cause === 'conn_reset' || cause === 'conn_refused')
    return (
      'connections are being dropped: check the server and any proxy/load balancer (idle timeouts, ' +
      'connection limits)'
    );
  if (cause.startsWith('timeout_'))
    return (
      `attempts time out (${cause}): lower --concurrency if the server is overloaded, or raise the timeout if ` +
      `answers are just long`
    );
  return 'find why attempts fail (attempt_end events carry the cause and status) before adding retries';
}
