import type { PercentileSummary } from '../metrics/percentiles.js';
import type { TpmFigures } from '../metrics/tpm.js';
import type { ResultsCheck } from './results-check.js';

/** The latency decomposition buckets, summed over requests, in ms. */
export const BUCKETS = [
  'queue_wait',
  'admission_gap',
  'connect',
  'retry_backoff',
  'failed_attempts',
  'server_ttft',
  'decode',
  'postprocess',
  'endpoint_down',
] as const;
export type Bucket = (typeof BUCKETS)[number];
/**
 * Buckets spent on the client side (the control plane); `server_ttft` and `decode` are the model's,
 * and `endpoint_down` (waiting while the endpoint was down) is neither: an outage.
 */
export const CLIENT_BUCKETS: readonly Bucket[] = [
  'queue_wait',
  'admission_gap',
  'connect',
  'retry_backoff',
  'failed_attempts',
  'postprocess',
];

export const MODES = [
  'queueing',
  'admission_gap',
  'connection_churn',
  'retry_loop',
  'postprocess_stall',
  'event_loop_stall',
  'model_saturation',
  'errors',
  'endpoint_down',
  'slow_upstream',
] as const;
export type Mode = (typeof MODES)[number];

export interface Finding {
  mode: Mode;
  severity: 'high' | 'medium' | 'low';
  evidence: string;
  action: string;
}

export interface Verdict {
  /** `refused`: nothing succeeded — the endpoint refused the job (credentials, model, path). */
  bound: 'model' | 'control-plane' | 'healthy' | 'refused';
  dominant: Bucket | null;
  findings: Finding[];
}

/** `shardline report --json`: keys are a public contract (add, never rename). See docs/report.md. */
/** One endpoint's figures in a run (Report.by_endpoint). */
export interface EndpointFigures {
  requests: number;
  succeeded: number;
  failed: number;
  success_rate: number | null;
  completion_tokens: number;
  prompt_tokens: number;
  items: number;
  /** Completion tokens per minute over the run's window (generation endpoints). */
  tpm: number;
  /** Prompt (input) tokens per minute over the run's window: an embeddings job's throughput. */
  input_tpm: number;
  /** Inputs per second over the run's window (embeddings; one per request elsewhere). */
  items_per_s: number;
  latency_ms: PercentileSummary;
  ttft_ms: PercentileSummary | null;
}

/** One server's figures in a run over several (Report.by_upstream), keyed by its place in `--endpoint`'s list. */
export interface UpstreamFigures {
  /** Its URL without credentials. */
  url: string;
  shards: number;
  requests: number;
  succeeded: number;
  failed: number;
  success_rate: number | null;
  /** Completion tokens per minute over the run's window, and input tokens per minute. */
  tpm: number;
  input_tpm: number;
  /** Share of the run's succeeded requests it answered. */
  share: number;
  attempts: number;
  /** Attempts that were not a request's first, less those that failed into a pause (see retries.rate). */
  retried_attempts: number;
  paused_attempts: number;
  /** The most attempts its shards allowed in flight at once (their limits summed). */
  in_flight_limit: number;
  outages: number;
  down_s: number;
  latency_ms: PercentileSummary;
  ttft_ms: PercentileSummary | null;
  /** Its time per answer: request sent → the answer's end, connecting left out (what a slower replica shows). */
  answer_ms: PercentileSummary;
}

export interface Report {
  schema: 'shardline.report/v1';
  run_id: string | null;
  run_ids: string[];
  /**
   * First and last event, and the run's time between them: `duration_s` leaves out `idle_s`, the
   * stretches before a run started again (a resume, a re-run over a finished directory) in which no
   * event at all was written. TPM's run average and per-endpoint rates are over `duration_s`.
   */
  window: { start: string | null; end: string | null; duration_s: number; idle_s?: number };
  requests: { total: number; succeeded: number; failed: number; success_rate: number | null };
  attempts: number;
  retries: { count: number; rate: number | null; per_request: number | null; causes: Record<string, number> };
  tokens: { completion: number; prompt: number; estimated: number };
  tpm: TpmFigures;
  ttft_ms: { server: PercentileSummary; e2e: PercentileSummary };
  latency_ms: { e2e: PercentileSummary };
  tpot_ms: PercentileSummary;
  /**
   * Each endpoint the run used (chat, completions, embeddings, responses, other): its requests, what its
   * throughput counts (completion tokens/min for generation; input tokens/min and items/s for
   * embeddings), e2e latency, and server TTFT where the endpoint streams (null where it has none).
   */
  by_endpoint: Record<string, EndpointFigures>;
  /**
   * Each server of the run (`--endpoint` given more than once), keyed by its place in the list ("0", "1"…):
   * its share, throughput, TTFT, retries, in-flight limit and outages. One entry for a run of one.
   */
  by_upstream: Record<string, UpstreamFigures>;
  utilization: {
    limit: number;
    /** Shards that ran, and the in-flight limit they last ran with, summed. */
    shards: number;
    limit_final: number;
    /**
     * The run's in-flight limit the last time work waited for a slot: where an `auto` run settled. A
     * change in the run's tail, with nothing left waiting, bound nothing (0: work never waited).
     */
    limit_settled?: number;
    mean_in_flight: number;
    mean_backlog: number;
    busy_fraction: number;
    admission_gap_s: number;
    timeline: { t: string; backlog: number; in_flight: number; limit: number }[];
  };
  connections: {
    opened: number;
    per_request: number | null;
    connect_ms: PercentileSummary;
    /** Requests sent again on a fresh connection because the reused one had been closed by the server. */
    stale_resends: number;
    /** Shards that stopped reusing connections after streamed answers (the host closes them unannounced). */
    keepalive_off_shards: number;
    /** Shards run with --no-keep-alive. */
    keepalive_disabled_shards: number;
  };
  /** Times the endpoint was down (some shard paused dispatch), how long in all, and attempts that failed meanwhile. */
  outages: { count: number; down_s: number; paused_attempts: number };
  event_loop: {
    lag_p99_ms: number | null;
    /** Median share of each gauge interval a shard's event loop was busy (0–1); null in logs without it. */
    busy_p50: number | null;
    /** Median machine CPU utilization over all cores (0–1) seen by the shards; null in logs without it. */
    host_busy_p50: number | null;
    /** Median share of time the shards' loop threads waited for a core (0–1, Linux); null in logs without it. */
    cpu_wait_p50: number | null;
    /**
     * Read holds (--read-coalesce-ms, raw transport): the share of shard gauge intervals with a
     * hold in force and the longest hold. Stream ends were read up to that late, inside decode time.
     */
    read_hold: { held_fraction: number; max_ms: number } | null;
  };
  /** The client measuring itself: shard CPU (coordinator excluded), per request and per completion token. */
  client_cpu: {
    shard_cpu_ms: number;
    us_per_request: number | null;
    us_per_completion_token: number | null;
    /** Socket reads per completion token (raw transport's shard_end.socket_reads); ~1 means every token cost a read. */
    reads_per_completion_token: number | null;
  };
  buckets_ms: Record<Bucket, number>;
  /** The run directories' results.jsonl checked against the events; null when none was given. */
  results: ResultsCheck | null;
  verdict: Verdict;
  /** Extra detail the verdict uses; not part of the fixed keys above. */
  detail: ReportDetail;
}

export interface ReportDetail {
  failure_causes: Record<string, number>;
  /** Most attempts open at once. */
  max_in_flight: number;
  attempt_error_causes: Record<string, number>;
  /** HTTP statuses of failed attempts (401, 404, 503 …). */
  attempt_error_statuses: Record<string, number>;
  /** Server TTFT's 1st percentile (its floor: the answer of an idle server) and 25th, ms. */
  server_ttft_floor_ms: number | null;
  server_ttft_p25_ms: number | null;
  /** What servers that report their own timings did not account for (see attempt_end.server_queue_ms), ms. */
  server_queue_ms: PercentileSummary;
  /** Server time (latency less connect) of answers without a first token: embeddings, rerank and the like. */
  plain_server_ms: PercentileSummary;
  /** The longest Retry-After (or retry-after-ms) a failed attempt was given, ms; null when none. */
  max_retry_after_ms: number | null;
  bad_lines: number;
  events: number;
  /** Server TTFT p50 (ms) of attempts started at low vs high client in-flight (quartiles of in-flight). */
  server_ttft_by_load: { low_p50: number | null; high_p50: number | null };
  /**
   * Share of the time with work waiting (backlog > 0, slots in rotation) during which a slot was
   * free: exact, from the events. (One sample a timeline second, as it once was, called a quarter of
   * a few-second run's time free from two unlucky samples.)
   */
  not_work_conserving_fraction: number;
  /** Coefficient of variation of in-flight over the seconds where backlog > 0. */
  in_flight_cv_under_backlog: number | null;
  /**
   * The run's own limit timeline (`--concurrency auto`, or shards coming and going): for each
   * in-flight limit it ran at, the seconds spent there (exact, from the events: a level held for
   * the run's last 0.3 s is here), completion tokens/min generated meanwhile and the server TTFT
   * p50/p95 of the answers that started then. Stretches with no slots (the endpoint down) are left out.
   */
  by_limit: { limit: number; seconds: number; tpm: number; ttft_p50: number | null; ttft_p95: number | null }[];
  /** Per-second series for charts: completion tokens and retries, per second since window start. */
  per_second: {
    t: number;
    tokens: number;
    retries: number;
    conns: number;
    ttft_p50: number | null;
    ttft_p95: number | null;
    ttft_p99: number | null;
  }[];
  retry_causes_over_time: { t: number; causes: Record<string, number> }[];
  /** The 10 slowest requests (e2e) and the last 10 failed attempts, for a look at real ids and errors. */
  slowest: { id: string; e2e_ms: number; attempts: number; outcome: string }[];
  recent_errors: { id: string; attempt: number; cause: string; status: number | null; error: string }[];
}
