#!/usr/bin/env node
// What one chunk of a distributed run costs through BullMQ, each side apart: the coordinator adding it
// (`queue.add`, and `addBulk` of one job, alternated in one process), a worker taking and completing
// it (BullMQ's Worker with a handler that does nothing), and Redis doing both (its `INFO cpu`).
// Chunks hold this bench's chat requests (as distributed.mjs's input) as columns, with the job options
// shardline's coordinator gives them. CPU is this process's (every thread) per chunk and per request.
//
//   node bench/chunk-cost.mjs [--items 256] [--chunks 3000]
//
// Needs redis-server and a built shardline (npm run build): the chunks' protocol and job options are its own.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { CHUNK_PROTOCOL, chunkJobOptions } from '../dist/runner/distributed/chunk-queue.js';
import { toColumns } from '../dist/runner/distributed/request-columns.js';
import { startRedisProcess } from './redis-process.mjs';

const { values } = parseArgs({
  options: { items: { type: 'string', default: '256' }, chunks: { type: 'string', default: '3000' } },
});
const perChunk = Number(values.items);
const total = Number(values.chunks);
const dir = mkdtempSync(join(tmpdir(), 'sl-bench-chunk-'));
const redis = await startRedisProcess('bench/chunk-cost.mjs', dir, ['--appendonly', 'no']);
const connection = { url: redis.url, maxRetriesPerRequest: null };
const info = new Redis(redis.url);
const redisCpuUs = async () => {
  const text = await info.info('cpu');
  const field = (name) => Number(new RegExp(`${name}:([\\d.]+)`).exec(text)[1]);
  return (field('used_cpu_user') + field('used_cpu_sys')) * 1e6;
};
const cpuUs = (since) => {
  const c = process.cpuUsage(since);
  return c.user + c.system;
};

const items = Array.from({ length: perChunk }, (_, i) => ({
  id: `r${i}`,
  lineNo: i + 1,
  body: `{"model":"sim","messages":[{"role":"user","content":"q ${i}"}],"max_tokens":8,"stream":false}`,
  stream: false,
}));
// As the coordinator sends them: columns (chunk protocol 4).
const columns = toColumns(items);
const chunk = (index) => ({ runId: 'bench', index, protocol: CHUNK_PROTOCOL, items: columns });
const opts = (index) => chunkJobOptions(chunk(index));

try {
  const queue = new Queue('chunk-cost', { connection });
  // Adding: `add` and `addBulk` of one job in alternating blocks (a machine drifting weighs on both).
  const spent = { add: 0, addBulk: 0 };
  const count = { add: 0, addBulk: 0 };
  const block = 100;
  const redis0 = await redisCpuUs();
  for (let i = 0; i < total; i += block) {
    const how = (i / block) % 2 === 0 ? 'add' : 'addBulk';
    const t0 = process.cpuUsage();
    for (let k = i; k < Math.min(i + block, total); k++) {
      count[how]++;
      if (how === 'add') await queue.add('chunk', chunk(k), opts(k));
      else await queue.addBulk([{ name: 'chunk', data: chunk(k), opts: opts(k) }]);
    }
    spent[how] += cpuUs(t0);
  }
  const redisAdd = (await redisCpuUs()) - redis0;
  // Taking and completing them, as a worker with two chunks at once does.
  let done = 0;
  const t0 = process.cpuUsage();
  const redis1 = await redisCpuUs();
  await new Promise((resolve) => {
    const worker = new Worker(
      'chunk-cost',
      async (job) => {
        if (++done === total) setImmediate(() => worker.close().then(resolve));
        return job.data.items.length;
      },
      { connection, concurrency: 2, lockDuration: 10_000, stalledInterval: 5_000, maxStalledCount: 10 },
    );
  });
  const worker = cpuUs(t0);
  const redisWork = (await redisCpuUs()) - redis1;
  await queue.close();
  const row = (name, us, n) => {
    const chunkUs = (us / n).toFixed(0).padStart(6);
    console.log(`${name.padEnd(34)} ${chunkUs} µs a chunk  ${(us / n / perChunk).toFixed(2).padStart(6)} µs a request`);
  };
  console.log(
    `BullMQ chunk cost — node ${process.version}, ${new Date().toISOString()}, ${total} chunks of ${perChunk}`,
  );
  row('coordinator: queue.add', spent.add, count.add);
  row('coordinator: addBulk of one job', spent.addBulk, count.addBulk);
  row('worker: take and complete', worker, total);
  row('Redis: add (both ways)', redisAdd, total);
  row('Redis: take and complete', redisWork, total);
} finally {
  info.disconnect();
  redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
