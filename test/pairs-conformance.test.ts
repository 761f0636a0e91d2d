import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRunOptions, type ResolvedRunOptions } from '../src/config/resolved-run-options.js';
import { EventWriter } from '../src/events/event-writer.js';
import { Coordinator } from '../src/runner/coordinator.js';
import { DirectShard } from '../src/runner/distributed/direct-shard.js';
import { DistributedCoordinator } from '../src/runner/distributed/distributed-run.js';
import { RedisWorkSource } from '../src/runner/distributed/redis-work-source.js';
import { RunChannel } from '../src/runner/distributed/run-channel.js';
import { JsonlWorkSource } from '../src/runner/jsonl-work-source.js';
import { DirResultSink } from '../src/runner/output/dir-result-sink.js';
import { shardConfig } from '../src/runner/shard/shard-config.js';
import { forkShard, type ShardLauncher } from '../src/runner/shard/shard-link.js';
import { parseProfile, startSim } from '../src/index.js';
import { fakeShards } from './helpers/fake-shard.js';
import { startRedis, type TestRedis } from './helpers/redis.js';
import { loadEvents, loadResults, ofType, tempDir, writeInput } from './helpers/run-dir.js';

// Each seam with two implementations runs one case list over both: the work source and result sink
// (a JSONL file and results.jsonl, or chunks and results through Redis), and a worker's engine (a
// coordinator over a shard process, or its one shard run directly on its chunks). The transports have
// theirs in transport-conformance.test.ts.

/** An input of `n` requests plus a malformed line and a duplicate custom_id, as users' files have. */
function input(dir: string, n: number): string {
  const path = writeInput(dir, n);
  appendFileSync(path, 'not json\n');
  appendFileSync(
    path,
    `${JSON.stringify({
      custom_id: 'req-0',
      method: 'POST',
      url: '/v1/chat/completions',
      body: { messages: [{ role: 'user', content: 'x' }] },
    })}\n`,
  );
  return path;
}

function options(dir: string, extra: Record<string, unknown> = {}): ResolvedRunOptions {
  return parseRunOptions({
    input: input(dir, 300),
    endpoint: 'http://127.0.0.1:9/v1',
    out: join(dir, 'out'),
    progress: 'off',
    concurrency: 8,
    ...extra,
  });
}

const writer = (out: string, name: string) =>
  new EventWriter({ path: join(out, 'events', name), run: 'pair', shard: -1, now: () => Date.now() });

/** What serves a worker's chunks: a coordinator over shards, or one shard directly. */
type Engine = Pick<Coordinator, 'run' | 'totals'>;

/** A worker's coordinator taking `runId`'s chunks from `source`, its shards started by `launchShard`. */
function workerCoordinator(
  o: ResolvedRunOptions,
  runId: string,
  source: RedisWorkSource,
  events: EventWriter,
  launchShard: ShardLauncher,
): Coordinator {
  return new Coordinator({
    options: o,
    source,
    sink: source,
    events,
    doneIds: new Set(),
    clock: () => Date.now(),
    shardConfig: (i, rep) => shardConfig(o, runId, o.out, i, rep),
    launchShard,
  });
}

/**
 * A distributed run in this process: its coordinator reading `o.input` into chunks in Redis, and one
 * worker's `engine` taking them; resolves once both have ended, everything closed.
 */
async function throughRedis(
  o: ResolvedRunOptions,
  url: string,
  engineOf: (runId: string, source: RedisWorkSource, events: EventWriter) => Engine,
): Promise<{ run: { status: string }; served: { status: string }; engine: Engine }> {
  const sink = new DirResultSink(o.out);
  const runId = `pair-${Date.now()}`;
  const running = new DistributedCoordinator({
    options: Object.assign(o, { redis: url }),
    runId,
    out: o.out,
    sink,
    doneIds: await sink.doneIds(),
    clock: () => Date.now(),
    log: () => undefined,
  }).run();
  const channel = new RunChannel(url);
  const source = new RedisWorkSource(url, runId, channel);
  const events = writer(o.out, 'worker.jsonl');
  const engine = engineOf(runId, source, events);
  const [run, served] = await Promise.all([running, engine.run()]);
  await source.close();
  await channel.close();
  await sink.close();
  events.close();
  return { run, served, engine };
}

/** The source/sink pairs: each runs the input through a Coordinator with fake shards that answer at once. */
const SOURCES: [string, (o: ResolvedRunOptions, redis: () => string) => Promise<{ status: string }>][] = [
  [
    'JSONL file → results.jsonl',
    async (o) => {
      const sink = new DirResultSink(o.out);
      const events = writer(o.out, 'coordinator.jsonl');
      const source = new JsonlWorkSource(o.input, o.model);
      const r = await new Coordinator({
        options: o,
        source,
        sink,
        events,
        doneIds: await sink.doneIds(),
        clock: () => Date.now(),
        shardConfig: (i, rep) => shardConfig(o, 'pair', o.out, i, rep),
        launchShard: fakeShards({ autoFinish: true }).launch,
      }).run();
      await source.close();
      await sink.close();
      events.close();
      return r;
    },
  ],
  [
    'Redis chunks → Redis stream → results.jsonl',
    async (o, redis) =>
      (
        await throughRedis(
          o,
          redis(),
          // The worker's side, in this process: chunks in, results out, shards faked.
          (runId, source, events) =>
            workerCoordinator(o, runId, source, events, fakeShards({ autoFinish: true }).launch),
        )
      ).run,
  ],
];

let redis: TestRedis | undefined;
beforeAll(async () => {
  redis = await startRedis();
}, 30_000);
afterAll(async () => {
  await redis?.stop();
});

describe.each(SOURCES)('work source and result sink: %s', (_name, runThrough) => {
  it('gives exactly one result per valid line and sends malformed lines to rejects', async () => {
    const dir = tempDir();
    const o = options(dir);
    expect((await runThrough(o, () => redis!.url)).status).toBe('finished');
    const results = loadResults(o.out);
    const ids = results.map((r) => r.custom_id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.sort()).toEqual(Array.from({ length: 300 }, (_, i) => `req-${i}`).sort());
    const rejects = readFileSync(join(o.out, 'rejects.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { line: number; reason: string });
    expect(rejects.map((r) => r.line)).toEqual([301, 302]);
    expect(rejects[1]!.reason).toMatch(/duplicate/);
  }, 60_000);
});

/** A worker's engines: its chunks through a coordinator over a shard process, or run by its one shard directly. */
const ENGINES: [
  string,
  (o: ResolvedRunOptions, runId: string, source: RedisWorkSource, events: EventWriter) => Engine,
][] = [
  [
    'a coordinator over a shard process',
    (o, runId, source, events) => workerCoordinator(o, runId, source, events, forkShard),
  ],
  [
    'one shard directly',
    (o, runId, source, events) =>
      new DirectShard({ options: o, config: shardConfig(o, runId, o.out, 0), source, events, clock: () => Date.now() }),
  ],
];

describe.each(ENGINES)('worker engine: %s', (_name, engineOf) => {
  it('runs every chunked request against the simulator, with retries, events and one result each', async () => {
    const sim = await startSim({
      profile: parseProfile({ base: 'fast', faults: { errors: { p_503: 0.1 } } }),
      seed: 3,
    });
    try {
      const dir = tempDir();
      const url = redis!.url;
      const o = parseRunOptions({
        input: writeInput(dir, 600),
        endpoint: `${sim.url}/v1`,
        out: join(dir, 'out'),
        progress: 'off',
        concurrency: 6,
        retryBackoffS: 0.01,
        retryBackoffMaxS: 0.05,
        seed: 1,
        redis: url,
      });
      const { run, served, engine } = await throughRedis(o, url, (runId, source, events) =>
        engineOf(o, runId, source, events),
      );
      expect(run.status).toBe('finished');
      expect(served.status).toBe('finished');
      const results = loadResults(o.out);
      expect(new Set(results.map((r) => r.custom_id)).size).toBe(600);
      expect(results.every((r) => r.error === null)).toBe(true);
      const ev = loadEvents(o.out);
      expect(ofType(ev, 'request_end')).toHaveLength(600);
      // The 503s were retried: one backoff per extra attempt, as the totals say, and each retry enqueued again.
      const retries = engine.totals.retries;
      expect(retries).toBeGreaterThan(0);
      expect(ofType(ev, 'backoff')).toHaveLength(retries);
      expect(ofType(ev, 'enqueue')).toHaveLength(600 + retries);
      expect(engine.totals.succeeded).toBe(600);
      expect(ofType(ev, 'shard_start')).toHaveLength(1);
    } finally {
      await sim.close();
    }
  }, 60_000);
});
