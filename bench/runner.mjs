#!/usr/bin/env node
// shardline's runner vs what teams write by hand (the official `openai` client driven by p-limit),
// side by side in one run, same concurrency, against the simulator in its own process.
//
//   node bench/runner.mjs [--scenario throughput|paced|all] [--requests N] [--concurrency C]
//                         [--paced-lengths fixed|varied|both] [--paced-streams 512] [--paced-tokens 100]
//
// throughput: `fast` profile (no server latency), 256-token answers, streaming and not: requests/s,
//   completion tokens/min, client CPU µs per request and per streamed token (event log on).
// paced: every token its own SSE chunk 10 ms apart, 512 concurrent streams: client CPU µs per token
//   and the TTFT the client adds on top of the server's own (from the simulator's per-request timings),
//   for the openai client, shardline with 1 shard and with 2 shards, each with undici and --transport raw;
//   once with every answer the same length (streams in lockstep) and once with lengths varied ±50%.
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import OpenAI from 'openai';
import pLimit from 'p-limit';
import { Pool } from 'undici';
import { run } from '../dist/index.js';
import { startSimProcess } from './sim-process.mjs';

const { values } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'all' },
    requests: { type: 'string', default: '3000' },
    concurrency: { type: 'string', default: '64' },
    'paced-streams': { type: 'string', default: '512' },
    'paced-tokens': { type: 'string', default: '100' },
    'paced-waves': { type: 'string', default: '4' },
    'paced-lengths': { type: 'string', default: 'both' },
  },
});
const work = mkdtempSync(join(tmpdir(), 'sl-bench-'));

/** `body`: fields for every request, or a function of the request's index giving them. */
const bodyOf = (body, i) => (typeof body === 'function' ? body(i) : body);

function writeInput(n, body) {
  const path = join(work, `in-${n}-${Math.random().toString(36).slice(2)}.jsonl`);
  const lines = [];
  for (let i = 0; i < n; i++)
    lines.push(
      JSON.stringify({
        custom_id: `r${i}`,
        body: { model: 'sim', messages: [{ role: 'user', content: `bench ${i}` }], ...bodyOf(body, i) },
      }),
    );
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

function readEvents(out) {
  const events = [];
  for (const f of readdirSync(join(out, 'events'))) {
    for (const line of readFileSync(join(out, 'events', f), 'utf8').split('\n'))
      if (line) events.push(JSON.parse(line));
  }
  return events;
}

async function shardline(url, n, body, shards, concurrency, transport = 'undici', extra = {}) {
  const input = writeInput(n, body);
  const out = join(work, `out-${Math.random().toString(36).slice(2)}`);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const s = await run({ input, endpoint: `${url}/v1`, out, shards, concurrency, transport, progress: 'off', ...extra });
  const wallS = (performance.now() - t0) / 1000;
  const coord = process.cpuUsage(cpu0);
  const events = readEvents(out);
  let shardCpuUs = 0;
  let reads = 0;
  for (const e of events) {
    if (e.type === 'shard_end') {
      shardCpuUs += (e.cpu_user_ms + e.cpu_system_ms) * 1000;
      reads += e.socket_reads ?? 0;
    }
  }
  if (s.requests.succeeded !== n) throw new Error(`shardline: ${s.requests.succeeded}/${n} succeeded`);
  // Raw transport: socket reads per token.
  const reading = reads > 0 ? { readsPerToken: reads / s.tokens.completion } : undefined;
  return {
    wallS,
    tokens: s.tokens.completion,
    requests: n,
    cpuUs: coord.user + coord.system + shardCpuUs,
    out,
    events,
    reading,
  };
}

async function openaiBaseline(url, n, body, concurrency, onFirst) {
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'bench', maxRetries: 0, timeout: 600_000 });
  const limit = pLimit(concurrency);
  let tokens = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: n }, (_, i) =>
      limit(async () => {
        const req = { model: 'sim', messages: [{ role: 'user', content: `bench ${i}` }], ...bodyOf(body, i) };
        if (!req.stream) {
          const res = await client.chat.completions.create(req);
          tokens += res.usage.completion_tokens;
          return;
        }
        const start = performance.now();
        let first = true;
        for await (const chunk of await client.chat.completions.create({
          ...req,
          stream_options: { include_usage: true },
        })) {
          if (first && chunk.choices[0]?.delta?.content) {
            first = false;
            onFirst?.(chunk.id, performance.now() - start);
          }
          if (chunk.usage) tokens += chunk.usage.completion_tokens;
        }
      }),
    ),
  );
  const wallS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { wallS, tokens, requests: n, cpuUs: cpu.user + cpu.system };
}

const fmt = (x, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
function row(name, r) {
  return (
    `${name.padEnd(30)} ${fmt(r.requests / r.wallS).padStart(8)} req/s ` +
    `${fmt((r.tokens / r.wallS) * 60).padStart(12)} tok/min ${fmt(r.cpuUs / r.requests, 0).padStart(7)} µs CPU/req ` +
    `${fmt(r.cpuUs / r.tokens, 2).padStart(7)} µs CPU/token`
  );
}

async function throughput() {
  const n = Number(values.requests);
  const c = Number(values.concurrency);
  const sim = await startSimProcess('fast');
  console.log(`\n## throughput: fast profile, ${n} requests × 256 tokens, concurrency ${c}, one shard (event log on)`);
  try {
    for (const stream of [true, false]) {
      const body = { max_tokens: 256, stream };
      await shardline(sim.url, Math.min(300, n), body, 1, c); // warm-up (JIT, connections)
      const sl = await shardline(sim.url, n, body, 1, c);
      const raw = await shardline(sim.url, n, body, 1, c, 'raw');
      const oa = await openaiBaseline(sim.url, n, body, c);
      const label = stream ? 'streaming' : 'non-streaming';
      console.log(row(`shardline (${label})`, sl));
      console.log(row(`shardline raw (${label})`, raw));
      console.log(row(`openai + p-limit (${label})`, oa));
      console.log(
        `  → shardline uses ${fmt(oa.cpuUs / oa.tokens / (sl.cpuUs / sl.tokens), 1)}× less CPU per token; ` +
          `${fmt(sl.tokens / sl.wallS / (oa.tokens / oa.wallS), 2)}× the throughput`,
      );
    }
  } finally {
    sim.stop();
  }
}

function pct(sorted, p) {
  return sorted.length ? sorted[Math.ceil((p / 100) * sorted.length) - 1] : NaN;
}

async function paced() {
  const streams = Number(values['paced-streams']);
  const tokens = Number(values['paced-tokens']);
  const n = streams * Number(values['paced-waves']);
  const profile = join(work, 'paced.yaml');
  writeFileSync(
    profile,
    'base: fast\nname: paced\ntokens_per_step: 1\nstep_ms_base: 10\nstep_ms_per_seq: 0\nprefill_ms_base: 0\n',
  );
  // Equal answers keep every stream in step: a whole wave ends and the next starts within a few
  // ms, once a second. Answers of varied length (as real ones are) spread that work out.
  const lengths = values['paced-lengths'];
  if (lengths === 'fixed' || lengths === 'both') {
    console.log(
      `\n## paced: each token its own chunk 10 ms apart, ${streams} concurrent streams × ${tokens} tokens (in ` +
        `lockstep), ${n} requests`,
    );
    await pacedRun(profile, streams, n, { max_tokens: tokens, stream: true });
  }
  if (lengths === 'varied' || lengths === 'both') {
    const lo = Math.ceil(tokens / 2);
    console.log(
      `\n## paced: each token its own chunk 10 ms apart, ${streams} concurrent streams × ${lo}–${lo + tokens} ` +
        `tokens (out of step), ${n} requests`,
    );
    await pacedRun(profile, streams, n, (i) => ({ max_tokens: lo + ((i * 7919) % (tokens + 1)), stream: true }));
  }
}

async function pacedRun(profile, streams, n, body) {
  const results = [];
  for (const [name, fn] of [
    [
      'openai + p-limit',
      async (url) => {
        const client = new Map();
        const r = await openaiBaseline(url, n, body, streams, (id, ms) => client.set(id, ms));
        return { ...r, clientTtft: client };
      },
    ],
    ['shardline, 1 shard', async (url) => withTtft(await shardline(url, n, body, 1, streams))],
    ['shardline, 2 shards', async (url) => withTtft(await shardline(url, n, body, 2, streams / 2))],
    ['shardline raw, 1 shard', async (url) => withTtft(await shardline(url, n, body, 1, streams, 'raw'))],
    ['shardline raw, 2 shards', async (url) => withTtft(await shardline(url, n, body, 2, streams / 2, 'raw'))],
  ]) {
    const sim = await startSimProcess(profile);
    try {
      await warmSim(sim.url);
      const r = await fn(sim.url);
      const server = await (await fetch(`${sim.url}/sim/timings`)).json();
      const epoch = server.epochOffsetMs;
      // The first wave opens every connection at once; later waves reuse them (steady state).
      // Only this client's requests: the warm-up's are in the simulator's timings too.
      const byArrival = server.timings.filter((t) => r.clientTtft.has(t.id)).sort((a, b) => a.ioTurnMs - b.ioTurnMs);
      const added = [];
      const steady = [];
      // Where steady-state client-added time goes (shardline only: its events carry epoch times,
      // as does the simulator's clock once offset): attempt start → server arrival, and server's
      // first-token write → the client's first_token event.
      const up = [];
      const down = [];
      byArrival.forEach((t, i) => {
        const c = r.clientTtft.get(t.id);
        // The server's own TTFT runs from the start of the loop turn that read the request (its parse
        // queue behind other requests is server time), see RequestTiming.ioTurnMs.
        const a = c - (t.firstTokenMs - t.ioTurnMs);
        added.push(a);
        if (i < streams) return;
        steady.push(a);
        const at = r.clientTimes?.get(t.id);
        if (at) {
          up.push(t.ioTurnMs + epoch - at.start);
          down.push(at.first - (t.firstTokenMs + epoch));
        }
      });
      up.sort((a, b) => a - b);
      down.sort((a, b) => a - b);
      added.sort((a, b) => a - b);
      steady.sort((a, b) => a - b);
      results.push({ name, r, added });
      console.log(row(name, r));
      console.log(
        `${''.padEnd(30)} client-added TTFT: all p50 ${fmt(pct(added, 50), 1)} ms, p99 ${fmt(pct(added, 99), 1)} ms ` +
          `(n=${added.length}); ` +
          `after the first wave p50 ${fmt(pct(steady, 50), 1)} ms, p99 ${fmt(pct(steady, 99), 1)} ms ` +
          `(n=${steady.length})`,
      );
      if (r.reading) {
        console.log(`${''.padEnd(30)} socket reads per token ${fmt(r.reading.readsPerToken, 2)}`);
      }
      if (up.length) {
        console.log(
          `${''.padEnd(30)} of which: request start → server's read turn p50 ${fmt(pct(up, 50), 1)} p99 ` +
            `${fmt(pct(up, 99), 1)} ms; ` +
            `server first-token write → client first_token p50 ${fmt(pct(down, 50), 1)} p99 ` +
            `${fmt(pct(down, 99), 1)} ms`,
        );
      }
    } finally {
      sim.stop();
    }
  }
}

/**
 * A fresh simulator runs its first requests through cold (unoptimized) code, and the paced runs
 * measure the client's first wave against it: warm it up first, over connections closed before
 * the measured run, so no client pays for the server's JIT warm-up.
 */
async function warmSim(url, n = 2048) {
  const pool = new Pool(url, { connections: 64 });
  let next = 0;
  const one = async (i) => {
    const res = await pool.request({
      path: '/v1/chat/completions',
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'sim',
        messages: [{ role: 'user', content: `warm ${i}` }],
        max_tokens: 2,
        stream: i % 2 === 0,
        stream_options: { include_usage: true },
      }),
    });
    await res.body.text();
  };
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < n) await one(next++);
    }),
  );
  await pool.close();
}

// Client TTFT per server request id: first_token − attempt_start of the successful attempt.
function withTtft(r) {
  const starts = new Map();
  const firsts = new Map();
  for (const e of r.events) {
    if (e.type === 'attempt_start') starts.set(`${e.id}#${e.attempt}`, e.ts);
    if (e.type === 'first_token') firsts.set(`${e.id}#${e.attempt}`, e.ts);
  }
  const timesById = new Map();
  for (const [k, t] of firsts) timesById.set(k.slice(0, k.lastIndexOf('#')), { start: starts.get(k), first: t });
  const ttft = new Map();
  const times = new Map();
  for (const line of readFileSync(join(r.out, 'results.jsonl'), 'utf8').split('\n')) {
    if (!line) continue;
    const res = JSON.parse(line);
    const at = timesById.get(res.custom_id);
    ttft.set(res.response.request_id, at.first - at.start);
    times.set(res.response.request_id, at);
  }
  return { ...r, clientTtft: ttft, clientTimes: times };
}

console.log(`shardline runner bench — node ${process.version}, ${new Date().toISOString()}`);
if (values.scenario === 'all' || values.scenario === 'throughput') await throughput();
if (values.scenario === 'all' || values.scenario === 'paced') await paced();
