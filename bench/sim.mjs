#!/usr/bin/env node
// Measures the simulator's own ceiling: streamed tokens/s and requests/s it serves from one process
// (one core) with the `fast` profile. The client runs in this process on the other core and discards
// bodies unparsed, so the figure is the server's, read from its own /metrics counters.
//
//   node bench/sim.mjs [--duration-s 10] [--concurrency 64] [--tokens 256]
import { parseArgs } from 'node:util';
import { Pool, request } from 'undici';
import { startSimProcess } from './sim-process.mjs';

const { values } = parseArgs({
  options: {
    'duration-s': { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '64' },
    tokens: { type: 'string', default: '256' },
  },
});
const durationMs = Number(values['duration-s']) * 1000;
const concurrency = Number(values.concurrency);
const tokens = Number(values.tokens);

const server = await startSimProcess('fast');
const url = server.url;

async function counters() {
  const res = await request(`${url}/metrics`);
  const text = await res.body.text();
  const get = (name) => Number(text.match(new RegExp(`^${name} (\\S+)$`, 'm'))?.[1] ?? 0);
  let requests = 0;
  for (const m of text.matchAll(/^sim_requests_total\{code="200"\} (\S+)$/gm)) requests += Number(m[1]);
  return { tokens: get('sim_completion_tokens_total'), requests };
}

async function phase(name, body) {
  const pool = new Pool(url, { connections: concurrency, pipelining: 1 });
  const payload = JSON.stringify(body);
  const before = await counters();
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  const cpu0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const res = await pool.request({
          path: '/v1/chat/completions',
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: payload,
        });
        for await (const _ of res.body);
      }
    }),
  );
  const elapsedS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const after = await counters();
  await pool.close();
  const tps = (after.tokens - before.tokens) / elapsedS;
  const rps = (after.requests - before.requests) / elapsedS;
  const clientCpu = (cpu.user + cpu.system) / 1e6 / elapsedS;
  console.log(
    `${name.padEnd(34)} ${Math.round(tps).toLocaleString('en-US').padStart(12)} tokens/s ` +
      `${Math.round(rps).toLocaleString('en-US').padStart(8)} req/s   (client used ${(clientCpu * 100).toFixed(0)}% ` +
      `of a core)`,
  );
  return { tps, rps };
}

console.log(
  `simulator ceiling, fast profile, ${concurrency} concurrent, ${durationMs / 1000}s per phase (node ` +
    `${process.version})`,
);
const streamed = await phase(`streaming, ${tokens}-token answers`, {
  messages: [{ role: 'user', content: 'bench' }],
  max_tokens: tokens,
  stream: true,
  stream_options: { include_usage: true },
});
await phase('non-streaming, 1-token answers', { messages: [{ role: 'user', content: 'bench' }], max_tokens: 1 });
console.log(
  `target ≥ 300,000 streamed tokens/s: ${streamed.tps >= 300_000 ? 'met' : 'NOT met'} ` +
    `(${(streamed.tps / 300_000).toFixed(2)}× target)`,
);
server.stop();
