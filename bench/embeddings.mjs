#!/usr/bin/env node
// An embeddings job: shardline vs the official `openai` client's embeddings.create driven by p-limit,
// side by side in one run, same concurrency, against the simulator in its own process. Client CPU
// per input is the figure (the server's time is the same for both); rounds alternate the two.
//
//   node bench/embeddings.mjs [--requests 10000] [--inputs 16] [--concurrency 64] [--dimensions 32] [--rounds 3]
//                             [--encoding base64|float]
//
// --encoding: what both clients ask the server for. base64 (the default) is what the openai client
// sends unless told otherwise, so both read the same bytes; with float the openai client asks for
// float too.
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import OpenAI from 'openai';
import pLimit from 'p-limit';
import { run } from '../dist/index.js';
import { startSimProcess } from './sim-process.mjs';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '10000' },
    inputs: { type: 'string', default: '16' },
    concurrency: { type: 'string', default: '64' },
    dimensions: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
    encoding: { type: 'string', default: 'base64' },
  },
});
const n = Number(values.requests);
const k = Number(values.inputs);
const c = Number(values.concurrency);
const dims = Number(values.dimensions);
const encoding = values.encoding;
const work = mkdtempSync(join(tmpdir(), 'sl-bench-emb-'));
const inputsOf = (i) => Array.from({ length: k }, (_, j) => `document ${i} part ${j}: some text to embed here`);

function writeInput() {
  const path = join(work, `in-${Math.random().toString(36).slice(2)}.jsonl`);
  const lines = [];
  for (let i = 0; i < n; i++)
    lines.push(
      JSON.stringify({
        custom_id: `e${i}`,
        method: 'POST',
        url: '/v1/embeddings',
        body: { model: 'sim', input: inputsOf(i), dimensions: dims, encoding_format: encoding },
      }),
    );
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

async function shardline(url, input) {
  const out = join(work, `out-${Math.random().toString(36).slice(2)}`);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const s = await run({ input, endpoint: `${url}/v1`, out, concurrency: c, progress: 'off' });
  const wallS = (performance.now() - t0) / 1000;
  const coord = process.cpuUsage(cpu0);
  let shardUs = 0;
  for (const f of readdirSync(join(out, 'events')))
    for (const line of readFileSync(join(out, 'events', f), 'utf8').split('\n'))
      if (line.includes('"shard_end"')) {
        const e = JSON.parse(line);
        shardUs += (e.cpu_user_ms + e.cpu_system_ms) * 1000;
      }
  if (s.requests.succeeded !== n) throw new Error(`shardline: ${s.requests.succeeded}/${n} succeeded`);
  return { wallS, cpuUs: coord.user + coord.system + shardUs };
}

async function openaiBaseline(url) {
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'bench', maxRetries: 0, timeout: 600_000 });
  const limit = pLimit(c);
  let vectors = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: n }, (_, i) =>
      limit(async () => {
        const req = { model: 'sim', input: inputsOf(i), dimensions: dims };
        // Left out for base64: the client then asks for base64 itself and decodes the vectors, its default path.
        const res = await client.embeddings.create(encoding === 'float' ? { ...req, encoding_format: 'float' } : req);
        vectors += res.data.length;
      }),
    ),
  );
  const wallS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (vectors !== n * k) throw new Error(`openai: ${vectors}/${n * k} vectors`);
  return { wallS, cpuUs: cpu.user + cpu.system };
}

const fmt = (x, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const sim = await startSimProcess('fast');
try {
  const input = writeInput();
  const rows = { shardline: [], openai: [] };
  for (let round = 0; round < Number(values.rounds); round++) {
    rows.openai.push(await openaiBaseline(sim.url));
    rows.shardline.push(await shardline(sim.url, input));
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const inputs = n * k;
  console.log(
    `${fmt(n)} embeddings requests × ${k} inputs (${dims} dimensions, ${encoding}), concurrency ${c}, ` +
      `median of ${values.rounds}:`,
  );
  const per = {};
  for (const [name, rs] of Object.entries(rows)) {
    per[name] = median(rs.map((r) => r.cpuUs / inputs));
    const wall = median(rs.map((r) => r.wallS));
    console.log(
      `  ${name.padEnd(10)} ${fmt(inputs / wall).padStart(8)} inputs/s  ${fmt(per[name], 2).padStart(7)} µs CPU/input`,
    );
  }
  console.log(`  openai client spends ${fmt(per.openai / per.shardline, 2)}× shardline's client CPU per input`);
} finally {
  sim.stop();
}
