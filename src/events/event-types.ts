import type { EndpointKind } from '../client/endpoints.js';
/**
 * The raw event log schema, v1. Every figure shardline reports is recomputed from these lines, so
 * names here are a public contract: add fields and types freely, never rename. See docs/events.md.
 */
export const EVENT_SCHEMA_VERSION = 1;

/** Failure causes: a fixed vocabulary. */
export const CAUSES = [
  'http_429',
  'http_5xx',
  'http_4xx',
  'timeout_connect',
  'timeout_ttft',
  'timeout_idle',
  'timeout_total',
  'conn_reset',
  'conn_refused',
  'protocol_error',
] as const;
export type Cause = (typeof CAUSES)[number];

/** Fields every event carries. `shard` is -1 for the coordinator. */
export interface EventBase {
  v: 1;
  /** Epoch ms, fractional, from one monotonic clock anchored to wall time. */
  ts: number;
  run: string;
  shard: number;
  type: string;
}

/** Payloads by event type (beyond EventBase). */
export interface EventPayloads {
  /** `rerun`: failed results set aside by --retry-failed, whose requests this run runs again. */
  run_start: { config: Record<string, unknown>; resumed?: boolean; pid?: number; rerun?: number };
  shard_start: {
    pid: number;
    concurrency: number;
    replaces?: number;
    /** The machine's hostname: shards of a distributed run come from several. */ host?: string;
    /**
     * The server this shard sends every attempt to (its URL without credentials), and its place in
     * `--endpoint`'s list, when the run has several: each attempt's server is its shard's.
     */
    upstream?: string;
    upstream_index?: number;
    /** How many endpoints the run has: with several, one down is not the run down. */
    upstreams?: number;
  };
  /** `endpoint` on a request's first enqueue when it is not chat. */
  enqueue: { id: string; line?: number; attempt?: number; endpoint?: Exclude<EndpointKind, 'chat'> };
  attempt_start: { id: string; attempt: number };
  conn_open: { connect_ms: number; id?: string; attempt?: number };
  response_headers: { id: string; attempt: number; status: number };
  first_token: { id: string; attempt: number };
  attempt_end: {
    id: string;
    attempt: number;
    connect_ms?: number;
    outcome: 'ok' | 'error';
    status?: number;
    cause?: Cause;
    completion_tokens?: number;
    prompt_tokens?: number;
    retry_after_ms?: number;
    tokens_estimated?: boolean;
    last_token_ts?: number;
    error?: string;
    /**
     * Time the server did not account for in its own timings (llama-server's `timings`): streamed,
     * TTFT less its prompt time; not streamed, the whole answer less its prompt and generation time.
     * Mostly time waiting for a slot in the server's queue. Only where the server sends timings.
     */
    server_queue_ms?: number;
  };
  backoff: { id: string; attempt: number; delay_ms: number; cause: Cause; budget_exhausted?: boolean };
  postprocess_start: { id: string };
  postprocess_end: { id: string; error?: string };
  request_end: {
    id: string;
    outcome: 'succeeded' | 'failed';
    attempts: number;
    completion_tokens: number;
    prompt_tokens: number;
    cause?: Cause | 'postprocess_error';
    tokens_estimated?: boolean;
    /** The endpoint, when not chat; `items`: an embeddings request's inputs. */
    endpoint?: Exclude<EndpointKind, 'chat'>;
    items?: number;
  };
  gauge: {
    backlog: number;
    /** Coordinator: retries waiting out their backoff, counted in `backlog` too. */
    backoff?: number;
    in_flight: number;
    limit: number;
    loop_lag_ms: number;
    conns_open: number;
    cpu_ms?: number;
    /** The process's resident memory, MiB. */
    rss_mb?: number;
    /** Share of the interval the event loop was not idle (Node's event-loop utilization), 0–1. */
    loop_busy?: number;
    /** The machine's CPU utilization over all cores in the interval, 0–1 (shard gauges). */
    host_busy?: number;
    /** Share of the interval the shard's loop thread was runnable but waiting for a core, 0–1 (Linux). */
    cpu_wait?: number;
    /** The read hold in force over the interval (raw transport; see --read-coalesce-ms). */
    read_hold_ms?: number;
  };
  /** socket_reads: read callbacks over the shard's life (raw transport), to put CPU per read beside CPU per token. */
  shard_end: { requests: number; cpu_user_ms?: number; cpu_system_ms?: number; socket_reads?: number };
  shard_exit: { pid: number; code: number | null; signal: string | null; reason: string; requeued: number };
  /** An adaptive limit (--concurrency auto) changed; `concurrency` repeats `new` for readers that track slots by it. */
  limit: { old: number; new: number; reason: 'probe' | 'ttft_gradient' | 'overload'; concurrency: number };
  run_end: { status: 'finished' | 'interrupted' | 'failed'; succeeded: number; failed: number; rejected: number };
  /**
   * The attempt's request went out on a reused keep-alive connection that the server had closed
   * (no response byte came back): it is sent again at once on a fresh connection, as the same
   * attempt, with no backoff and no retry counted. `after_stream`: that connection's previous
   * answer was streamed.
   */
  stale_connection: { id: string; attempt: number; error: string; after_stream?: boolean };
  /**
   * The shard stopped reusing connections after streamed answers: the host closes them without
   * saying so (`stale`: stale connections seen by then). Streamed requests now ask for Connection: close.
   */
  keepalive_off: { after: 'stream'; stale: number };
  /** The shard was told not to reuse connections (`--no-keep-alive`): every request connects first. */
  keepalive_disabled: Record<string, never>;
  /** The shard paused dispatch: the endpoint refuses connections or answers 502/503/504. */
  endpoint_down: { cause: Cause; status?: number; error: string };
  /** The endpoint answered again (or the pause hit --endpoint-down-max-s: `gave_up`); dispatch resumes. */
  endpoint_up: { probes: number; gave_up?: boolean };
  /**
   * An attempt failed while the endpoint was down: the request waits for it to come back, and this
   * attempt does not count against --max-attempts or the retry budget.
   */
  paused: { id: string; attempt: number; cause: Cause };
}

export type EventType = keyof EventPayloads;
/** One event line; a discriminated union on `type`. */
export type ShardlineEvent<T extends EventType = EventType> = T extends EventType
  ? EventBase & { type: T } & EventPayloads[T]
  : never;
