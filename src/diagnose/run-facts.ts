import type { LimitSegment } from './limit-timeline.js';
import type { MinuteBucket } from '../metrics/tpm.js';
import type { Bucket } from './report-types.js';

/** Everything the report needs, gathered in one pass; arrays only where exact percentiles need them. */
export interface RunFacts {
  runIds: string[];
  startMs: number;
  endMs: number;
  /** Time in the window before a run started again with no event since the last one (see Report.window). */
  idleMs: number;
  requests: number;
  succeeded: number;
  failed: number;
  attempts: number;
  /** Attempts numbered 1: a request's first try in some run (a --retry-failed or crash re-run starts at 1 again). */
  firstAttempts: number;
  /** Attempts that failed while the endpoint was down (`paused`): not retries. */
  pausedAttempts: number;
  staleResends: number;
  keepaliveOffShards: number;
  /** Shards run with --no-keep-alive. */
  keepaliveDisabledShards: number;
  /** Shards that started (distinct shard numbers), and each one's last in-flight limit. */
  shards: number;
  limitFinal: number;
  /** The usable limit the last time the backlog was above 0 (report.utilization.limit_settled). */
  limitSettled: number;
  /** HTTP statuses of failed attempts. */
  attemptErrorStatuses: Record<string, number>;
  outages: number;
  downMs: number;
  retries: number;
  retryCauses: Record<string, number>;
  failureCauses: Record<string, number>;
  attemptErrorCauses: Record<string, number>;
  /** The longest Retry-After a failed attempt was given, ms (0: none). */
  maxRetryAfterMs: number;
  completionTokens: number;
  promptTokens: number;
  estimatedTokens: number;
  minutes: MinuteBucket[];
  serverTtft: number[];
  e2eTtft: number[];
  e2eLatency: number[];
  tpot: number[];
  /** `attempt_end.server_queue_ms` of successful attempts (servers that report timings). */
  serverQueueMs: number[];
  /** For successful attempts, in order: in-flight when the attempt started, and its server TTFT. */
  ttftLoadInFlight: number[];
  ttftLoadMs: number[];
  connectMs: number[];
  connsOpened: number;
  loopLag: number[];
  /** Shard gauges' event-loop utilization (0–1), start-up gauges left out like loopLag's. */
  loopBusy: number[];
  /** Shard gauges' machine CPU utilization (0–1), start-up gauges left out. */
  hostBusy: number[];
  /** Shard gauges' share of time waiting for a core (0–1, Linux), start-up gauges left out. */
  cpuWait: number[];
  /** Socket reads reported by shards' shard_end (raw transport), and how many shards reported them. */
  socketReads: number;
  socketReadShards: number;
  /** Shard gauges that report a read hold, and how many of them had one in force. */
  holdGauges: number;
  heldGauges: number;
  readHoldMaxMs: number;
  /** Shard CPU in ms: from shard_end where a shard ended cleanly, else the sum of its gauges. */
  shardCpuMs: number;
  buckets: Record<Bucket, number>;
  limitMax: number;
  maxInFlight: number;
  inFlightIntegral: number;
  backlogIntegral: number;
  busyMs: number;
  activeMs: number;
  /** Time with work waiting and slots in rotation, and (gapMs) the part of it with a slot free. */
  gapMs: number;
  backloggedMs: number;
  binMs: number;
  bins: Bin[];
  /** The usable in-flight limit over time, at the events' resolution (ReportDetail.by_limit). */
  limitSegments: LimitSegment[];
  badLines: number;
  events: number;
  /** Requests by endpoint name, for the report's split (every endpoint the run used). */
  byEndpoint: Record<string, EndpointFacts>;
  /** Requests by the server they went to (`--endpoint`'s place in its list), from shard_start's upstream. */
  byUpstream: Record<string, UpstreamFacts>;
  /** Server time of answers without a first token (embeddings, rerank…): the diagnosis's stand-in for TTFT. */
  plainServerMs: number[];
  /** The 10 slowest finished requests by e2e latency. */
  slowest: { id: string; e2e_ms: number; attempts: number; outcome: string }[];
  /** The last 10 failed attempts with their messages. */
  recentErrors: { id: string; attempt: number; cause: string; status: number | null; error: string }[];
}

/** The requests of one part of a run (an endpoint, a server): what each split counts alike. */
export interface ShareFacts {
  requests: number;
  succeeded: number;
  failed: number;
  completionTokens: number;
  promptTokens: number;
  /** Succeeded requests' e2e latency and, where answers streamed, server TTFT (ms). */
  latency: number[];
  ttft: number[];
}

/** One server's share of a run of several (`--endpoint` given more than once). */
export interface UpstreamFacts extends ShareFacts {
  /** Its URL without credentials (from shard_start). */
  url: string;
  shards: number;
  /** Attempts sent to it, and those that failed into an endpoint-down pause (not retries). */
  attempts: number;
  firstAttempts: number;
  pausedAttempts: number;
  /** Its shards' in-flight limits summed: now (while reading) and the most. */
  limit: number;
  limitMax: number;
  /** Its outages (a shard of it paused for it) and their time. */
  outages: number;
  downMs: number;
  /** Each successful attempt's server time, request sent → answer's end (connecting left out). */
  answerMs: number[];
}

/** One endpoint's share of a run. */
export interface EndpointFacts extends ShareFacts {
  /** Embeddings inputs (an `input` may be an array). */
  items: number;
}

/** One timeline bin: state sampled at its start, counts within it. */
export interface Bin {
  t: number;
  backlog: number;
  inFlight: number;
  limit: number;
  tokens: number;
  retries: number;
  conns: number;
  ttft: number[];
  retryCauses: Record<string, number>;
  /** The endpoint was down at the bin's start (dispatch paused: free slots are no admission gap). */
  down: boolean;
}

export const zeroBuckets = (): Record<Bucket, number> => ({
  queue_wait: 0,
  admission_gap: 0,
  connect: 0,
  retry_backoff: 0,
  failed_attempts: 0,
  server_ttft: 0,
  decode: 0,
  postprocess: 0,
  endpoint_down: 0,
});
