import { spawn, type ChildProcess } from 'node:child_process';
import type { ResolvedRunOptions } from '../../config/resolved-run-options.js';
import type { Clock } from '../../util/clock.js';
import { IdInterner } from '../../events/id-interner.js';
import type { RequestSpec } from '../../input/request-line.js';
import { distFile } from '../../util/dist-file.js';
import { JsonlWorkSource } from '../jsonl-work-source.js';
import { redactUrl } from '../../util/redact-url.js';
import type { ResultSink } from '../output/result-sink.js';
import { misconfiguredHalt, newRunTotals, tallyDone, type RunTotals } from '../run-totals.js';
import { ChunkQueue, chunkJobId, CHUNK_PROTOCOL, DEFAULT_CHUNK_SIZE } from './chunk-queue.js';
import { DistributedMetrics } from './distributed-metrics.js';
import { redactRedisUrl } from '../../config/redis-url.js';
import { checkRedis } from './redis-check.js';
import { factsFromLine } from './result-facts.js';
import { LOCAL_ONLY_OPTIONS, RunChannel } from './run-channel.js';

export interface DistributedRunDeps {
  options: ResolvedRunOptions & { redis: string };
  runId: string;
  out: string;
  sink: ResultSink;
  /** Requests with a result in `out` already (a resumed run): not sent again. */
  doneIds: Set<string>;
  clock: Clock;
  signal?: AbortSignal | undefined;
  log?: (line: string) => void;
  /** Called with the URL once `/metrics` is served (`--metrics-port`). */
  onMetrics?: (url: string) => void;
}

export interface DistributedRunResult {
  status: 'finished' | 'interrupted' | 'failed';
  /** Counted from the results kept (one per custom_id), with the facts workers sent beside them. */
  totals: RunTotals;
  /** p95 of the latest successes' server TTFT, as a local run's summary gives it. */
  ttftP95Ms: number | undefined;
  error?: Error;
}

/** Chunks enqueued ahead of the results: enough to keep every worker busy, bounded so Redis holds a window of the input, not all of it. */
const CHUNKS_AHEAD = 32;
/** How often the results stream is trimmed behind what results.jsonl holds. */
const TRIM_EVERY_MS = 250;
const PROGRESS_EVERY_MS = 10_000;

/**
 * The coordinator of a distributed run: reads the input, enqueues it in chunks for
 * `shardline worker` processes on any machine, and drains the results they send into
 * `results.jsonl`, keeping the first result per custom_id (a chunk run again after its worker died
 * sends some twice). Chunks are numbered by input order, so a coordinator started again after a
 * crash adds the same jobs, which BullMQ ignores when they exist; results not yet in `results.jsonl`
 * are still in the stream, which is trimmed only behind what was written.
 */
export async function runDistributed(d: DistributedRunDeps): Promise<DistributedRunResult> {
  const o = d.options;
  const log = d.log ?? ((line: string) => process.stderr.write(`shardline: ${line}\n`));
  await checkRedis(o.redis);
  let expected = 0;
  let chunks = 0;
  let inputDone = false;
  const written = new IdInterner(1 << 16);
  const metrics = new DistributedMetrics({ backlog: () => expected - written.size }, d.clock, d.clock());
  if (o.metricsPort !== undefined) d.onMetrics?.(await metrics.serve(o.metricsHost, o.metricsPort));
  const channel = new RunChannel(o.redis);
  const queue = new ChunkQueue<RequestSpec>(o.redis);
  const totals = newRunTotals();
  const published = Object.fromEntries(
    Object.entries(o).filter(([k]) => !(LOCAL_ONLY_OPTIONS as readonly string[]).includes(k)),
  );
  // An endpoint with credentials in it (user:pass@, a key in the query) stays on this machine too.
  if (redactUrl(o.endpoint) !== new URL(o.endpoint).toString()) delete published.endpoint;
  await channel.publish({ runId: d.runId, options: published });
  const workers = startLocalWorkers(o, d.out);
  log(
    `distributed run ${d.runId} on ${redactRedisUrl(o.redis)}: chunks of ${DEFAULT_CHUNK_SIZE}; start workers with: shardline worker --redis ${redactRedisUrl(o.redis)} --out ${d.out}`,
  );

  let progress: (() => void) | undefined;
  /** Why the run stopped itself (--fail-fast), once it has. */
  let halt: string | undefined;
  const stopped = () => d.signal?.aborted === true || halt !== undefined;
  d.signal?.addEventListener('abort', () => progress?.(), { once: true });

  const produce = async () => {
    const source = new JsonlWorkSource(o.input, o.model);
    let buf: RequestSpec[] = [];
    const flush = async () => {
      const items = buf.filter((s) => !d.doneIds.has(s.id));
      totals.skipped += buf.length - items.length;
      if (items.length > 0) await queue.add([{ runId: d.runId, index: chunks, protocol: CHUNK_PROTOCOL, items }]);
      expected += items.length;
      chunks++;
      buf = [];
    };
    try {
      for (;;) {
        while (!stopped() && expected - written.size >= CHUNKS_AHEAD * DEFAULT_CHUNK_SIZE)
          await new Promise<void>((r) => (progress = r));
        if (stopped()) return;
        const next = await source.next();
        if (next === null) break;
        if ('reason' in next) {
          totals.rejected++;
          d.sink.writeReject(next);
          continue;
        }
        totals.requests++;
        buf.push(next);
        if (buf.length === DEFAULT_CHUNK_SIZE) await flush();
      }
      if (buf.length > 0) await flush();
      inputDone = true;
    } finally {
      await source.close();
    }
  };

  const collect = async () => {
    let after = '0';
    let lastProgressMs = d.clock();
    let lastCount = -1;
    let lastTrimMs = 0;
    while (!stopped() && !(inputDone && written.size >= expected)) {
      const batch = await channel.readResults(d.runId, after, 500);
      for (const r of batch) {
        if (d.doneIds.has(r.id)) continue;
        const before = written.size;
        written.internString(r.id);
        if (written.size === before) continue;
        d.sink.writeResult(r.id, r.line);
        const facts = r.facts ?? factsFromLine(r.line);
        if (!facts) continue;
        tallyDone(totals, facts);
        // A retry is an attempt past a request's first (the worker that scheduled it may be gone).
        totals.retries += facts.attempts - 1;
        metrics.record(facts, d.clock());
        halt ??= misconfiguredHalt(totals, o.failFast);
      }
      if (batch.length > 0) {
        // Written to the file before the stream forgets them: a crash here reads them again.
        d.sink.flush();
        after = batch[batch.length - 1]!.streamId;
        // Trimmed a few times a second, not after every read: the stream only has to stay bounded,
        // and an XTRIM a read was ~1 µs a request of the coordinator's CPU (bench/distributed.mjs).
        if (d.clock() - lastTrimMs >= TRIM_EVERY_MS) {
          await channel.trimResults(d.runId, after);
          lastTrimMs = d.clock();
        }
        progress?.();
      }
      const now = d.clock();
      if (now - lastProgressMs >= PROGRESS_EVERY_MS) {
        lastProgressMs = now;
        if (written.size === lastCount && written.size < expected)
          log(
            `no results for ${PROGRESS_EVERY_MS / 1000} s: is a \`shardline worker --redis …\` running and able to reach the endpoint?`,
          );
        else
          log(
            `distributed: ${written.size.toLocaleString('en-US')} of ${inputDone ? expected.toLocaleString('en-US') : `${expected.toLocaleString('en-US')}+`} results, ${chunks} chunks enqueued`,
          );
        lastCount = written.size;
      }
    }
  };

  try {
    await Promise.all([produce(), collect()]);
    const ttftP95Ms = metrics.ttftP95();
    if (d.signal?.aborted === true) return { status: 'interrupted', totals, ttftP95Ms };
    // Finished, or stopped by --fail-fast: workers stop taking chunks, and the run's chunks go, so
    // a later --retry-failed enqueues its requests afresh. Nothing of this run stays in Redis.
    await channel.finish(d.runId);
    for (let i = 0; i < chunks; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, chunks - i) }, (_, k) =>
          queue.queue.remove(chunkJobId(d.runId, i + k)).catch(() => 0),
        ),
      );
    }
    if (halt !== undefined) {
      return { status: 'failed', totals, ttftP95Ms, error: new Error(halt) };
    }
    return { status: 'finished', totals, ttftP95Ms };
  } catch (err) {
    return { status: 'failed', totals, ttftP95Ms: metrics.ttftP95(), error: err as Error };
  } finally {
    await stopWorkers(workers);
    await metrics.close();
    await queue.close();
    await channel.close();
  }
}

/** `--local-workers N`: workers on this machine, serving this run only, writing into its directory. */
function startLocalWorkers(o: ResolvedRunOptions & { redis: string }, out: string): ChildProcess[] {
  return Array.from({ length: o.localWorkers }, () =>
    spawn(process.execPath, [distFile('cli/main.js'), 'worker', '--redis', o.redis, '--out', out, '--once'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    }),
  );
}

async function stopWorkers(workers: ChildProcess[]): Promise<void> {
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.exitCode !== null || w.signalCode !== null) return resolve();
          const kill = setTimeout(() => w.kill('SIGKILL'), 10_000);
          w.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          // A --once worker exits by itself once it sees the run finished; this covers an interrupted run.
          setTimeout(() => w.exitCode === null && w.kill('SIGTERM'), 2_000);
        }),
    ),
  );
}
