import { spawn, type ChildProcess } from 'node:child_process';
import type { ResolvedRunOptions, Upstream } from '../../config/resolved-run-options.js';
import type { Clock } from '../../util/clock.js';
import { IdInterner } from '../../events/id-interner.js';
import type { RequestSpec } from '../../input/request-line.js';
import { distFile } from '../../util/dist-file.js';
import { JsonlWorkSource } from '../jsonl-work-source.js';
import { redactUrl } from '../../util/redact-url.js';
import type { ResultSink } from '../output/result-sink.js';
import { misconfiguredHalt, newRunTotals, tallyDone, type RunTotals } from '../run-totals.js';
import { ChunkQueue, chunkJobId, CHUNK_PROTOCOL } from './chunk-queue.js';
import { toColumns, type RequestColumns } from './request-columns.js';
import { BLOCK_SIZE, ChunkSizer, MAX_CHUNK_BLOCKS } from './chunk-sizer.js';
import { DistributedMetrics } from './distributed-metrics.js';
import { redactRedisUrl } from '../../config/redis-url.js';
import { waitForRedis } from './redis-check.js';
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

/**
 * Chunks (of the size being cut) enqueued ahead of the results: enough to keep every worker busy, bounded so Redis
 * holds a window of the input, not all of it.
 */
const CHUNKS_AHEAD = 32;
/** How often the results stream is trimmed behind what results.jsonl holds. */
const TRIM_EVERY_MS = 250;
const PROGRESS_EVERY_MS = 10_000;

/**
 * The coordinator of a distributed run, with the face of `Coordinator`: `run()`, `interrupt()`,
 * `stopFor(err)`. It reads the input, enqueues it in chunks for `shardline worker` processes on any
 * machine, and drains the results they send into `results.jsonl`, keeping the first result per
 * custom_id (a chunk run again after its worker died sends some twice). Chunks are numbered by input
 * order, so a coordinator started again after a crash adds the same jobs, which BullMQ ignores when they
 * exist; results not yet in `results.jsonl` are still in the stream, which is trimmed only behind what
 * was written.
 */
export class DistributedCoordinator {
  readonly totals: RunTotals = newRunTotals();
  private readonly o: ResolvedRunOptions & { redis: string };
  private readonly log: (line: string) => void;
  /** Requests enqueued, and chunks. */
  private expected = 0;
  private chunks = 0;
  /** Blocks of the input cut into chunks so far: the next chunk's first block. */
  private blocks = 0;
  /** The first block of every chunk of the run in Redis, this coordinator's or a former one's. */
  private readonly starts: number[] = [];
  private inputDone = false;
  /** Ids whose result is in results.jsonl. */
  private readonly written = new IdInterner(1 << 16);
  private readonly metrics: DistributedMetrics;
  private channel: RunChannel | undefined;
  private queue: ChunkQueue<RequestColumns> | undefined;
  /** Wakes the producer waiting for room ahead of the results. */
  private wake: (() => void) | undefined;
  /** Why the run stopped itself (--fail-fast), once it has. */
  private halt: string | undefined;
  /** A file of the run could not be written: stop, leaving the run in Redis for a resume. */
  private failure: Error | undefined;
  private interrupted = false;

  constructor(private readonly d: DistributedRunDeps) {
    this.o = d.options;
    this.log = d.log ?? ((line: string) => process.stderr.write(`shardline: ${line}\n`));
    this.metrics = new DistributedMetrics({ backlog: () => this.expected - this.written.size }, d.clock, d.clock());
    if (d.signal?.aborted) this.interrupted = true;
    d.signal?.addEventListener('abort', () => this.interrupt(), { once: true });
  }

  /** Stop taking results and enqueuing chunks; what workers finish meanwhile stays in Redis for a resume. */
  interrupt(): void {
    this.interrupted = true;
    this.wake?.();
  }

  /** Stop the run as failed with `err` (results.jsonl cannot be written, say). */
  stopFor(err: Error): void {
    this.failure ??= err;
    this.wake?.();
  }

  private stopped(): boolean {
    return this.interrupted || this.halt !== undefined || this.failure !== undefined;
  }

  /** Run to the end (or interruption); resolves with how it ended and the totals. */
  async run(): Promise<DistributedRunResult> {
    const o = this.o;
    await waitForRedis(o.redis, { waitS: o.redisWaitS, log: (line) => this.log(line) });
    if (o.metricsPort !== undefined) this.d.onMetrics?.(await this.metrics.serve(o.metricsHost, o.metricsPort));
    const channel = (this.channel = new RunChannel(o.redis));
    this.queue = new ChunkQueue<RequestColumns>(o.redis);
    await channel.publish({ runId: this.d.runId, options: publishedOptions(o) });
    const workers = startLocalWorkers(o, this.d.out);
    const redis = redactRedisUrl(o.redis);
    this.log(
      `distributed run ${this.d.runId} on ${redis}: chunks of ${BLOCK_SIZE}–${BLOCK_SIZE * MAX_CHUNK_BLOCKS} ` +
        `requests; ` +
        `start workers with: shardline worker --redis ${redis} --out ${this.d.out}`,
    );
    const result = (status: DistributedRunResult['status'], error?: Error): DistributedRunResult => ({
      status,
      totals: this.totals,
      ttftP95Ms: this.metrics.ttftP95(),
      ...(error ? { error } : {}),
    });
    try {
      await Promise.all([this.produce(), this.collect()]);
      if (this.failure) return result('failed', this.failure);
      if (this.interrupted) return result('interrupted');
      await this.finishInRedis();
      return this.halt !== undefined ? result('failed', new Error(this.halt)) : result('finished');
    } catch (err) {
      return result('failed', err as Error);
    } finally {
      await stopWorkers(workers);
      await this.metrics.close();
      await this.queue.close();
      await channel.close();
    }
  }

  /**
   * Read the input into chunks, staying at most CHUNKS_AHEAD chunks ahead of the results. A run
   * started again (a coordinator killed and run again) cuts one block a chunk and keeps every chunk a
   * former coordinator left, whatever its size: a larger chunk of its own would overlap one of those and
   * run requests twice.
   */
  private async produce(): Promise<void> {
    const source = new JsonlWorkSource(this.o.input, this.o.model, this.o.bareEndpoint);
    const sizer = new ChunkSizer(this.d.clock);
    const queue = this.queue!;
    const resumed = this.d.doneIds.size > 0 || (await queue.blocksAt(this.d.runId, 0)) !== undefined;
    let buf: RequestSpec[] = [];
    let blocks = 1;
    let left = false;
    /** Whether the chunk being filled has its size yet (decided once, at its first line). */
    let sized = false;
    try {
      for (;;) {
        while (!this.stopped() && this.expected - this.written.size >= CHUNKS_AHEAD * blocks * BLOCK_SIZE)
          await new Promise<void>((r) => (this.wake = r));
        if (this.stopped()) return;
        if (!sized) {
          const former = resumed ? await queue.chunkAt(this.d.runId, this.blocks) : undefined;
          // A chunk a worker finished holds nothing to run (what it ran is in results.jsonl or the
          // stream), unless --retry-failed set some of its results aside: cut again on its blocks.
          if (former?.finished) await queue.queue.remove(chunkJobId(this.d.runId, this.blocks));
          left = former !== undefined && !former.finished;
          blocks = former?.blocks ?? (resumed ? 1 : sizer.blocks(this.written.size));
          sized = true;
        }
        const next = await source.next();
        if (next === null) break;
        if ('reason' in next) {
          this.totals.rejected++;
          this.d.sink.writeReject(next);
          continue;
        }
        this.totals.requests++;
        buf.push(next);
        if (buf.length === blocks * BLOCK_SIZE) {
          await this.enqueueChunk(buf, blocks, left);
          buf = [];
          sized = false;
        }
      }
      if (buf.length > 0) await this.enqueueChunk(buf, blocks, left);
      this.inputDone = true;
    } finally {
      await source.close();
    }
  }

  /** Enqueue a chunk of `blocks` blocks (unless a former coordinator `left` it), less what is done. */
  private async enqueueChunk(buf: RequestSpec[], blocks: number, left: boolean): Promise<void> {
    const items = buf.filter((s) => !this.d.doneIds.has(s.id));
    this.totals.skipped += buf.length - items.length;
    const index = this.blocks;
    if (items.length > 0 && !left)
      await this.queue!.add([
        { runId: this.d.runId, index, blocks, protocol: CHUNK_PROTOCOL, items: toColumns(items) },
      ]);
    if (items.length > 0 || left) this.starts.push(index);
    this.expected += items.length;
    this.blocks += blocks;
    this.chunks++;
  }

  /** Drain the results stream into results.jsonl, the first result per id, until every request has one. */
  private async collect(): Promise<void> {
    const channel = this.channel!;
    let after = '0';
    let lastProgressMs = this.d.clock();
    let lastCount = -1;
    let lastTrimMs = 0;
    while (!this.stopped() && !(this.inputDone && this.written.size >= this.expected)) {
      const batch = await channel.readResults(this.d.runId, after, 500);
      for (const r of batch) this.keepResult(r.id, r.line, r.facts);
      if (batch.length > 0) {
        // Written to the file before the stream forgets them: a crash here reads them again.
        this.d.sink.flush();
        // A write that failed must not be trimmed away: a resume reads those results again.
        if (this.failure) return;
        after = batch[batch.length - 1]!.streamId;
        // Trimmed a few times a second, not after every read: the stream only has to stay bounded,
        // and an XTRIM a read was ~1 µs a request of the coordinator's CPU (bench/distributed.mjs).
        if (this.d.clock() - lastTrimMs >= TRIM_EVERY_MS) {
          await channel.trimResults(this.d.runId, after);
          lastTrimMs = this.d.clock();
        }
        this.wake?.();
      }
      const now = this.d.clock();
      if (now - lastProgressMs >= PROGRESS_EVERY_MS) {
        lastProgressMs = now;
        this.logProgress(this.written.size === lastCount);
        lastCount = this.written.size;
      }
    }
  }

  private keepResult(id: string, line: Buffer, sent: Parameters<typeof tallyDone>[1] | undefined): void {
    if (this.d.doneIds.has(id)) return;
    const before = this.written.size;
    this.written.internString(id);
    if (this.written.size === before) return;
    this.d.sink.writeResult(id, line);
    // The line is read only when its batch came without facts.
    const facts = sent ?? factsFromLine(line.toString());
    if (!facts) return;
    tallyDone(this.totals, facts);
    // A retry is an attempt past a request's first (the worker that scheduled it may be gone).
    this.totals.retries += facts.attempts - 1;
    this.metrics.record(facts, this.d.clock());
    this.halt ??= misconfiguredHalt(this.totals, this.o.failFast);
  }

  private logProgress(stalled: boolean): void {
    const n = (x: number) => x.toLocaleString('en-US');
    if (stalled && this.written.size < this.expected)
      this.log(
        `no results for ${PROGRESS_EVERY_MS / 1000} s: is a \`shardline worker --redis …\` running and able to ` +
          `reach the endpoint?`,
      );
    else
      this.log(
        `distributed: ${n(this.written.size)} of ${n(this.expected)}${this.inputDone ? '' : '+'} results, ` +
          `${this.chunks} chunks enqueued`,
      );
  }

  /**
   * Finished, or stopped by --fail-fast: workers stop taking chunks, and the run's chunks go, so a
   * later --retry-failed enqueues its requests afresh. Nothing of this run stays in Redis.
   */
  private async finishInRedis(): Promise<void> {
    await this.channel!.finish(this.d.runId);
    // A worker completes its last chunk just after sending its last results: removal waits it out.
    const left = await this.queue!.removeChunks(this.d.runId, this.starts);
    if (left > 0) this.log(`${left} chunk(s) of run ${this.d.runId} were still held by a worker and stay in Redis`);
  }
}

/**
 * The options workers take from Redis: all but what is per machine or secret (`localOnly` in the option
 * table), and the endpoint only when it carries no credentials (user:pass@, a key in the query).
 */
function publishedOptions(o: ResolvedRunOptions): Record<string, unknown> {
  const published = Object.fromEntries(Object.entries(o).filter(([k]) => !LOCAL_ONLY_OPTIONS.includes(k)));
  // An endpoint with its own headers, or a URL with credentials in it, stays here (so does its key).
  const secret = (u: Upstream, i: number) =>
    redactUrl(u.url) !== new URL(u.url).toString() || u.headers.length > o.headers.length || usesKeyEnv(o, i);
  if (o.upstreams.some(secret)) delete published.endpoint;
  return published;
}

function usesKeyEnv(o: ResolvedRunOptions, i: number): boolean {
  const e = Array.isArray(o.endpoint) ? o.endpoint[i] : undefined;
  return typeof e === 'object' && e.apiKeyEnv !== undefined;
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
          // A --once worker exits by itself once it sees the run finished; this covers an interrupted run.
          const term = setTimeout(() => w.exitCode === null && w.kill('SIGTERM'), 2_000);
          w.once('exit', () => {
            // Both cleared: a pending timer kept the finished command alive up to 2 s after its summary.
            clearTimeout(kill);
            clearTimeout(term);
            resolve();
          });
        }),
    ),
  );
}
