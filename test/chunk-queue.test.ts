import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChunkQueue, chunkJobId, CHUNK_PROTOCOL, lostChunk, toChunks } from '../src/runner/distributed/chunk-queue.js';
import { checkRedis, redisVersionOf, versionAtLeast } from '../src/runner/distributed/redis-check.js';
import { killed, until } from './helpers/processes.js';
import { startRedis, type TestRedis } from './helpers/redis.js';
import { tempDir } from './helpers/run-dir.js';

const WORKER = join(import.meta.dirname, 'fixtures', 'chunk-worker.mjs');

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

const workers: ChildProcess[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => killed(w, 'SIGKILL')));
});

function startWorker(log: string, itemMs: number, prefix = 'shardline'): Promise<ChildProcess> {
  const w = spawn(process.execPath, [WORKER, redis.url, log, String(itemMs), prefix], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  workers.push(w);
  return new Promise((resolve, reject) => {
    w.stdout!.once('data', () => resolve(w));
    w.once('exit', (code) => reject(new Error(`worker exited ${String(code)}`)));
  });
}

function logLines(log: string): { pid: number; chunk: number; item: string }[] {
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [pid, chunk, item] = l.split(' ');
      return { pid: Number(pid), chunk: Number(chunk), item: item! };
    });
}

describe('Redis checks before a distributed run', () => {
  it('reads the version and compares it part by part', () => {
    expect(redisVersionOf('# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n')).toBe('7.0.15');
    expect(versionAtLeast('7.0.15', '6.2.0')).toBe(true);
    expect(versionAtLeast('6.2', '6.2.0')).toBe(true);
    expect(versionAtLeast('6.0.20', '6.2.0')).toBe(false);
    expect(versionAtLeast('10.0.0', '6.2.0')).toBe(true);
  });

  it('accepts a live Redis, and names the URL (never its password) when Redis is down or the URL is bad', async () => {
    expect(versionAtLeast(await checkRedis(redis.url), '6.2.0')).toBe(true);
    const down = `redis://:s3cret-pw@127.0.0.1:${redis.port + 1 === 65536 ? 1 : redis.port + 1}`;
    const err = (await checkRedis(down, { timeoutMs: 2000 }).then(
      () => new Error('reached a Redis that should be down'),
      (e: unknown) => e as Error,
    )) as Error & { code?: string };
    expect(err).toMatchObject({ code: 'SL_ERR_REDIS' });
    expect(err.message).toMatch(/Cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+/);
    expect(err.message).not.toContain('s3cret-pw');
    await expect(checkRedis('http://127.0.0.1:6379')).rejects.toMatchObject({
      code: 'SL_ERR_CONFIG',
      message: expect.stringMatching(/`--redis` to be a redis:\/\/ or rediss:\/\/ URL/),
    });
  });
});

describe('chunk queue on a real Redis (BullMQ)', () => {
  it("tells BullMQ's lost-lock messages (a chunk gone to another worker) from Redis failures", () => {
    expect(lostChunk('could not renew lock for job 20261206T001726Z-17b587.1')).toBe('20261206T001726Z-17b587.1');
    expect(lostChunk('Missing key for job 20261206T001726Z-17b587.0. moveToFinished')).toBe(
      '20261206T001726Z-17b587.0',
    );
    expect(lostChunk('Missing lock for job r.12. moveToFinished')).toBe('r.12');
    expect(lostChunk('connect ECONNREFUSED 127.0.0.1:6379')).toBeUndefined();
    expect(lostChunk('Connection is closed.')).toBeUndefined();
  });

  it('enqueues a chunk once, however often it is added (a coordinator started again)', async () => {
    const q = new ChunkQueue<string[]>(redis.url, { prefix: 'sl-test-idem' });
    try {
      const items = Array.from({ length: 1000 }, (_, i) => `r${i}`);
      const chunks = toChunks('run-a', items, 256);
      expect(chunks.map((c) => c.items.length)).toEqual([256, 256, 256, 232]);
      expect(chunks.map((c) => chunkJobId(c.runId, c.index))).toEqual(['run-a.0', 'run-a.1', 'run-a.2', 'run-a.3']);
      await q.add(chunks);
      await q.add(chunks);
      await q.add(chunks.slice(2));
      // One chunk at a time, as the coordinator adds them: the same no-op, the first data kept.
      await q.add([chunks[1]!]);
      await q.add([{ ...chunks[3]!, items: ['changed'] }]);
      const counts = await q.queue.getJobCounts('wait', 'active', 'completed', 'failed', 'delayed');
      expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(4);
      expect((await q.queue.getJob('run-a.3'))?.data.items).toHaveLength(232);
      // A chunk of one block (no `blocks` field) reads as one; where no chunk starts, nothing.
      expect(await q.blocksAt('run-a', 3)).toBe(1);
      expect(await q.blocksAt('run-a', 4)).toBeUndefined();
      await q.add([{ runId: 'run-a', index: 4, blocks: 3, protocol: CHUNK_PROTOCOL, items: ['x'] }]);
      expect(await q.blocksAt('run-a', 4)).toBe(3);
    } finally {
      await q.queue.obliterate({ force: true });
      await q.close();
    }
  });

  it(
    'hands a chunk whose worker was killed with kill -9 to another worker: every chunk completes, five kills at ' +
      'random moments',
    { timeout: 90_000 },
    async () => {
      const q = new ChunkQueue<string[]>(redis.url);
      const log = join(tempDir(), 'worked.log');
      try {
        const items = Array.from({ length: 400 }, (_, i) => `r${i}`);
        await q.add(toChunks('run-kill', items, 20));
        for (let i = 0; i < 3; i++) await startWorker(log, 15);
        const killedChunks = new Set<number>();
        // The chunk a worker is in the middle of: its last line's, unless that chunk is finished.
        const midChunk = (pid: number | undefined): number | undefined => {
          const mine = logLines(log).filter((l) => l.pid === pid);
          const last = mine[mine.length - 1];
          return last && mine.filter((l) => l.chunk === last.chunk).length < 20 ? last.chunk : undefined;
        };
        for (let round = 0; round < 5; round++) {
          await new Promise((r) => setTimeout(r, 200 + Math.random() * 600));
          const alive = () => workers.filter((w) => w.exitCode === null && w.signalCode === null);
          // On a loaded machine workers start slowly: a random moment can find none of them inside a
          // chunk yet. Wait (bounded) for one that is, so each kill cuts a chunk short.
          await until(
            () => alive().some((w) => midChunk(w.pid) !== undefined),
            10_000,
            'a worker in the middle of a chunk',
          ).catch(() => undefined);
          const inside = alive().filter((w) => midChunk(w.pid) !== undefined);
          const pool = inside.length > 0 ? inside : alive();
          const victim = pool[Math.floor(Math.random() * pool.length)]!;
          const chunk = midChunk(victim.pid);
          await killed(victim, 'SIGKILL');
          // On a loaded machine the victim may finish that chunk between the look and the kill: only a
          // chunk it left short (its lines are final once it has exited) must run again elsewhere.
          const ranByVictim = logLines(log).filter((l) => l.pid === victim.pid && l.chunk === chunk).length;
          if (chunk !== undefined && ranByVictim < 20) killedChunks.add(chunk);
          await startWorker(log, 15);
        }
        await until(
          async () => (await q.queue.getJobCounts('completed')).completed === 20,
          60_000,
          'all 20 chunks to complete',
        );
        const lines = logLines(log);
        // Every item ran at least once; a chunk cut short by a kill ran again, in full, on another worker.
        expect(new Set(lines.map((l) => l.item)).size).toBe(400);
        expect(killedChunks.size).toBeGreaterThan(0);
        for (const chunk of killedChunks) {
          const runs = lines.filter((l) => l.chunk === chunk);
          expect(new Set(runs.map((l) => l.pid)).size, `chunk ${chunk}`).toBeGreaterThan(1);
          expect(new Set(runs.map((l) => l.item)).size).toBe(20);
        }
        const failed = await q.queue.getJobCounts('failed');
        expect(failed.failed).toBe(0);
      } finally {
        await q.queue.obliterate({ force: true });
        await q.close();
      }
    },
  );

  it(
    'keeps queued chunks through a Redis kill -9 and restart (AOF), and the run finishes',
    { timeout: 60_000 },
    async () => {
      const q = new ChunkQueue<string[]>(redis.url, { prefix: 'sl-test-aof' });
      const log = join(tempDir(), 'worked.log');
      await q.add(
        toChunks(
          'run-aof',
          Array.from({ length: 60 }, (_, i) => `r${i}`),
          10,
        ),
      );
      await q.close();
      await redis.restart();
      const again = new ChunkQueue<string[]>(redis.url, { prefix: 'sl-test-aof' });
      try {
        expect((await again.queue.getJobCounts('wait')).wait).toBe(6);
        await startWorker(log, 5, 'sl-test-aof');
        await until(
          async () => (await again.queue.getJobCounts('completed')).completed === 6,
          30_000,
          'the 6 chunks to complete',
        );
        expect(new Set(logLines(log).map((l) => l.item)).size).toBe(60);
      } finally {
        await again.queue.obliterate({ force: true });
        await again.close();
      }
    },
  );
});
