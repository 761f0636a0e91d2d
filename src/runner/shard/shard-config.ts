import { join, resolve } from 'node:path';
import type { ResolvedRunOptions } from '../../config/resolved-run-options.js';
import { VERSION } from '../../version.js';
import { redactUrl } from '../../util/redact-url.js';
import type { ShardConfig } from '../ipc-messages.js';

/** The path requests go to under the API base URL (`<endpoint>/chat/completions`), without query. */
export function chatPath(u: URL): string {
  return `${u.pathname.replace(/\/$/, '')}/chat/completions`;
}

/**
 * What shard `index` of run `runId` is told: where to send requests (upstream `index` mod their number),
 * its slots, retries and timeouts. `redis`: a distributed worker's, where the servers' own budgets are kept
 * for every worker of the run.
 */
export function shardConfig(
  o: ResolvedRunOptions,
  runId: string,
  out: string,
  index: number,
  replaces?: number,
  redis?: string,
): ShardConfig {
  const upstreamIndex = index % o.upstreams.length;
  const upstream = o.upstreams[upstreamIndex]!;
  const u = new URL(upstream.url);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'user-agent': `shardline/${VERSION}`,
  };
  if (upstream.apiKey) headers.authorization = `Bearer ${upstream.apiKey}`;
  for (const h of upstream.headers) {
    const i = h.indexOf(':');
    headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
  }
  return {
    shard: index,
    runId,
    eventsPath: join(out, 'events', `shard-${String(index).padStart(3, '0')}.jsonl`),
    origin: u.origin,
    upstream: {
      index: upstreamIndex,
      of: o.upstreams.length,
      url: redactUrl(upstream.url),
      ...upstreamBudget(
        upstream,
        o.shards,
        upstreamIndex,
        o.upstreams.length,
        redis === undefined ? undefined : { redis, key: `shardline:run:${runId}:budget:upstream:${upstreamIndex}` },
      ),
    },
    path: `${chatPath(u)}${u.search}`,
    basePath: u.pathname.replace(/\/$/, ''),
    search: u.search,
    headers,
    concurrency: o.slots.max,
    adaptive: o.slots.adaptive,
    prefetch: o.prefetchItems,
    maxAttempts: o.maxAttempts,
    endpointDownMaxMs: o.endpointDownMaxS * 1000,
    backoffBaseMs: o.retryBackoffS * 1000,
    backoffCapMs: o.retryBackoffMaxS * 1000,
    retryAfterMaxMs: o.retryAfterMaxS * 1000,
    retryBudget: o.retryBudget,
    retryBudgetWindowMs: o.retryBudgetWindowS * 1000,
    retryBudgetMinRetries: o.retryBudgetMinRetries,
    retryMode: o.retryMode,
    keepAlive: o.keepAlive,
    transport: o.transport,
    reportQuota: o.rpm !== undefined || o.tpm !== undefined,
    timeoutConnectMs: o.timeoutConnectS * 1000,
    timeoutTtftMs: o.timeoutTtftS * 1000,
    timeoutIdleMs: o.timeoutIdleS * 1000,
    timeoutTotalMs: o.timeoutTotalS * 1000,
    seed: o.seed ?? -1,
    postprocess: o.postprocess ? resolve(o.postprocess) : undefined,
    gaugeIntervalMs: o.gaugeIntervalMs,
    ...(replaces !== undefined ? { replaces } : {}),
  };
}

/**
 * A server's own budgets: split evenly over the shards that send to it (shard i serves i mod n), or, in a
 * distributed run (`shared`: where in Redis), whole, one bucket every worker's shards take from.
 */
function upstreamBudget(
  u: { rpm?: number; tpm?: number },
  shards: number,
  index: number,
  n: number,
  shared: { redis: string; key: string } | undefined,
): { budget?: NonNullable<ShardConfig['upstream']['budget']> } {
  if (u.rpm === undefined && u.tpm === undefined) return {};
  const serving = shared ? 1 : Math.max(1, Math.floor((shards - 1 - index) / n) + 1);
  return {
    budget: {
      ...(u.rpm !== undefined ? { rpm: u.rpm / serving } : {}),
      ...(u.tpm !== undefined ? { tpm: u.tpm / serving } : {}),
      ...(shared ? { shared } : {}),
    },
  };
}
