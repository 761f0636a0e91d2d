#!/usr/bin/env node
// A fleet on one box: a distributed run over three simulator instances (three --endpoint) with many
// workers, a third of them killed with SIGKILL and one simulator stopped mid-run. Prints the
// coordinator's result rate, the most attempts in flight at once across every shard (from the merged
// events) against --global-concurrency, and whether results.jsonl has exactly one line per input line.
//
//   node bench/fleet.mjs [--workers 32] [--requests 60000] [--global 192] [--concurrency 8]
//
// Each worker runs a shard per endpoint (shard numbers are run-wide, shard i sends to endpoint i mod 3),
// so a worker whose endpoint goes down hands that endpoint's work to its other shards. Needs redis-server.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startRedisProcess } from './redis-process.mjs';
import { startSimProcess } from './sim-process.mjs';
import { writeChatInput } from './chat-input.mjs';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '32' },
    requests: { type: 'string', default: '60000' },
    global: { type: 'string', default: '192' },
    concurrency: { type: 'string', default: '8' },
  },
});
const CLI = new URL('../dist/cli/main.js', import.meta.url).pathname;
const nWorkers = Number(values.workers);
const n = Number(values.requests);

const dir = mkdtempSync(join(tmpdir(), 'sl-bench-fleet-'));
const redis = await startRedisProcess('bench/fleet.mjs', dir);
const redisUrl = redis.url;
const sims = await Promise.all([1, 2, 3].map(() => startSimProcess('fast')));
const input = writeChatInput(join(dir, 'in.jsonl'), n, { maxTokens: 8, stream: false });
const out = join(dir, 'out');
const children = [];
const start = (args, name) => {
  const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  p.name = name;
  p.err = '';
  p.stderr.on('data', (d) => (p.err = (p.err + d).slice(-4000)));
  children.push(p);
  return p;
};
const exited = (p) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', r)));
const resultLines = () => {
  try {
    return readFileSync(join(out, 'results.jsonl'), 'utf8').split('\n').length - 1;
  } catch {
    return 0;
  }
};

let killedWorkers = 0;
let report;
try {
  const t0 = performance.now();
  const endpoints = sims.flatMap((s) => ['--endpoint', `${s.url}/v1`]);
  const coord = start(
    [
      'run',
      input,
      ...endpoints,
      '--out',
      out,
      '--redis',
      redisUrl,
      '--global-concurrency',
      values.global,
      '--progress',
      'off',
    ],
    'coordinator',
  );
  const workers = Array.from({ length: nWorkers }, (_, i) =>
    start(['worker', '--redis', redisUrl, '--out', out, '--once', '--concurrency', values.concurrency], `worker ${i}`),
  );
  // Mid-run: a third of the workers killed, one endpoint gone.
  for (;;) {
    await new Promise((r) => setTimeout(r, 200));
    if (resultLines() >= n * 0.3 || coord.exitCode !== null) break;
  }
  const tKill = performance.now();
  const killEpochMs = Date.now();
  for (const w of workers.slice(0, Math.floor(nWorkers / 3))) {
    w.kill('SIGKILL');
    killedWorkers++;
  }
  sims[1].stop();
  await exited(coord);
  const wallS = (performance.now() - t0) / 1000;
  if (coord.exitCode !== 0) console.error(`coordinator exited ${coord.exitCode}:\n${coord.err}`);
  const ids = readFileSync(join(out, 'results.jsonl'), 'utf8').split('\n').filter(Boolean);
  const unique = new Set(ids.map((l) => JSON.parse(l).custom_id));
  let failed = 0;
  for (const l of ids) if (JSON.parse(l).error) failed++;
  // The most attempts in flight at once, every shard's events merged. A killed worker's shards die with it
  // (a shard exits when its worker's channel closes) without writing the ends of their open attempts: those
  // end at the kill, not never (counted open for good, they made the bound look broken after the kill).
  const marks = [];
  let paused = 0;
  for (const f of readdirSync(join(out, 'events'))) {
    const open = new Set();
    let ended = false;
    for (const line of readFileSync(join(out, 'events', f), 'utf8').split('\n')) {
      if (!line) continue;
      if (line.includes('"attempt_start"')) {
        const e = JSON.parse(line);
        marks.push([e.ts, 1]);
        open.add(`${e.id}/${e.attempt}`);
      } else if (line.includes('"attempt_end"')) {
        const e = JSON.parse(line);
        marks.push([e.ts, -1]);
        open.delete(`${e.id}/${e.attempt}`);
      } else if (line.includes('"paused"')) paused++;
      else if (line.includes('"shard_end"')) ended = true;
    }
    if (!ended) for (let i = 0; i < open.size; i++) marks.push([killEpochMs, -1]);
  }
  marks.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let inFlight = 0;
  let maxInFlight = 0;
  for (const [, d] of marks) maxInFlight = Math.max(maxInFlight, (inFlight += d));
  report = { wallS, killS: (tKill - t0) / 1000, lines: ids.length, unique: unique.size, failed, maxInFlight, paused };
} finally {
  for (const c of children) c.kill('SIGKILL');
  for (const s of sims) s.stop();
  redis.stop();
}
const fmt = (x, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
console.log(
  `shardline fleet bench — node ${process.version}, ${new Date().toISOString()}: ${fmt(n)} requests, ${nWorkers} ` +
    `workers (a shard per endpoint each), 3 simulator instances (fast), --global-concurrency ${values.global}, ` +
    `--concurrency ${values.concurrency} per shard`,
);
console.log(
  `killed ${killedWorkers} workers (SIGKILL) and stopped endpoint 2 at ${fmt(report.killS, 1)} s ` +
    '(30% of the results in)',
);
console.log(`coordinator result rate    ${fmt(n / report.wallS)} results/s (${fmt(report.wallS, 1)} s for the run)`);
console.log(
  `global bound               at most ${fmt(report.maxInFlight)} attempts in flight across all shards (merged ` +
    `events; bound ${values.global}): ${report.maxInFlight <= Number(values.global) ? 'held' : 'NOT held'}`,
);
console.log(
  `results.jsonl              ${fmt(report.lines)} lines, ${fmt(report.unique)} distinct custom_ids for ${fmt(n)} ` +
    `input lines, ${fmt(report.failed)} failed; ${fmt(report.paused)} attempts paused on the stopped endpoint: ` +
    `${report.lines === n && report.unique === n ? 'exactly one result per line' : 'NOT one result per line'}`,
);
rmSync(dir, { recursive: true, force: true });
