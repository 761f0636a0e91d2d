#!/usr/bin/env node
// What read holds (`--read-coalesce-ms`, raw transport) buy and cost: no hold, a fixed 50 ms hold
// and `auto` (the default) side by side, alternating within each round, against the simulator in
// its own process, one shard (and two for the paced streams).
//
//   node bench/read-hold.mjs [--rounds 3] [--paced-requests 2048] [--fast-requests 8000]
//
// paced: every token its own SSE chunk 10 ms apart, 512 concurrent streams of 50–150 tokens (where
//   a socket read per token is most of a shard's CPU). fast: the `fast` profile, 256-token answers
//   written 16 tokens per write, concurrency 64 (reads already carry many tokens; a hold only
//   delays each stream's end). Reports requests/s, completion tokens/min, client CPU µs per token
//   (coordinator + shard), socket reads per token and the share of shard gauges with a hold on.
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { run } from '../dist/index.js';
import { startSimProcess } from './sim-process.mjs';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    'paced-requests': { type: 'string', default: '2048' },
    'fast-requests': { type: 'string', default: '8000' },
  },
});
const rounds = Number(values.rounds);
const work = mkdtempSync(join(tmpdir(), 'sl-hold-'));
const fmt = (x, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

function writeInput(name, n, body) {
  const path = join(work, `${name}.jsonl`);
  writeFileSync(path, `${Array.from({ length: n }, (_, i) => JSON.stringify({ custom_id: `r${i}`, body: { messages: [{ role: 'user', content: `q ${i}` }], stream: true, ...body(i) } })).join('\n')}\n`);
  return path;
}

const pacedProfile = join(work, 'paced.yaml');
writeFileSync(pacedProfile, 'base: fast\nname: paced\ntokens_per_step: 1\nstep_ms_base: 10\nstep_ms_per_seq: 0\nprefill_ms_base: 0\n');
const scenarios = [
  { name: `paced: 512 streams × 50–150 tokens, a chunk per token 10 ms apart, ${values['paced-requests']} requests`, profile: pacedProfile, shards: 1, concurrency: 512, n: Number(values['paced-requests']), body: (i) => ({ max_tokens: 50 + ((i * 7919) % 101) }) },
  // The same streams over two shards: each loop is about half as busy, the machine no less.
  { name: `paced, 2 shards × 256 streams, ${values['paced-requests']} requests`, profile: pacedProfile, shards: 2, concurrency: 256, n: Number(values['paced-requests']), body: (i) => ({ max_tokens: 50 + ((i * 7919) % 101) }) },
  { name: `fast: 256-token answers, 16 tokens per write, concurrency 64, ${values['fast-requests']} requests`, profile: 'fast', shards: 1, concurrency: 64, n: Number(values['fast-requests']), body: () => ({ max_tokens: 256 }) },
];
const variants = [
  ['no hold (0)', 0],
  ['50 ms always', 50],
  ['auto (default)', 'auto'],
];

async function once(url, input, n, shards, concurrency, readCoalesceMs) {
  const out = join(work, `out-${Math.random().toString(36).slice(2)}`);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const s = await run({ input, endpoint: `${url}/v1`, out, shards, concurrency, transport: 'raw', readCoalesceMs, progress: 'off' });
  const wallS = (performance.now() - t0) / 1000;
  const coord = process.cpuUsage(cpu0);
  if (s.requests.succeeded !== n) throw new Error(`${readCoalesceMs}: ${s.requests.succeeded}/${n} succeeded`);
  let shardUs = 0;
  let reads = 0;
  let gauges = 0;
  let held = 0;
  for (const f of readdirSync(join(out, 'events'))) {
    for (const line of readFileSync(join(out, 'events', f), 'utf8').split('\n')) {
      if (!line) continue;
      const e = JSON.parse(line);
      if (e.type === 'shard_end') {
        shardUs += (e.cpu_user_ms + e.cpu_system_ms) * 1000;
        reads += e.socket_reads;
      } else if (e.type === 'gauge' && e.shard >= 0) {
        gauges++;
        if (e.read_hold_ms > 0) held++;
      }
    }
  }
  const tokens = s.tokens.completion;
  return { rps: n / wallS, tpm: (tokens / wallS) * 60, cpu: (coord.user + coord.system + shardUs) / tokens, rpt: reads / tokens, held: gauges ? held / gauges : 0 };
}

console.log(`shardline read-hold bench — node ${process.version}, ${new Date().toISOString()}, ${rounds} rounds, raw transport`);
for (const [k, sc] of scenarios.entries()) {
  const input = writeInput(`scenario-${k}`, sc.n, sc.body);
  const sim = await startSimProcess(sc.profile);
  console.log(`\n## ${sc.name}`);
  const rows = new Map(variants.map(([name]) => [name, []]));
  try {
    await once(sim.url, input, sc.n, sc.shards, sc.concurrency, 0); // warm-up: JIT on both sides, left out
    // Variants alternate within each round, and each round starts with the next one, so drift in
    // the machine and what a run leaves behind (sockets in TIME_WAIT, the server's heap) hit all alike.
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < variants.length; k++) {
        const [name, setting] = variants[(r + k) % variants.length];
        rows.get(name).push(await once(sim.url, input, sc.n, sc.shards, sc.concurrency, setting));
      }
    }
  } finally {
    sim.stop();
  }
  const base = rows.get(variants[0][0]);
  const mean = (xs, k) => xs.reduce((a, x) => a + x[k], 0) / xs.length;
  for (const [name, xs] of rows) {
    console.log(
      `${name.padEnd(16)} ${fmt(mean(xs, 'rps')).padStart(6)} req/s ${fmt(mean(xs, 'tpm')).padStart(11)} tok/min (${fmt((mean(xs, 'tpm') / mean(base, 'tpm')) * 100, 1)}%)` +
        `  ${fmt(mean(xs, 'cpu'), 2).padStart(6)} µs CPU/token (${fmt((mean(xs, 'cpu') / mean(base, 'cpu')) * 100, 0)}%)  reads/token ${fmt(mean(xs, 'rpt'), 2)}  held ${fmt(mean(xs, 'held') * 100, 0)}%` +
        `   (runs: ${xs.map((x) => `${fmt(x.cpu, 1)} µs`).join(', ')})`,
    );
  }
}
