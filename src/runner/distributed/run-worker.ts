import type { RunOptions } from '../../config/run-options.js';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ConfigError, RedisError } from '../../errors.js';
import { parseRunOptions } from '../../config/resolved-run-options.js';
import { monotonicEpochMs } from '../../util/clock.js';
import { EventWriter } from '../../events/event-writer.js';
import { ensureDir } from '../../util/ensure-dir.js';
import { VERSION } from '../../version.js';
import { Coordinator } from '../coordinator.js';
import { shardConfig } from '../shard/shard-config.js';
import { CHUNK_PROTOCOL } from './chunk-queue.js';
import { DirectShard } from './direct-shard.js';
import { GlobalLease } from './global-lease.js';
import { redactRedisUrl } from '../../config/redis-url.js';
import { waitForRedis } from './redis-check.js';
import { SharedBudget } from './shared-budget.js';
import { RedisWorkSource } from './redis-work-source.js';
import { RunChannel, type PublishedRun } from './run-channel.js';

/** What serves a run's chunks on this worker: a coordinator over its shards, or its one shard directly. */
type WorkerEngine = Pick<Coordinator, 'live' | 'totals' | 'run' | 'interrupt' | 'demand' | 'kick'>;

/** `shardline worker` options: what this machine decides; the rest comes from the run's coordinator. */
export interface WorkerOptions {
  redis: string;
  /** Where this worker's event files go: the run directory on a shared volume, or a local one to gather later. */
  out: string;
  /** Shard processes on this machine. @default 1 */
  shards?: number | undefined;
  /** Per shard; the run's when absent. */
  concurrency?: number | string | undefined;
  /** This machine's endpoint(s), as `run`'s `endpoint` takes them; the run's when absent (a worker may reach the
   *  same server by another address). */
  endpoint?: RunOptions['endpoint'] | undefined;
  transport?: 'undici' | 'raw' | undefined;
  apiKey?: string | undefined;
  headers?: string[] | undefined;
  /** Serve this worker's Prometheus /metrics on 127.0.0.1 during each run (0 picks a port). */
  metricsPort?: number | undefined;
  /** At start, how long to keep trying a Redis that cannot be reached. @default 30 */
  redisWaitS?: number | undefined;
  /** Serve one run, then exit. @default false: serve runs until stopped */
  once?: boolean | undefined;
  /** Chunk lock (ms): a worker silent this long loses its chunk to another. @default 10000 */
  lockDurationMs?: number | undefined;
  stalledIntervalMs?: number | undefined;
  log?: (line: string) => void;
}

/**
 * Serve distributed runs: wait for the coordinator's current run, check it speaks this build's
 * chunk protocol, then run its chunks — with one shard directly (DirectShard), with several behind a
 * local coordinator as `run` does — numbering the shards run-wide through Redis so every machine's
 * event files merge into one report.
 */
export async function runWorker(o: WorkerOptions, signal?: AbortSignal): Promise<{ runs: number }> {
  const log = o.log ?? ((line: string) => process.stderr.write(`shardline: ${line}\n`));
  await waitForRedis(o.redis, { waitS: o.redisWaitS ?? 30, log });
  const channel = new RunChannel(o.redis);
  let runs = 0;
  try {
    while (!signal?.aborted) {
      const run = await waitForRun(channel, signal, () =>
        log(`worker waiting for a run on ${redactRedisUrl(o.redis)}`),
      );
      if (!run) break;
      checkCompatible(run);
      await serveRun(o, run, channel, signal, log);
      runs++;
      if (o.once) break;
    }
  } finally {
    await channel.close();
  }
  return { runs };
}

async function waitForRun(
  channel: RunChannel,
  signal: AbortSignal | undefined,
  onWait: () => void,
): Promise<PublishedRun | undefined> {
  let said = false;
  while (!signal?.aborted) {
    const run = await channel.current();
    if (run) return run;
    if (!said) onWait();
    said = true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return undefined;
}

function checkCompatible(run: PublishedRun): void {
  if (run.protocol !== CHUNK_PROTOCOL) {
    throw new RedisError(
      `Run ${run.runId} comes from shardline ${run.version} (chunk protocol ${run.protocol}); this worker is ` +
        `shardline ${VERSION} (protocol ${CHUNK_PROTOCOL}). Run the same shardline version on the coordinator and ` +
        `every worker.`,
    );
  }
}

async function serveRun(
  o: WorkerOptions,
  run: PublishedRun,
  channel: RunChannel,
  signal: AbortSignal | undefined,
  log: (line: string) => void,
): Promise<void> {
  if (run.options.endpoint === undefined && o.endpoint === undefined) {
    throw new ConfigError(
      `Run ${run.runId}'s endpoint carries credentials or headers, which are not sent through Redis: give this ` +
        `worker \`--endpoint\``,
    );
  }
  const options = parseRunOptions({
    ...run.options,
    input: 'redis',
    out: o.out,
    ...(o.endpoint !== undefined ? { endpoint: o.endpoint } : {}),
    ...(o.concurrency !== undefined ? { concurrency: o.concurrency } : {}),
    ...(o.transport !== undefined ? { transport: o.transport } : {}),
    shards: o.shards ?? 1,
    apiKey: o.apiKey,
    headers: o.headers ?? [],
    progress: 'off',
    // --fail-fast is judged run-wide by the coordinator: a worker stopping alone would only hand
    // its chunks to the next worker, and a --once worker would leave the run waiting.
    failFast: 0,
  });
  const firstShard = await channel.allocShards(run.runId, options.shards);
  ensureDir(join(o.out, 'events'));
  const clock = monotonicEpochMs;
  // run_start and run_end are the run coordinator's: one run, one pair, whatever the worker count.
  const events = new EventWriter({
    path: join(o.out, 'events', `worker-${String(firstShard).padStart(3, '0')}.jsonl`),
    run: run.runId,
    shard: -1,
    now: clock,
  });
  const source = new RedisWorkSource(o.redis, run.runId, channel, {
    lockDurationMs: o.lockDurationMs,
    stalledIntervalMs: o.stalledIntervalMs,
  });
  const slots = options.slots.max * options.shards;
  let lease: GlobalLease | undefined;
  // --rpm/--tpm: one budget for every worker of the run, kept in Redis.
  const budget =
    options.rpm !== undefined || options.tpm !== undefined
      ? new SharedBudget(channel.redis, `shardline:run:${run.runId}:budget`, { rpm: options.rpm, tpm: options.tpm })
      : undefined;
  const assignedCap = options.globalConcurrency !== undefined ? () => lease?.lease ?? 0 : undefined;
  // The servers' own budgets (rpm/tpm on an endpoint entry) are kept in Redis for every worker's shards.
  const configOf = (index: number, replaces?: number) =>
    shardConfig(options, run.runId, o.out, index, replaces, o.redis);
  // One shard: it takes the chunks' requests itself (see DirectShard). Several keep a process each
  // behind a coordinator that shares the chunks among them, as `run` does.
  const engine: WorkerEngine =
    options.shards === 1
      ? new DirectShard({
          options,
          config: configOf(firstShard),
          source,
          events,
          clock,
          ...(budget ? { budget } : {}),
          ...(assignedCap ? { assignedCap } : {}),
        })
      : new Coordinator({
          options,
          source,
          sink: source,
          events,
          doneIds: new Set(),
          clock,
          firstShard,
          shardConfig: configOf,
          ...(budget ? { budget } : {}),
          ...(assignedCap ? { assignedCap } : {}),
        });
  if (options.globalConcurrency !== undefined) {
    lease = new GlobalLease(
      channel.redis,
      run.runId,
      `${hostname()}:${process.pid}:${firstShard}`,
      options.globalConcurrency,
      () => Math.min(slots, engine.demand()),
      () => engine.kick(),
    );
    await lease.start();
  }
  if (o.metricsPort !== undefined) log(`worker metrics on ${await engine.live.serve('127.0.0.1', o.metricsPort)}`);
  const onAbort = () => engine.interrupt();
  signal?.addEventListener('abort', onAbort, { once: true });
  log(
    `worker serving run ${run.runId} with shards ${firstShard}–${firstShard + options.shards - 1} (${hostname()}, ` +
      `pid ${process.pid})`,
  );
  try {
    const { status } = await engine.run();
    const t = engine.totals;
    log(`worker ${status} with run ${run.runId}: ${t.succeeded} succeeded, ${t.failed} failed here`);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await lease?.stop();
    await engine.live.close();
    await source.close();
    events.close();
  }
}
