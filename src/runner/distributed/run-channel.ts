import { localOnlyKeys } from '../../config/option-table.js';
import { RUN_OPTIONS } from '../../config/run-option-table.js';
import { Redis } from 'ioredis';
import { VERSION } from '../../version.js';
import { CHUNK_PROTOCOL } from './chunk-queue.js';
import { redactRedisUrl } from '../../config/redis-url.js';
import { ResultBatch } from './result-batch.js';
import { decodeFacts, type ResultFacts } from './result-facts.js';
import { RespConnection, type RespReply } from './resp-connection.js';

/**
 * What a distributed run's coordinator publishes for its workers: the run id and the options a
 * worker cannot know (everything but secrets: API keys and headers stay on each machine).
 */
export interface PublishedRun {
  runId: string;
  /** shardline version and chunk protocol of the coordinator: a worker of another refuses the run. */
  version: string;
  protocol: number;
  /** The run's options as the coordinator resolved them, minus input, out, API key and headers. */
  options: Record<string, unknown>;
}

/** One result a worker sends: the request's custom_id, its results.jsonl line and what the run's totals count of it. */
export interface SentResult {
  id: string;
  line: string;
  facts?: ResultFacts | undefined;
}

/** One result as the coordinator reads it back (its line as bytes), with the stream entry it came in. */
export interface StreamedResult {
  id: string;
  line: Buffer;
  facts?: ResultFacts | undefined;
  streamId: string;
}

/** Options a coordinator does not publish: they are per machine, or secrets (`localOnly` in the option table). */
export const LOCAL_ONLY_OPTIONS: readonly string[] = localOnlyKeys(RUN_OPTIONS);

const CURRENT = 'shardline:run:current';
/** How long a finished run's keys stay in Redis: a week. */
const FINISHED_KEEP_S = 7 * 24 * 3600;
/** XADD to KEYS[1] the field/value pairs in ARGV, unless KEYS[2] (the run's finished flag) exists. */
const XADD_UNLESS_FINISHED = `if redis.call('EXISTS', KEYS[2]) == 1 then return false end
return redis.call('XADD', KEYS[1], '*', unpack(ARGV))`;
const key = (runId: string, what: string) => `shardline:run:${runId}:${what}`;

/**
 * The run-level keys beside the chunk queue: the current run and its options, run-wide shard
 * numbers, the stream of results workers send and the coordinator drains into results.jsonl, and
 * the finished flag that tells workers to stop asking for chunks.
 */
export class RunChannel {
  readonly redis: Redis;
  /** Where result batches go (opened by the first one): their own connection, see RespConnection. */
  private results: RespConnection | undefined;
  /** Where the coordinator reads them back (opened by the first read). */
  private reads: RespConnection | undefined;

  constructor(readonly url: string) {
    // maxRetriesPerRequest null: commands wait out a Redis restart instead of failing the run.
    this.redis = new Redis(url, { maxRetriesPerRequest: null });
    this.redis.on('error', (err: Error) =>
      process.stderr.write(`shardline: Redis at ${redactRedisUrl(url)}: ${err.message}\n`),
    );
  }

  async publish(run: Omit<PublishedRun, 'version' | 'protocol'>): Promise<void> {
    const full: PublishedRun = { ...run, version: VERSION, protocol: CHUNK_PROTOCOL };
    await this.redis
      .multi()
      .set(key(run.runId, 'config'), JSON.stringify(full))
      .del(key(run.runId, 'finished'))
      .set(CURRENT, run.runId)
      .exec();
  }

  /** The current run, once one is published and not finished; undefined otherwise. */
  async current(): Promise<PublishedRun | undefined> {
    const runId = await this.redis.get(CURRENT);
    if (!runId || (await this.redis.exists(key(runId, 'finished')))) return undefined;
    const text = await this.redis.get(key(runId, 'config'));
    return text ? (JSON.parse(text) as PublishedRun) : undefined;
  }

  /** The id of the run last published, finished or not. */
  async currentRunId(): Promise<string | null> {
    return this.redis.get(CURRENT);
  }

  /** Reserve `n` run-wide shard numbers; returns the first. */
  async allocShards(runId: string, n: number): Promise<number> {
    return (await this.redis.incrby(key(runId, 'shards'), n)) - n;
  }

  /** Send results as one stream entry (see sendBatch). */
  async sendResults(runId: string, results: readonly SentResult[]): Promise<void> {
    const batch = new ResultBatch();
    for (const r of results) batch.add(r.id, r.line, r.facts);
    await this.sendBatch(runId, batch);
  }

  /**
   * Send a batch of results as one stream entry: its ids as a JSON array, its lines joined by
   * newlines, and their facts when every one has them. One XADD a batch rather than one a result:
   * per-command cost in ioredis and Redis was most of what Redis added to a request's client CPU
   * (bench/distributed.mjs). The batch's bytes must not change until this resolves.
   */
  async sendBatch(runId: string, batch: ResultBatch): Promise<void> {
    if (batch.size === 0) return;
    this.results ??= new RespConnection(this.url);
    // A worker wedged past its chunks' locks may wake after the run finished: its results are
    // dropped then, or XADD would bring the deleted stream back for good.
    await this.results.send([
      'EVAL',
      XADD_UNLESS_FINISHED,
      '2',
      key(runId, 'results'),
      key(runId, 'finished'),
      ...batch.fields(),
    ]);
  }

  /**
   * Results in entries after `afterId` ('0' for all), waiting up to `blockMs` for the first. Read on a
   * connection of their own (the read blocks it), as bytes: each line is a view of the bytes Redis
   * sent, to be written to results.jsonl as it is.
   */
  async readResults(runId: string, afterId: string, blockMs: number, count = 64): Promise<StreamedResult[]> {
    this.reads ??= new RespConnection(this.url);
    const reply = await this.reads.send([
      'XREAD',
      'COUNT',
      String(count),
      'BLOCK',
      String(blockMs),
      'STREAMS',
      key(runId, 'results'),
      afterId,
    ]);
    const out: StreamedResult[] = [];
    for (const stream of asArray(reply)) {
      for (const entry of asArray(asArray(stream)[1])) {
        const [idBytes, fields] = asArray(entry);
        const streamId = String(idBytes);
        const pairs = asArray(fields);
        let ids: string[] = [];
        let lines: Buffer[] = [];
        let facts: (ResultFacts | undefined)[] = [];
        for (let i = 0; i + 1 < pairs.length; i += 2) {
          const name = String(pairs[i]);
          const value = pairs[i + 1] as Buffer;
          if (name === 'ids') ids = JSON.parse(value.toString()) as string[];
          else if (name === 'lines') lines = splitLines(value);
          else if (name === 'facts') facts = decodeFacts(value.toString());
        }
        for (let k = 0; k < ids.length; k++)
          out.push({ streamId, id: ids[k]!, line: lines[k] ?? EMPTY, facts: facts[k] });
      }
    }
    return out;
  }

  /** Drop results up to and including `streamId`: they are in results.jsonl. */
  async trimResults(runId: string, streamId: string): Promise<void> {
    await this.redis.xtrim(key(runId, 'results'), 'MINID', nextStreamId(streamId));
  }

  /**
   * Mark the run finished and drop its results stream. Its other keys (options, shard numbers, the
   * finished flag a late-waking worker reads) expire after FINISHED_KEEP_S, so a Redis serving run
   * after run does not fill with them; a resume publishes them again.
   */
  async finish(runId: string): Promise<void> {
    await this.redis
      .multi()
      .set(key(runId, 'finished'), '1', 'EX', FINISHED_KEEP_S)
      .del(key(runId, 'results'))
      .expire(key(runId, 'config'), FINISHED_KEEP_S)
      .expire(key(runId, 'shards'), FINISHED_KEEP_S)
      .exec();
  }

  async isFinished(runId: string): Promise<boolean> {
    return (await this.redis.exists(key(runId, 'finished'))) === 1;
  }

  async close(): Promise<void> {
    this.results?.close();
    this.reads?.close();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

const EMPTY = Buffer.alloc(0);

function asArray(reply: RespReply | undefined): RespReply[] {
  return Array.isArray(reply) ? reply : [];
}

/** A batch's lines: views of its bytes between newlines (a result line is JSON: it holds none). */
function splitLines(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let from = 0;
  for (;;) {
    const nl = bytes.indexOf(0x0a, from);
    if (nl < 0) break;
    out.push(bytes.subarray(from, nl));
    from = nl + 1;
  }
  out.push(bytes.subarray(from));
  return out;
}

/** The smallest stream id after `id` ("ms-seq"). */
function nextStreamId(id: string): string {
  const [ms, seq] = id.split('-');
  return `${ms}-${Number(seq) + 1}`;
}
