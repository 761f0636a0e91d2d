import { join, resolve } from 'node:path';
import { slotBounds, type RunOptions } from '../config/run-options.js';
import { VERSION } from '../version.js';
import type { ShardConfig } from './ipc-messages.js';

/** Default prefetch ceiling (see shardConfig). */
const MAX_DEFAULT_PREFETCH = 1024;

/** The path requests go to under the API base URL (`<endpoint>/chat/completions`), without query. */
export function chatPath(u: URL): string {
  return `${u.pathname.replace(/\/$/, '')}/chat/completions`;
}

/** What shard `index` of run `runId` is told: where to send requests, its slots, retries and timeouts. */
export function shardConfig(o: RunOptions, runId: string, out: string, index: number, replaces?: number): ShardConfig {
  const u = new URL(o.endpoint);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'user-agent': `shardline/${VERSION}`,
  };
  if (o.apiKey) headers.authorization = `Bearer ${o.apiKey}`;
  for (const h of o.headers) {
    const i = h.indexOf(':');
    headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
  }
  const slots = slotBounds(o.concurrency);
  return {
    shard: index,
    runId,
    eventsPath: join(out, 'events', `shard-${String(index).padStart(3, '0')}.jsonl`),
    origin: u.origin,
    path: `${chatPath(u)}${u.search}`,
    headers,
    concurrency: slots.max,
    adaptive: slots.adaptive,
    // One per slot by default: with concurrency/8, a shard answering fast (or sharing busy cores)
    // emptied its prefetch between IPC round trips and left up to ~30% of its slots idle with work waiting
    // (BENCHMARKS.md, "Prefetch"); unstarted items are handed back when another shard runs dry.
    // Capped: 1,024 covers 100,000 starts/s over a 10 ms round trip, and an unbounded run
    // (concurrency 100,000) should not ship its whole input to a shard in one message.
    prefetch: o.prefetch ?? Math.min(slots.max, MAX_DEFAULT_PREFETCH),
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
