import { endpointOfUrl, type EndpointKind } from '../client/endpoints.js';
import { ConfigError } from '../errors.js';
import { redactUrl } from '../util/redact-url.js';
import { runOptionsSchema, slotBounds, type RunOptions, type RunOptionsInput, type SlotBounds } from './run-options.js';
import { formatZodIssues } from './zod-issues.js';
import type { UpstreamInput } from './run-option-table.js';

/** One server the run sends to, with what it needs of its own. */
export interface Upstream {
  /** Its API base URL (as `--endpoint` gives it; may hold credentials: never written). */
  readonly url: string;
  /** Its headers after the run's (`--header`), which they override by name. */
  readonly headers: readonly string[];
  /** Its API key: its `apiKeyEnv`'s value, else the run's. */
  readonly apiKey: string | undefined;
  /** Its own budgets per minute (a config file's `rpm`/`tpm` for it), shared by the shards sending to it. */
  readonly rpm?: number;
  readonly tpm?: number;
}

/** Default prefetch ceiling: 1,024 covers 100,000 starts/s over a 10 ms round trip. */
const MAX_DEFAULT_PREFETCH = 1024;

/**
 * Run options parsed once, with what inner code would otherwise work out again from them. The derived
 * fields are not enumerable: `run.json`, the options published to workers and `{ ...o }` carry the
 * options alone, and a spread copy is parsed afresh by `run()` (its values may have been changed).
 */
export interface ResolvedRunOptions extends RunOptions {
  /** Each shard's slots, from `concurrency` (a number, or `auto[:MIN-MAX[:START]]`). */
  readonly slots: SlotBounds;
  /** Items a shard holds beyond its free slots. @default min(slots.max, 1024) */
  readonly prefetchItems: number;
  /** Closed-loop backlog bound. @default 4 × shards × slots.max */
  readonly readAheadItems: number;
  /** What `retryFailed` runs again: every failure, the failures of these causes, or nothing. */
  readonly retryCauses: 'all' | readonly string[] | undefined;
  /** The endpoint of bare bodies without `messages`, from `url`. */
  readonly bareEndpoint: { kind: EndpointKind; path: string };
  /** The servers of `endpoint`, in order (one for a single URL). Shard i sends to upstream i mod their number. */
  readonly upstreams: readonly Upstream[];
}

/** The servers `endpoint` names, each with its headers and key. */
export function upstreamsOf(o: Pick<RunOptions, 'endpoint' | 'headers' | 'apiKey'>, env = process.env): Upstream[] {
  const list: UpstreamInput[] = Array.isArray(o.endpoint) ? o.endpoint : [o.endpoint];
  return list.map((u, i) => {
    if (typeof u === 'string') return { url: u, headers: o.headers, apiKey: o.apiKey };
    let apiKey = o.apiKey;
    if (u.apiKeyEnv !== undefined) {
      apiKey = env[u.apiKeyEnv];
      if (!apiKey)
        throw new ConfigError(
          `endpoint ${i + 1} (${redactUrl(u.url)}): its apiKeyEnv names ${u.apiKeyEnv}, which is not set; ` +
            'expected the environment variable that holds its API key',
        );
    }
    return {
      url: u.url,
      headers: [...o.headers, ...(u.headers ?? [])],
      apiKey,
      ...(u.rpm !== undefined ? { rpm: u.rpm } : {}),
      ...(u.tpm !== undefined ? { tpm: u.tpm } : {}),
    };
  });
}

/** Whether `o` came from `resolveRun` (and was not copied since). */
export function isResolved(o: object): o is ResolvedRunOptions {
  return Object.prototype.hasOwnProperty.call(o, 'slots') && !Object.prototype.propertyIsEnumerable.call(o, 'slots');
}

/** Add the derived fields to options the schema has parsed. */
export function resolveRun(o: RunOptions): ResolvedRunOptions {
  const slots = slotBounds(o.concurrency);
  const upstreams = upstreamsOf(o);
  // Each endpoint has a shard of its own at least (its pool, its limit, its health).
  const shards = Math.max(o.shards, upstreams.length);
  const derived = {
    slots,
    upstreams,
    // One per slot by default: with concurrency/8, a shard answering fast (or sharing busy cores)
    // emptied its prefetch between IPC round trips and left up to ~30% of its slots idle with work waiting
    // (BENCHMARKS.md, "Prefetch"); unstarted items are handed back when another shard runs dry. Capped, so
    // an unbounded run (concurrency 100,000) does not ship its whole input to a shard in one message.
    prefetchItems: o.prefetch ?? Math.min(slots.max, MAX_DEFAULT_PREFETCH),
    readAheadItems: o.readAhead ?? 4 * shards * slots.max,
    // The schema checked it names an endpoint.
    bareEndpoint: endpointOfUrl(o.url)!,
    retryCauses:
      o.retryFailed === false
        ? undefined
        : o.retryFailed === true || o.retryFailed === 'all'
          ? ('all' as const)
          : o.retryFailed.split(','),
  };
  const out = { ...o, shards };
  for (const [key, value] of Object.entries(derived))
    Object.defineProperty(out, key, { value, enumerable: false, writable: false });
  return out as ResolvedRunOptions;
}

/**
 * Parse options (input or already parsed) and resolve them; a resolved object is returned as it is.
 * Errors name the option (as a library caller spells it) and the value (ConfigError, exit 2).
 */
export function parseRunOptions(input: RunOptionsInput | RunOptions | Record<string, unknown>): ResolvedRunOptions {
  if (typeof input === 'object' && input !== null && isResolved(input)) return input;
  const parsed = runOptionsSchema.safeParse(input);
  if (!parsed.success) throw new ConfigError(formatZodIssues(parsed.error, input));
  return resolveRun(parsed.data);
}
