import { DelayedError, Queue, Worker, type Job } from 'bullmq';
import { redactRedisUrl } from '../../config/redis-url.js';
import { BLOCK_SIZE } from './chunk-sizer.js';

/**
 * The distributed run's work unit: a chunk of input lines, not one job per request, so BullMQ's
 * per-job cost (a Lua script per state change, a lock renewed while it runs) stays off the
 * per-request path.
 */
export interface Chunk<T> {
  runId: string;
  /** The chunk's first block (BLOCK_SIZE requests of the input, numbered from 0); with the run id it names the job. */
  index: number;
  /** Blocks the chunk covers (its items are theirs, less any done before). @default 1 */
  blocks?: number;
  /** Bumped when the job data's shape changes: a worker refuses chunks of another protocol. */
  protocol: number;
  /** The chunk's requests (a distributed run's: `RequestColumns`). */
  items: T;
}

/**
 * The chunk and result format this build reads and writes. 2: results carry their facts (attempts,
 * prompt tokens, TTFT...) beside their lines, so a distributed run's summary counts what a local one does.
 * 3: requests carry their endpoint (embeddings, completions, …): a worker of 2 would send them all to chat.
 * 4: requests go as columns (`RequestColumns`), not an object each.
 */
export const CHUNK_PROTOCOL = 4;
/** The BullMQ queue every run's chunks go to (one queue per Redis; chunks carry their run id). */
export const QUEUE_NAME = 'shardline-chunks';

/** The job id of a chunk: the same chunk enqueued twice (a coordinator restarted) is one job. */
export function chunkJobId(runId: string, index: number): string {
  // BullMQ reserves ':' in ids (its key separator).
  return `${runId.replace(/:/g, '_')}.${index}`;
}

/** Split items into chunks of `size`, numbered from `firstIndex`. */
export function toChunks<T>(runId: string, items: readonly T[], size = BLOCK_SIZE, firstIndex = 0): Chunk<T[]>[] {
  const out: Chunk<T[]>[] = [];
  for (let i = 0; i < items.length; i += size)
    out.push({ runId, index: firstIndex + i / size, protocol: CHUNK_PROTOCOL, items: items.slice(i, i + size) });
  return out;
}

/** The BullMQ job options of a chunk (also bench/chunk-cost.mjs's, so it measures what runs). */
export function chunkJobOptions(c: Chunk<unknown>) {
  // Kept after completion so a re-add of a finished chunk stays a no-op; removed with the run.
  return { jobId: chunkJobId(c.runId, c.index), removeOnComplete: false, removeOnFail: false, attempts: 1 };
}

function connection(url: string): { url: string; maxRetriesPerRequest: null } {
  // BullMQ workers need maxRetriesPerRequest null (blocking commands must wait out a Redis restart).
  return { url, maxRetriesPerRequest: null };
}

/** The coordinator's side: enqueue chunks idempotently. */
export class ChunkQueue<T> {
  readonly queue: Queue<Chunk<T>>;

  constructor(redisUrl: string, { prefix = 'shardline' }: { prefix?: string } = {}) {
    this.queue = new Queue<Chunk<T>>(QUEUE_NAME, { connection: connection(redisUrl), prefix });
    this.queue.on('error', (err) =>
      process.stderr.write(`shardline: Redis at ${redactRedisUrl(redisUrl)}: ${err.message}\n`),
    );
  }

  /** Add chunks; one already there (same run and index) is left as it is, done or not. */
  async add(chunks: readonly Chunk<T>[]): Promise<void> {
    // One chunk (the coordinator adds them as it reads them) goes by `add`: `addBulk` wraps even one job
    // in MULTI/EXEC, ~250 µs more client CPU a chunk of 256 (~1 µs a request; 400–550 against 670–730
    // µs, BullMQ alone, the two alternated in one process).
    if (chunks.length === 1) {
      const c = chunks[0]!;
      await this.queue.add('chunk', c, chunkJobOptions(c));
      return;
    }
    await this.queue.addBulk(chunks.map((c) => ({ name: 'chunk', data: c, opts: chunkJobOptions(c) })));
  }

  /** The blocks of the run's chunk starting at block `index`, or undefined when no chunk starts there. */
  async blocksAt(runId: string, index: number): Promise<number | undefined> {
    return (await this.chunkAt(runId, index))?.blocks;
  }

  /** The run's chunk starting at block `index`: its blocks, and whether a worker finished it. */
  async chunkAt(runId: string, index: number): Promise<{ blocks: number; finished: boolean } | undefined> {
    const job = await this.queue.getJob(chunkJobId(runId, index));
    return job ? { blocks: job.data.blocks ?? 1, finished: job.finishedOn !== undefined } : undefined;
  }

  /**
   * Remove the run's chunks starting at these blocks. A chunk a worker still holds (its last results
   * just sent, its completion not yet in) is locked and cannot be removed: tried again for up to
   * `waitMs`. Resolves with how many are left.
   */
  async removeChunks(runId: string, starts: readonly number[], waitMs = 5000): Promise<number> {
    const deadline = Date.now() + waitMs;
    let left = [...starts];
    for (;;) {
      const still: number[] = [];
      for (let i = 0; i < left.length; i += 100) {
        const batch = left.slice(i, i + 100);
        const gone = await Promise.all(
          batch.map(async (index) => {
            const id = chunkJobId(runId, index);
            if ((await this.queue.remove(id).catch(() => 0)) === 1) return true;
            // 0 is also what a chunk already gone answers; its state tells (without reading its data).
            return (await this.queue.getJobState(id)) === 'unknown';
          }),
        );
        batch.forEach((index, k) => gone[k] || still.push(index));
      }
      left = still;
      if (left.length === 0 || Date.now() >= deadline) return left.length;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}

export interface ChunkWorkerOptions {
  /** Chunks a worker process runs at once. @default 1 */
  concurrency?: number;
  /** How long a chunk's lock lasts without renewal; a worker gone this long loses its chunk. @default 10000 */
  lockDurationMs?: number;
  /** How often stalled chunks (a lock expired: the worker died or wedged) are looked for. @default 5000 */
  stalledIntervalMs?: number;
  prefix?: string;
}

/**
 * A worker's side: run each chunk with `handle`. A worker killed mid-chunk stops renewing its lock;
 * once it expires BullMQ's stalled-job check moves the chunk back to wait and another worker takes
 * it, so `handle` may see a chunk twice: whatever it writes must be idempotent by item.
 */
export function startChunkWorker<T, R>(
  redisUrl: string,
  handle: (chunk: Chunk<T>, job: Job<Chunk<T>>, token: string | undefined) => Promise<R>,
  o: ChunkWorkerOptions = {},
): Worker<Chunk<T>, R> {
  const worker = new Worker<Chunk<T>, R>(
    QUEUE_NAME,
    async (job, token) => {
      if (job.data.protocol !== CHUNK_PROTOCOL) {
        throw new Error(
          `chunk ${job.id ?? '?'} uses shardline chunk protocol ${job.data.protocol}; this worker speaks ` +
            `${CHUNK_PROTOCOL}: run the same shardline version on the coordinator and every worker`,
        );
      }
      return handle(job.data, job, token);
    },
    {
      connection: connection(redisUrl),
      prefix: o.prefix ?? 'shardline',
      concurrency: o.concurrency ?? 1,
      lockDuration: o.lockDurationMs ?? 10_000,
      stalledInterval: o.stalledIntervalMs ?? 5_000,
      // A chunk may stall more than once (two workers killed in a row) and must still run.
      maxStalledCount: 10,
    },
  );
  const told = new Set<string>();
  worker.on('error', (err) => {
    const lost = lostChunk(err.message);
    if (lost === undefined)
      return process.stderr.write(`shardline: Redis at ${redactRedisUrl(redisUrl)}: ${err.message}\n`);
    // Said once a chunk: BullMQ reports each failed renewal and the refused completion.
    if (told.has(lost)) return;
    told.add(lost);
    process.stderr.write(
      `shardline: chunk ${lost} went to another worker while this one was silent past its lock; what this one ` +
        `finishes of it is dropped as a duplicate\n`,
    );
  });
  return worker;
}

/** The job id of a chunk whose lock this worker lost (BullMQ's own messages), or undefined. */
export function lostChunk(message: string): string | undefined {
  return (
    /^could not renew lock for job (\S+)$/.exec(message)?.[1] ??
    /^Missing (?:key|lock) for job (\S+?)\.? moveTo/.exec(message)?.[1]
  );
}

/** Put a chunk this worker will not run back in the queue after `delayMs`, neither done nor failed. */
export async function putBack(job: Job, token: string | undefined, delayMs: number): Promise<never> {
  await job.moveToDelayed(Date.now() + delayMs, token);
  throw new DelayedError();
}
