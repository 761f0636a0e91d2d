import { z } from 'zod';
import { CAUSES } from '../events/event-types.js';
import { endpointOfUrl } from '../client/endpoints.js';
import { redactUrl } from '../util/redact-url.js';
import type { OptionSpec } from './option-table.js';
import { redactRedisUrl, redisUrlSchema } from './redis-url.js';

const positive = z.coerce.number().finite().positive();
const posInt = z.coerce.number().int().positive();
const nonNegInt = z.coerce.number().int().min(0);

/** `auto`, `auto:MIN-MAX` or `auto:MIN-MAX:START`. */
export const AUTO_CONCURRENCY = /^auto(?::(\d+)-(\d+)(?::(\d+))?)?$/;
const CONCURRENCY_EXPECTED = 'an integer from 1 to 100000, or auto, auto:MIN-MAX or auto:MIN-MAX:START';
function isConcurrency(v: number | string): boolean {
  return typeof v === 'number' ? Number.isInteger(v) && v >= 1 && v <= 100_000 : AUTO_CONCURRENCY.test(v);
}

/** What a failed result's `error.code` can be: a request's failure cause, or the post-processing hook's. */
export const RESULT_ERROR_CODES = [...CAUSES, 'postprocess_error'] as const;
const CODES = RESULT_ERROR_CODES.join('|');
const RETRY_FAILED_EXPECTED = `all (or true), or failure causes separated by commas (${RESULT_ERROR_CODES.join(', ')})`;
const RETRY_FAILED_RE = new RegExp(`^(all|(${CODES})(,(${CODES}))*)$`);

function isHttpUrl(value: string): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}

const endpointSchema = z
  .string()
  // One check, so a bad value gets one message rather than one per failed check.
  .refine(isHttpUrl, 'an http:// or https:// URL such as http://127.0.0.1:8000/v1')
  // The full request URL is a common slip: requests would go to …/chat/completions/chat/completions.
  .refine(
    (u) => !isHttpUrl(u) || !/\/chat\/completions\/?$/.test(new URL(u).pathname),
    'the API base URL without /chat/completions: requests go to <endpoint>/chat/completions',
  );

const headerSchema = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+:\s*.*$/, "a header as 'Name: value'");

/**
 * One endpoint of several, as a config file may give it: its URL, and headers or an API key of its
 * own. The key is named by its environment variable (`apiKeyEnv`), so no secret sits in the file.
 */
const upstreamSchema = z.union([
  endpointSchema,
  z
    .object({
      url: endpointSchema,
      headers: z.array(headerSchema).optional(),
      apiKeyEnv: z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'the name of an environment variable holding the key')
        .optional(),
      /** This server's own budgets per minute (a deployment's quota), on top of the run's --rpm/--tpm. */
      rpm: z.coerce.number().finite().positive().optional(),
      tpm: z.coerce.number().finite().positive().optional(),
    })
    .strict(),
]);
export type UpstreamInput = z.output<typeof upstreamSchema>;

/** One URL (the common case, kept a string) or several endpoints the run balances over. */
const endpointsSchema = z
  .union([endpointSchema, z.array(upstreamSchema).min(1, 'at least one endpoint')])
  .transform((v) => (Array.isArray(v) && v.length === 1 && typeof v[0] === 'string' ? v[0] : v));

/** An endpoint as run.json publishes it: the URL without credentials, never its headers or key. */
function publishUpstream(u: UpstreamInput): string {
  return redactUrl(typeof u === 'string' ? u : u.url);
}

const concurrencySchema = z
  // One check rather than a union, so a bad value gets one message naming both forms.
  .preprocess(
    (v) => (typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v),
    z.union([z.number(), z.string()]).refine(isConcurrency, CONCURRENCY_EXPECTED),
  )
  .default(16);

/**
 * Every option of `shardline run` / `run()`, in the order `--help` and docs/run.md list them. Each entry is
 * the one declaration of its option: flag, help, environment variables, schema and default, docs row, and
 * whether it stays on the machine that started the run (`localOnly`) or how `run.json` publishes it.
 */
export const RUN_OPTIONS = {
  input: {
    label: 'INPUT',
    schema: z.string().min(1),
    help: 'Input JSONL file (OpenAI Batch lines or bare chat bodies).',
    doc: 'JSONL input, streamed (never loaded whole)',
    localOnly: true,
  },
  endpoint: {
    flag: '--endpoint <url>',
    schema: endpointsSchema,
    repeatable: true,
    help:
      "API base URL as the OpenAI client's baseURL, e.g. http://127.0.0.1:8000/v1; repeat it to balance " +
      'the run over several servers',
    doc:
      "API base URL exactly as the OpenAI client's `baseURL`; requests go to `<endpoint>/chat/completions`, " +
      "query string kept (Azure's `api-version`). `https://` trusts Node's roots, the system CA bundle and " +
      '`NODE_EXTRA_CA_CERTS`. **Repeat it** (or give a list in the config file) to balance over several ' +
      'servers: see "Several endpoints"',
    publish: { value: (u: string | UpstreamInput[]) => (Array.isArray(u) ? u.map(publishUpstream) : redactUrl(u)) },
  },
  out: {
    flag: '--out <dir>',
    schema: z.string().min(1),
    help: 'output directory: results.jsonl, rejects.jsonl, run.json, events/',
    localOnly: true,
  },
  url: {
    flag: '--url <path>',
    schema: z
      .string()
      .refine((u) => endpointOfUrl(u) !== undefined, 'a POST path under /v1/ such as /v1/embeddings')
      .default('/v1/chat/completions'),
    help:
      'the endpoint of bare bodies without messages: /v1/embeddings (input), /v1/completions (prompt), ' +
      '/v1/responses (input); Batch lines name their own url',
    doc:
      'the endpoint of **bare bodies** without `messages`: `/v1/embeddings` (a body with `input`), ' +
      '`/v1/completions` (`prompt`) or `/v1/responses` (`input`). Batch API lines name their own `url`, per ' +
      'line, and a job file may mix them; a bare body with `messages` is always chat',
  },
  model: {
    flag: '--model <name>',
    schema: z.string().min(1).optional(),
    help: 'set this model on every request',
    defaultText: 'from each body',
  },
  shards: {
    flag: '--shards <n>',
    env: ['SHARD_COUNT'],
    schema: posInt.max(256).default(1),
    help: 'worker processes',
  },
  concurrency: {
    flag: '--concurrency <n|auto>',
    env: ['LLM_CONCURRENCY'],
    schema: concurrencySchema,
    help:
      'in-flight requests per shard, or auto[:MIN-MAX[:START]]: a limit that adapts to server TTFT and backs ' +
      'off on 429/5xx/timeouts, from 16 within 1-256 unless given',
    doc:
      'in-flight requests **per shard**; `auto` adapts the limit to the server (range 1–256, start 16 by ' +
      'default; see "Finding the bound" below)',
  },
  maxAttempts: {
    flag: '--max-attempts <n>',
    env: ['LLM_MAX_ATTEMPTS'],
    schema: posInt.max(100).default(5),
    help: 'attempts per request, first included',
  },
  endpointDownMaxS: {
    flag: '--endpoint-down-max-s <s>',
    schema: positive.default(600),
    help:
      'longest pause of dispatch while the endpoint is down (refusing connections or answering 502/503/504); ' +
      'attempts meanwhile use up no --max-attempts',
    doc:
      'longest pause of dispatch while the endpoint is down (see "When the server misbehaves" below); attempts ' +
      'that fail during the pause use up no `--max-attempts`. Past it, failures count again',
  },
  retryBackoffS: {
    flag: '--retry-backoff-s <s>',
    env: ['LLM_RETRY_BACKOFF_S'],
    schema: positive.default(1),
    help: 'base backoff, doubled per retry, full jitter',
  },
  retryBackoffMaxS: { flag: '--retry-backoff-max-s <s>', schema: positive.default(30), help: 'backoff cap' },
  retryAfterMaxS: {
    flag: '--retry-after-max-s <s>',
    schema: positive.default(300),
    help:
      'longest server Retry-After honoured; a request told to wait longer (a spent quota) fails at once, to ' +
      'run again later with --retry-failed',
  },
  retryBudget: {
    flag: '--retry-budget <share>',
    schema: z.coerce.number().min(0).max(1).default(0.2),
    help:
      "most retries as a share of a shard's attempts over the budget window; when spent a failure waits the " +
      'full --retry-backoff-max-s',
  },
  retryBudgetWindowS: {
    flag: '--retry-budget-window-s <s>',
    schema: positive.default(30),
    help: "the retry budget's sliding window",
  },
  retryBudgetMinRetries: {
    flag: '--retry-budget-min-retries <n>',
    schema: nonNegInt.default(10),
    help: 'retries always allowed per window, so a small run can still retry',
  },
  retryMode: {
    flag: '--retry-mode <mode>',
    schema: z.enum(['backoff', 'fixed']).default('backoff'),
    help: 'backoff (exponential, full jitter, Retry-After, budget) or fixed (the naive loop: a constant delay)',
    doc:
      '`fixed` is the naive loop many hand-written clients run — always `--retry-backoff-s`, no jitter, no ' +
      'budget, `Retry-After` ignored — for reproducing an incident',
  },
  transport: {
    flag: '--transport <client>',
    schema: z.enum(['undici', 'raw']).default('undici'),
    help: 'undici, or raw: a minimal HTTP/1.1 client with less CPU per streamed chunk',
    doc:
      "`raw` is shardline's own minimal HTTP/1.1 client (sockets read into a static buffer): less CPU per " +
      'streamed token at high concurrency (BENCHMARKS.md, "Transports"). Keep the default unless the ' +
      "client's CPU is the bottleneck. One request per connection at a time; `https://` works. It reuses a " +
      "connection without undici's event-loop turn, so use it with endpoints you run or trust",
  },
  readCoalesceMs: {
    flag: '--read-coalesce-ms <ms|auto>',
    schema: z
      .union([z.literal('auto'), z.coerce.number().finite().min(0).max(1000)], {
        error: "'auto' or a number of milliseconds from 0 to 1000",
      })
      .optional(),
    help: 'no effect (read holds were removed); accepted so scripts written for earlier versions still run',
    doc:
      'no effect; accepted so scripts written for earlier versions still run (read holds were removed: ' +
      'BENCHMARKS.md, "Transports")',
    defaultText: '',
  },
  keepAlive: {
    flag: '--no-keep-alive',
    schema: z.boolean().default(true),
    help: 'send Connection: close on every request (to reproduce connection churn)',
    defaultText: 'keep-alive on',
  },
  timeoutConnectS: {
    flag: '--timeout-connect-s <s>',
    schema: positive.default(10),
    help: 'TCP (and TLS) connect timeout',
  },
  timeoutTtftS: {
    flag: '--timeout-ttft-s <s>',
    schema: positive.default(120),
    help: 'request sent → first content token (non-streaming: → response headers)',
  },
  timeoutIdleS: {
    flag: '--timeout-idle-s <s>',
    schema: positive.default(30),
    help: 'longest gap between content chunks; SSE comments and empty chunks do not reset it',
  },
  timeoutTotalS: { flag: '--timeout-total-s <s>', schema: positive.default(600), help: 'whole-attempt timeout' },
  rate: {
    flag: '--rate <r>',
    schema: positive.optional(),
    help: 'open-loop Poisson arrivals at R requests/s (seeded by --seed)',
    defaultText: 'closed loop',
  },
  rpm: {
    flag: '--rpm <n>',
    schema: positive.optional(),
    help: "request budget per minute for the whole run, kept under the provider's x-ratelimit-* headers too",
    doc:
      'request budget per minute for the whole run, all shards together: a request is enqueued only once the ' +
      "budget has room, so waiting for it is pacing, not queue time. With a budget set, the provider's " +
      '`x-ratelimit-remaining-*` headers (OpenAI, Azure) are obeyed too',
  },
  tpm: {
    flag: '--tpm <n>',
    schema: positive.optional(),
    help: 'token budget per minute for the whole run: prompt + max_tokens per request, corrected by usage',
    doc:
      'token budget per minute, as providers count it: the prompt (o200k tokenizer) plus `max_tokens` × `n` ' +
      '(the completion when unset), the prompt corrected by `usage` once answered. See "Provider budgets" below',
  },
  seed: {
    flag: '--seed <n>',
    schema: nonNegInt.optional(),
    help: 'seed for arrivals and backoff jitter',
    defaultText: 'random',
  },
  postprocess: {
    flag: '--postprocess <module>',
    schema: z.string().min(1).optional(),
    help: 'module whose default export (result) => result runs in a worker pool',
    doc:
      'ES module whose default export `(result) => result | Promise<result>` rewrites each successful result, ' +
      'run in a worker-thread pool (piscina) so a slow hook never stalls dispatch. It is loaded once before ' +
      'the run starts (in a throwaway worker): a module that fails to load or has no default function exits 2 ' +
      'before any request is sent',
    localOnly: true,
  },
  headers: {
    flag: '--header <header>',
    schema: z.array(headerSchema).default([]),
    help: "extra request header 'Name: value', repeatable (values are never written anywhere)",
    configAliases: ['headers'],
    localOnly: true,
    publish: { value: (hs: string[]) => hs.map((h) => `${h.slice(0, h.indexOf(':'))}: (not recorded)`) },
  },
  apiKey: {
    label: 'OPENAI_API_KEY',
    env: ['OPENAI_API_KEY', 'SHARDLINE_API_KEY'],
    schema: z.string().min(1).optional(),
    help: 'sent as Authorization: Bearer (SHARDLINE_API_KEY wins); never written anywhere',
    configAliases: ['api-key'],
    localOnly: true,
    publish: { as: 'api_key', value: (k: string | undefined) => (k ? '(set, not recorded)' : '(none)') },
  },
  resume: {
    flag: '--resume',
    schema: z.boolean().default(false),
    help: 'continue an interrupted run in --out (re-running into the same --out also resumes)',
    doc: 'continue the run in `--out`; exit 2 if there is none. Re-running into an existing `--out` also resumes',
    defaultText: '',
    localOnly: true,
  },
  retryFailed: {
    flag: '--retry-failed [causes]',
    schema: z
      .union([z.boolean(), z.string().regex(RETRY_FAILED_RE, RETRY_FAILED_EXPECTED)], { error: RETRY_FAILED_EXPECTED })
      .default(false),
    help:
      'resume --out and run again the requests whose result there is a failure: all (the default), or those ' +
      'with the listed causes (e.g. http_5xx,timeout_total); their old results move to retried.jsonl',
    doc:
      'resume `--out` and run again the requests whose result is a failure: all (no value, or `all`) or only ' +
      'the causes listed (`--retry-failed http_429,http_5xx`; causes below plus `postprocess_error`). Old ' +
      'result lines move to `DIR/retried.jsonl`, so `results.jsonl` keeps one line per request. Exit 2 if ' +
      '`--out` has no earlier run. A following word counts as causes only if it looks like a list of them',
    localOnly: true,
  },
  failFast: {
    flag: '--fail-fast <n>',
    schema: nonNegInt.default(20),
    help:
      'stop (exit 1) when the first N requests to finish all failed with HTTP 401, 403 or 404 — a wrong key, ' +
      '--model or --endpoint; 0 never stops',
    doc:
      'stop the run (exit 1) when the first N requests to finish all failed with HTTP 401, 403 or 404: a wrong ' +
      'API key, `--model` or `--endpoint`. In-flight requests finish, nothing more is sent, and the hints say ' +
      'what to check; fix it and run again into the same `--out` with `--retry-failed`. 0 never stops',
  },
  allowFailures: {
    flag: '--allow-failures <n|p%>',
    schema: z
      .string()
      .regex(/^\d+%?$|^\d+(\.\d+)?%$/, 'a count N or a percentage P%')
      .optional(),
    help: 'failed requests plus rejected lines tolerated before exit code 3',
    defaultText: '0',
  },
  readAhead: {
    flag: '--read-ahead <n>',
    schema: posInt.optional(),
    help: 'closed-loop backlog bound',
    defaultText: '4 × shards × concurrency',
  },
  prefetch: {
    flag: '--prefetch <n>',
    schema: nonNegInt.optional(),
    help: 'items a shard holds beyond its free slots so a freed slot starts at once',
    doc:
      'items a shard holds beyond its free slots, so a freed slot starts its next request without an IPC round ' +
      'trip to the coordinator; 0 is pure pull (a slot waits for that round trip). Each prefetched item holds its ' +
      "request body in the shard's memory, as read-ahead items do in the coordinator's: lower both for very " +
      'large prompts',
    defaultText: 'concurrency, at most 1024',
  },
  onInterrupt: {
    flag: '--on-interrupt <mode>',
    schema: z.enum(['drain', 'abandon']).default('drain'),
    help: 'on SIGINT/SIGTERM, let in-flight attempts finish or drop them; a second signal abandons',
  },
  drainTimeoutS: {
    flag: '--drain-timeout-s <s>',
    schema: positive.default(30),
    help: 'longest drain before in-flight work is abandoned',
  },
  wedgeTimeoutS: {
    flag: '--wedge-timeout-s <s>',
    schema: positive.default(15),
    help: 'a shard that sends no heartbeat this long is killed and replaced',
  },
  progress: {
    flag: '--progress <mode>',
    schema: z.enum(['auto', 'tty', 'lines', 'off']).default('auto'),
    help: 'progress on stderr: auto is in place on a TTY, a line every 10 s otherwise',
    localOnly: true,
  },
  metricsPort: {
    flag: '--metrics-port <port>',
    schema: z.coerce.number().int().min(0).max(65535).optional(),
    help: 'serve Prometheus /metrics (OpenTelemetry GenAI names) during the run; 0 picks a port',
    doc: 'serve Prometheus `/metrics` during the run (0 picks a port; the URL is printed on stderr)',
    defaultText: 'off',
    localOnly: true,
  },
  metricsHost: {
    flag: '--metrics-host <host>',
    schema: z.string().min(1).default('127.0.0.1'),
    help: 'address for --metrics-port',
    localOnly: true,
  },
  gaugeIntervalMs: {
    flag: '--gauge-interval-ms <ms>',
    schema: posInt.default(1000),
    help: 'how often the coordinator and each shard write a gauge event (backlog, in flight, loop lag, CPU)',
  },
  redis: {
    flag: '--redis <url>',
    schema: redisUrlSchema.optional(),
    help: 'coordinate a distributed run over this Redis: requests go out in chunks to `shardline worker` processes',
    doc:
      'coordinate a distributed run over this Redis: the input goes out in chunks of 256–2,048 requests to ' +
      '`shardline worker` processes on any machine, results come back to this `--out` ' +
      '([distributed.md](distributed.md)). Not with `--rate` (each worker would apply it alone); ' +
      '`--rpm`/`--tpm` are one budget all workers share',
    localOnly: true,
    // Its password stays out of run.json and run_start.
    publish: { value: (u: string | undefined) => (u === undefined ? undefined : redactRedisUrl(u)) },
  },
  redisWaitS: {
    flag: '--redis-wait-s <s>',
    schema: z.coerce.number().finite().min(0).max(3600).default(30),
    help: 'with --redis: at start, how long to keep trying a Redis that cannot be reached (a restart, a failover)',
    doc:
      'with `--redis`: at start, how long to keep trying a Redis that cannot be reached (a restart, a failover) ' +
      'before exiting 1, saying so on one line; 0 tries once. A Redis that answers but is too old or evicts keys ' +
      'fails at once',
    localOnly: true,
  },
  globalConcurrency: {
    flag: '--global-concurrency <n>',
    schema: posInt.max(1_000_000).optional(),
    help:
      'with --redis: most requests in flight across all workers together, shared out through Redis leases ' +
      "(each worker's shards still hold their own --concurrency)",
  },
  localWorkers: {
    flag: '--local-workers <n>',
    schema: z.coerce.number().int().min(0).max(64).default(0),
    help: 'with --redis: also start this many workers on this machine, for this run',
    localOnly: true,
  },
} satisfies Record<string, OptionSpec>;

/** `--config FILE`: a flag of the command, not an option of the run (it says where the others come from). */
export const CONFIG_FLAG: OptionSpec = {
  flag: '--config <file>',
  schema: z.string().optional(),
  help: 'YAML config; keys are flag names without -- (flags and env override it)',
};
