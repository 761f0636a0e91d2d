import { z } from 'zod';
import { CAUSES } from '../events/event-types.js';
import { redisUrlSchema } from './redis-url.js';

const positive = z.coerce.number().finite().positive();
const posInt = z.coerce.number().int().positive();
const AUTO_CONCURRENCY = /^auto(?::(\d+)-(\d+)(?::(\d+))?)?$/;

/** A shard's slots: the most it may run (its pool size) and, for `auto`, the adaptive range. */
export interface SlotBounds {
  max: number;
  adaptive: { min: number; max: number; start: number } | undefined;
}

/** Resolve `concurrency` (a number, or `auto[:MIN-MAX[:START]]`). */
export function slotBounds(concurrency: number | string): SlotBounds {
  if (typeof concurrency === 'number') return { max: concurrency, adaptive: undefined };
  const m = AUTO_CONCURRENCY.exec(concurrency)!;
  const min = Math.max(1, Number(m[1] ?? 1));
  const max = Math.max(min, Number(m[2] ?? 256));
  const start = Math.min(max, Math.max(min, Number(m[3] ?? 16)));
  return { max, adaptive: { min, max, start } };
}

/** What a failed result's `error.code` can be: a request's failure cause, or the post-processing hook's. */
export const RESULT_ERROR_CODES = [...CAUSES, 'postprocess_error'] as const;
const RETRY_FAILED_EXPECTED = `all (or true), or failure causes separated by commas (${RESULT_ERROR_CODES.join(', ')})`;
/** What `--retry-failed` takes: `all`, or a comma-separated list of result error codes. */
const RETRY_FAILED_RE = new RegExp(`^(all|(${RESULT_ERROR_CODES.join('|')})(,(${RESULT_ERROR_CODES.join('|')}))*)$`);

const CONCURRENCY_EXPECTED = 'an integer from 1 to 100000, or auto, auto:MIN-MAX or auto:MIN-MAX:START';
function isConcurrency(v: number | string): boolean {
  return typeof v === 'number' ? Number.isInteger(v) && v >= 1 && v <= 100_000 : AUTO_CONCURRENCY.test(v);
}

function isHttpUrl(value: string): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}

/**
 * `shardline run` / `run()` options, validated once here; inner code trusts the resolved type.
 * Every field has a default and a description; durations carry their unit in the name.
 */
export const runOptionsSchema = z
  .object({
    input: z.string().min(1).describe('Input JSONL file (OpenAI Batch lines or bare chat bodies).'),
    endpoint: z
      .string()
      // One check, so a bad value gets one message rather than one per failed check.
      .refine(isHttpUrl, 'an http:// or https:// URL such as http://127.0.0.1:8000/v1')
      // The full request URL is a common slip: requests would go to …/chat/completions/chat/completions.
      .refine(
        (u) => !isHttpUrl(u) || !/\/chat\/completions\/?$/.test(new URL(u).pathname),
        'the API base URL without /chat/completions: requests go to <endpoint>/chat/completions',
      )
      .describe("API base URL as the OpenAI client's baseURL, e.g. http://127.0.0.1:8000/v1."),
    out: z.string().min(1).describe('Output directory (results, events, rejects, run.json).'),
    model: z.string().min(1).optional().describe('Model to set on every request (overrides the body).'),
    shards: posInt.max(256).default(1).describe('Worker processes (SHARD_COUNT). @default 1'),
    concurrency: z
      // One check rather than a union, so a bad value gets one message naming both forms.
      .preprocess(
        (v) => (typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v),
        z.union([z.number(), z.string()]).refine(isConcurrency, CONCURRENCY_EXPECTED),
      )
      .default(16)
      .describe(
        'In-flight requests per shard (LLM_CONCURRENCY), or auto[:MIN-MAX[:START]]: a limit that adapts to server TTFT and backs off on 429/5xx/timeouts (default range 1-256, start 16). @default 16',
      ),
    maxAttempts: posInt
      .max(100)
      .default(5)
      .describe('Attempts per request, first included (LLM_MAX_ATTEMPTS). @default 5'),
    endpointDownMaxS: positive
      .default(600)
      .describe(
        'Longest pause while the endpoint is down (refused connections, or 502/503/504 answers in a row, after it had answered): dispatch stops, one probe at a time checks for its return, and attempts that fail meanwhile use up no --max-attempts. Past this, failures count again. @default 600',
      ),
    retryBackoffS: positive
      .default(1)
      .describe('Base backoff, doubled each retry, full jitter (LLM_RETRY_BACKOFF_S). @default 1'),
    retryBackoffMaxS: positive.default(30).describe('Backoff cap. @default 30'),
    retryAfterMaxS: positive
      .default(300)
      .describe(
        'Longest server Retry-After honoured; a request told to wait longer (a spent quota) fails at once with its cause, to run again later (--retry-failed). @default 300',
      ),
    retryBudget: z.coerce
      .number()
      .min(0)
      .max(1)
      .default(0.2)
      .describe('Max share of attempts that may be retries over the window, per shard. @default 0.2'),
    retryBudgetWindowS: positive.default(30).describe('Retry budget window. @default 30'),
    retryBudgetMinRetries: z.coerce
      .number()
      .int()
      .min(0)
      .default(10)
      .describe('Retries always allowed per window, so a small run can still retry. @default 10'),
    retryMode: z
      .enum(['backoff', 'fixed'])
      .default('backoff')
      .describe(
        'backoff: exponential with full jitter, Retry-After and a retry budget; fixed: the naive loop — always --retry-backoff-s, no jitter, no budget, Retry-After ignored. @default backoff',
      ),
    transport: z
      .enum(['undici', 'raw'])
      .default('undici')
      .describe(
        'HTTP client: undici, or raw (a minimal HTTP/1.1 client reading sockets into a static buffer; less CPU per streamed chunk at high concurrency). @default undici',
      ),
    readCoalesceMs: z
      .union([z.literal('auto'), z.coerce.number().finite().min(0).max(1000)], {
        error: "'auto' or a number of milliseconds from 0 to 1000",
      })
      .optional()
      .describe(
        'Accepted for scripts written for earlier versions; no effect (read holds were removed: BENCHMARKS.md says why).',
      ),
    keepAlive: z
      .boolean()
      .default(true)
      .describe('Reuse connections; false sends Connection: close on every request. @default true'),
    timeoutConnectS: positive.default(10).describe('TCP/TLS connect timeout. @default 10'),
    timeoutTtftS: positive.default(120).describe('Request sent → first content token. @default 120'),
    timeoutIdleS: positive
      .default(30)
      .describe('Longest gap between content chunks (keep-alive comments do not count). @default 30'),
    timeoutTotalS: positive.default(600).describe('Whole attempt. @default 600'),
    rate: positive.optional().describe('Open-loop Poisson arrivals, requests/s; closed-loop when absent.'),
    rpm: positive
      .optional()
      .describe(
        "Request budget per minute for the whole run (all shards): requests are enqueued only as it allows, and the provider's x-ratelimit-* headers are honoured too. No budget when absent.",
      ),
    tpm: positive
      .optional()
      .describe(
        'Token budget per minute for the whole run: each request costs its prompt (counted with the o200k tokenizer, corrected by usage) plus max_tokens, as providers count it. No budget when absent.',
      ),
    seed: z.coerce
      .number()
      .int()
      .min(0)
      .optional()
      .describe('Seed for arrivals and backoff jitter; random when absent.'),
    postprocess: z
      .string()
      .min(1)
      .optional()
      .describe('Module whose default export transforms each result, run in a worker pool.'),
    headers: z
      .array(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+:\s*.*$/, "a header as 'Name: value'"))
      .default([])
      .describe('Extra request headers.'),
    apiKey: z
      .string()
      .min(1)
      .optional()
      .describe('Sent as Authorization: Bearer (OPENAI_API_KEY / SHARDLINE_API_KEY). Never written anywhere.'),
    resume: z.boolean().default(false).describe('Skip ids that already have a result in OUT.'),
    retryFailed: z
      .union([z.boolean(), z.string().regex(RETRY_FAILED_RE, RETRY_FAILED_EXPECTED)], { error: RETRY_FAILED_EXPECTED })
      .default(false)
      .describe(
        'Resume OUT and run again the requests whose result there is a failure: all of them (true or all), or those whose cause is listed (e.g. http_5xx,timeout_total). Their old result lines move to OUT/retried.jsonl, so results.jsonl keeps one line per request. @default false',
      ),
    failFast: z.coerce
      .number()
      .int()
      .min(0)
      .default(20)
      .describe(
        'Stop the run (exit 1) when the first N requests to finish all failed with HTTP 401, 403 or 404: a wrong API key, --model or --endpoint, with which every further request would fail the same way. 0 never stops. @default 20',
      ),
    allowFailures: z
      .string()
      .regex(/^\d+%?$|^\d+(\.\d+)?%$/, 'a count N or a percentage P%')
      .optional()
      .describe('Failed requests tolerated before exit code 3.'),
    readAhead: posInt.optional().describe('Backlog bound in closed-loop mode. @default 4 × shards × concurrency'),
    prefetch: z.coerce
      .number()
      .int()
      .min(0)
      .optional()
      .describe(
        'Items a shard holds beyond its free slots, so a freed slot starts at once instead of after an IPC round trip. @default min(concurrency, 1024)',
      ),
    onInterrupt: z
      .enum(['drain', 'abandon'])
      .default('drain')
      .describe('On SIGINT/SIGTERM, finish or drop in-flight attempts. @default drain'),
    drainTimeoutS: positive
      .default(30)
      .describe('How long a drain may take before in-flight work is abandoned. @default 30'),
    wedgeTimeoutS: positive.default(15).describe('A shard silent this long is killed and replaced. @default 15'),
    metricsPort: z.coerce
      .number()
      .int()
      .min(0)
      .max(65535)
      .optional()
      .describe('Serve Prometheus /metrics on this port during the run (0 picks one).'),
    metricsHost: z.string().min(1).default('127.0.0.1').describe('Address for --metrics-port. @default 127.0.0.1'),
    progress: z
      .enum(['auto', 'tty', 'lines', 'off'])
      .default('auto')
      .describe('Progress display on stderr. @default auto'),
    gaugeIntervalMs: posInt.default(1000).describe('Gauge event period. @default 1000'),
    redis: redisUrlSchema.optional(),
    globalConcurrency: posInt
      .max(1_000_000)
      .optional()
      .describe(
        'With --redis: most requests in flight across all workers together (each worker still holds its own --concurrency per shard).',
      ),
    localWorkers: z.coerce
      .number()
      .int()
      .min(0)
      .max(64)
      .default(0)
      .describe('With --redis: worker processes to start on this machine too (shardline worker). @default 0'),
  })
  .strict();

export type RunOptionsInput = z.input<typeof runOptionsSchema>;
export type RunOptions = z.output<typeof runOptionsSchema>;

/** CLI flag for each option key (for error messages and config files). */
export const flagOf: Record<string, string> = {
  input: 'INPUT',
  endpoint: '--endpoint',
  out: '--out',
  model: '--model',
  shards: '--shards',
  concurrency: '--concurrency',
  maxAttempts: '--max-attempts',
  endpointDownMaxS: '--endpoint-down-max-s',
  retryBackoffS: '--retry-backoff-s',
  retryBackoffMaxS: '--retry-backoff-max-s',
  retryAfterMaxS: '--retry-after-max-s',
  retryBudget: '--retry-budget',
  retryBudgetWindowS: '--retry-budget-window-s',
  retryBudgetMinRetries: '--retry-budget-min-retries',
  retryMode: '--retry-mode',
  keepAlive: '--no-keep-alive',
  transport: '--transport',
  readCoalesceMs: '--read-coalesce-ms',
  timeoutConnectS: '--timeout-connect-s',
  timeoutTtftS: '--timeout-ttft-s',
  timeoutIdleS: '--timeout-idle-s',
  timeoutTotalS: '--timeout-total-s',
  rate: '--rate',
  rpm: '--rpm',
  tpm: '--tpm',
  seed: '--seed',
  postprocess: '--postprocess',
  headers: '--header',
  apiKey: 'OPENAI_API_KEY',
  resume: '--resume',
  retryFailed: '--retry-failed',
  failFast: '--fail-fast',
  allowFailures: '--allow-failures',
  readAhead: '--read-ahead',
  prefetch: '--prefetch',
  onInterrupt: '--on-interrupt',
  drainTimeoutS: '--drain-timeout-s',
  wedgeTimeoutS: '--wedge-timeout-s',
  progress: '--progress',
  metricsPort: '--metrics-port',
  metricsHost: '--metrics-host',
  gaugeIntervalMs: '--gauge-interval-ms',
  redis: '--redis',
  localWorkers: '--local-workers',
  globalConcurrency: '--global-concurrency',
};

/** Environment variables teams already use, mapped to option keys. */
export const envOf: Record<string, keyof RunOptions> = {
  LLM_CONCURRENCY: 'concurrency',
  SHARD_COUNT: 'shards',
  LLM_RETRY_BACKOFF_S: 'retryBackoffS',
  LLM_MAX_ATTEMPTS: 'maxAttempts',
  SHARDLINE_API_KEY: 'apiKey',
  OPENAI_API_KEY: 'apiKey',
};
