import type { QuotaObservation } from './pacing/rate-budget.js';
import type { Cause } from '../events/event-types.js';
import type { EndpointKind } from '../client/endpoints.js';

/** A request as the coordinator hands it to a shard. */
export interface WorkItem {
  id: string;
  lineNo: number;
  body: string;
  stream: boolean;
  /** The endpoint, when not chat, and an `other` endpoint's path (see RequestSpec). */
  endpoint?: Exclude<EndpointKind, 'chat'>;
  path?: string;
  items?: number;
  /** The attempt number this dispatch makes (1 for a first try). */
  attempt: number;
  /**
   * Attempts so far that failed while the endpoint was down (the shard's breaker was open): they
   * do not count against maxAttempts. @default 0
   */
  free?: number;
  /** With a token budget: what the request was charged (prompt estimate, and max_tokens when set). */
  charge?: { promptTokens: number; maxTokens: number | undefined };
}

/** Everything a shard process needs; sent once in `init`. Holds the API key: IPC only, never written. */
export interface ShardConfig {
  shard: number;
  runId: string;
  eventsPath: string;
  origin: string;
  /**
   * Which of the run's endpoints this shard sends to (`index` of `of`), its URL without credentials.
   * With several, work waiting on this shard while its endpoint is down goes back to the others.
   */
  upstream: {
    index: number;
    of: number;
    url: string;
    /**
     * Its per-minute budgets: this shard's part of them (divided among the shards sending to it), or, in a
     * distributed run, the whole of them kept in Redis under `shared.key` for every shard of every worker.
     */
    budget?: { rpm?: number; tpm?: number; shared?: { redis: string; key: string } };
  };
  /** The chat request path with its query (the hot path); other endpoints' paths are basePath/…search. */
  path: string;
  /** The API base URL's path without a trailing slash, and its query (Azure's `?api-version=`). */
  basePath: string;
  search: string;
  headers: Record<string, string>;
  /** The most attempts in flight (the pool's size; the fixed limit unless `adaptive`). */
  concurrency: number;
  /** `--concurrency auto`: the limit adapts within this range, from `start`. */
  adaptive: { min: number; max: number; start: number } | undefined;
  /** Send the answers' x-ratelimit-* state to the coordinator (the run has a budget). */
  reportQuota: boolean;
  /** Items a shard holds beyond its free slots (see ShardRuntime). */
  prefetch: number;
  maxAttempts: number;
  /** Longest pause of dispatch while the endpoint is down before failures count again. */
  endpointDownMaxMs: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  retryAfterMaxMs: number;
  retryBudget: number;
  retryBudgetWindowMs: number;
  retryBudgetMinRetries: number;
  retryMode: 'backoff' | 'fixed';
  keepAlive: boolean;
  transport: 'undici' | 'raw';
  timeoutConnectMs: number;
  timeoutTtftMs: number;
  timeoutIdleMs: number;
  timeoutTotalMs: number;
  seed: number;
  postprocess: string | undefined;
  gaugeIntervalMs: number;
  replaces?: number;
}

/** A request that reached its end on a shard. */
export interface DoneItem {
  id: string;
  /**
   * The results.jsonl line (no trailing newline): text, or its UTF-8 bytes as a forked shard's
   * frames carry it (see shard-frames.ts).
   */
  resultLine: string | Uint8Array;
  outcome: 'succeeded' | 'failed';
  attempts: number;
  completionTokens: number;
  promptTokens: number;
  cause?: Cause | 'postprocess_error';
  /** Server TTFT of the successful attempt, ms. */
  ttftMs?: number;
  /** Duration of the final attempt, ms. */
  attemptMs: number;
  /** Model the server answered with (successes). */
  model?: string;
  /** HTTP status of the final attempt of a failed request, when it got one. */
  status?: number;
  /** Its error message (credentials removed), for the run summary's hints. */
  error?: string;
  /** Not retried because the server's Retry-After (ms) was over --retry-after-max-s. */
  retryAfterTooLongMs?: number;
}

export interface RetryItem {
  id: string;
  /** The attempt number of the retry. */
  attempt: number;
  /** The item's uncharged attempts (WorkItem.free). */
  free?: number;
  delayMs: number;
  /** When the retry may start (event clock, epoch ms): the backoff event's time plus delayMs. */
  dueTs: number;
  cause: Cause;
  /** Duration of the failed attempt, ms. */
  attemptMs: number;
}

export type ToShard =
  | { t: 'init'; config: ShardConfig }
  | { t: 'work'; items: WorkItem[] }
  | { t: 'stop'; mode: 'drain' | 'abandon' }
  /** Hand back up to `n` prefetched, unstarted items (another shard has a free slot and nothing to do). */
  | { t: 'steal'; n: number };

export type FromShard =
  | { t: 'ready'; pid: number }
  /** n more items wanted; `running` attempts and `local` prefetched items right now. */
  | { t: 'pull'; n: number; running: number; local: number }
  | { t: 'done'; items: DoneItem[] }
  | { t: 'retry'; items: RetryItem[] }
  /** The newest x-ratelimit-* state the shard's answers carried (sent only when the run has a budget). */
  | { t: 'quota'; items: QuotaObservation[] }
  | {
      t: 'beat';
      inFlight: number;
      /** The shard's in-flight limit now (its concurrency, or the adaptive limit). */
      limit: number;
      loopLagMs: number;
      connsOpen: number;
      connsOpened: number;
      /** Stale-connection re-sends and paused attempts over the shard's life so far. */
      stale: number;
      paused: number;
      /** Event-loop utilization over the last gauge interval, 0–1. */
      loopBusy: number;
      /** Share of it the loop thread waited for a core (Linux), 0–1; null where unknown. */
      cpuWait: number | null;
    }
  /**
   * Prefetched items handed back. `attempts`/`free`, index for index with `ids`, where an item's
   * attempt moved on in the shard (it failed while the endpoint was down and waited there).
   */
  | { t: 'release'; ids: string[]; attempts?: number[]; free?: number[] }
  /** The shard paused dispatch because the endpoint is down (`sinceTs`, event clock), or resumed. */
  | { t: 'health'; down: boolean; sinceTs: number }
  /** The shard cannot go on (its event file cannot be written): the run must stop. */
  | { t: 'fatal'; message: string }
  | { t: 'stopped' };
