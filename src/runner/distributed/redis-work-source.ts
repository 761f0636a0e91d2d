import type { Job, Worker } from 'bullmq';
import type { RejectedLine, RequestSpec } from '../../input/request-line.js';
import { Deque } from '../../util/deque.js';
import type { DoneItem } from '../ipc-messages.js';
import type { ResultLine, ResultSink } from '../output/result-sink.js';
import type { WorkSource } from '../work-source.js';
import { putBack, startChunkWorker, type Chunk } from './chunk-queue.js';
import { specAt, type RequestColumns } from './request-columns.js';
import { ResultBatch } from './result-batch.js';
import type { RunChannel } from './run-channel.js';

interface OpenChunk {
  /** Results not yet in Redis. */
  left: number;
  /** Results not yet written here (the outbox): at 0 the chunk's last ones go at once. */
  unwritten: number;
  done: () => void;
}

/** Chunks a worker process holds at once: one running, one ready so its slots never wait on Redis. */
const CHUNKS_AT_ONCE = 2;
/**
 * Results wait at most this long (or for this many) before going to Redis in one round trip: each send
 * wakes Redis and the coordinator, so fewer, larger ones cost a worker per core less CPU per request
 * than one every 20 ms (bench/distributed.mjs --set per-core); 50 ms is nothing to a result's way.
 */
const SEND_EVERY_MS = 50;
const SEND_BATCH = 512;
/**
 * How often a worker asks whether its run is over (two GETs): the run's end waits on it, and a
 * `--local-workers` run's command on its workers' exit (500 ms made every such run ~0.3 s longer).
 */
const FINISH_POLL_MS = 200;
/** How long a chunk of a run other than the current one waits before a worker looks at it again. */
const FOREIGN_CHUNK_DELAY_MS = 60_000;

/**
 * A worker's side of a distributed run, behind the same interfaces as the JSONL ones: requests come
 * out of BullMQ chunks (`next()`), results go into the run's Redis stream (`writeResult`). A chunk's
 * job completes only once every one of its results is in Redis, so a worker killed before that loses
 * the chunk to another worker (BullMQ's stalled-job check) and no result is lost; a request run
 * twice that way sends two results, which the coordinator keeps one of (by custom_id).
 */
export class RedisWorkSource implements WorkSource, ResultSink {
  /** Chunks held, and how far each has been taken: each request is built as it is taken. */
  private readonly ready = new Deque<{ cols: RequestColumns; taken: number }>(4);
  private readonly chunkOf = new Map<string, OpenChunk>();
  /** Results not sent yet; `spare` holds batches sent, for reuse. */
  private outbox = new ResultBatch();
  private readonly spare: ResultBatch[] = [];
  private waiter: (() => void) | undefined;
  private finished = false;
  private sendTimer: NodeJS.Timeout | undefined;
  private sending: Promise<void> = Promise.resolve();
  private readonly worker: Worker<Chunk<RequestColumns>, number>;
  private readonly finishPoll: NodeJS.Timeout;

  constructor(
    redisUrl: string,
    private readonly runId: string,
    private readonly channel: RunChannel,
    { lockDurationMs, stalledIntervalMs }: { lockDurationMs?: number; stalledIntervalMs?: number } = {},
  ) {
    this.worker = startChunkWorker<RequestColumns, number>(
      redisUrl,
      (chunk, job, token) => this.hold(chunk, job, token),
      {
        concurrency: CHUNKS_AT_ONCE,
        ...(lockDurationMs !== undefined ? { lockDurationMs } : {}),
        ...(stalledIntervalMs !== undefined ? { stalledIntervalMs } : {}),
      },
    );
    this.finishPoll = setInterval(() => void this.checkRunOver(), FINISH_POLL_MS);
  }

  /** This run is over for this worker once it is finished or another run has been published. */
  private async checkRunOver(): Promise<boolean> {
    const over = (await this.channel.isFinished(this.runId)) || (await this.channel.currentRunId()) !== this.runId;
    if (over && !this.finished) {
      this.finished = true;
      // Requests of the run not started yet: nobody waits for them now (a run finished or stopped
      // by --fail-fast). Their chunk is not completed, so a resume would still run them.
      while (this.ready.length > 0) this.ready.shift();
      this.wake();
    }
    return over;
  }

  private async hold(chunk: Chunk<RequestColumns>, job: Job, token: string | undefined): Promise<number> {
    if (chunk.runId !== this.runId) {
      // One run at a time per Redis. A chunk of the run now current means this worker's run is over:
      // the chunk goes straight back for that run. A chunk of any other run (one abandoned, to be
      // resumed some day) goes back for a minute: never completed without its results.
      const stale = (await this.channel.currentRunId()) === chunk.runId;
      if (stale) await this.checkRunOver();
      return putBack(job, token, stale ? 0 : FOREIGN_CHUNK_DELAY_MS);
    }
    return new Promise((resolve) => {
      const cols = chunk.items;
      const n = cols.ids.length;
      const open: OpenChunk = { left: n, unwritten: n, done: () => resolve(n) };
      if (open.left === 0) return open.done();
      for (const id of cols.ids) this.chunkOf.set(id, open);
      this.ready.push({ cols, taken: 0 });
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /**
   * The next request if one is here now, without waiting: null once the run is over for this worker,
   * undefined when the chunks held are used up (`next()` waits for the next).
   */
  take(): RequestSpec | null | undefined {
    const held = this.ready.peek();
    if (held) {
      const spec = specAt(held.cols, held.taken++);
      if (held.taken === held.cols.ids.length) this.ready.shift();
      return spec;
    }
    return this.finished ? null : undefined;
  }

  async next(): Promise<RequestSpec | RejectedLine | null> {
    for (;;) {
      const spec = this.take();
      if (spec !== undefined) return spec;
      await new Promise<void>((r) => (this.waiter = r));
    }
  }

  async doneIds(): Promise<Set<string>> {
    return new Set();
  }

  writeResult(id: string, line: ResultLine, done?: DoneItem): void {
    this.outbox.add(id, line, done);
    const open = this.chunkOf.get(id);
    // A chunk's last result goes at once: BullMQ hands this worker its next chunk only once this one is
    // complete, and waiting out the batch timer there left a fast worker with nothing to run (a worker per
    // core at 74% of a local run's rate with 50 ms batches, bench/distributed.mjs --set per-core).
    if (this.outbox.size >= SEND_BATCH || (open !== undefined && --open.unwritten === 0)) this.send();
    else this.sendTimer ??= setTimeout(() => this.send(), SEND_EVERY_MS);
  }

  /** Send what is waiting, in order after earlier sends; then complete the chunks it finished. */
  private send(): void {
    clearTimeout(this.sendTimer);
    this.sendTimer = undefined;
    const batch = this.outbox;
    if (batch.size === 0) return;
    this.outbox = this.spare.pop() ?? new ResultBatch();
    this.sending = this.sending.then(async () => {
      await this.channel.sendBatch(this.runId, batch);
      for (const id of batch.ids) {
        const open = this.chunkOf.get(id);
        if (!open) continue;
        this.chunkOf.delete(id);
        if (--open.left === 0) open.done();
      }
      batch.clear();
      this.spare.push(batch);
    });
  }

  writeReject(_reject: RejectedLine): void {
    // The coordinator rejects malformed lines before they are chunked.
  }

  flush(): void {
    this.send();
  }

  async close(): Promise<void> {
    clearInterval(this.finishPoll);
    this.send();
    await this.sending;
    // Forced: chunks still open go back to the queue when their locks expire, for another worker.
    await this.worker.close(true);
  }
}
