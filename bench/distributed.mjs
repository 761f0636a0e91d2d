#!/usr/bin/env node
// What Redis costs: requests/s and client CPU per request for one local shard (no Redis), one
// worker over Redis, and three workers over Redis, side by side in one run against the `fast`
// simulator; then how many results/s the coordinator's side drains from the Redis stream into
// results.jsonl on its own (results pre-loaded, no workers), the ceiling of a distributed run.
//
//   node bench/distributed.mjs [--requests 100000] [--concurrency 64] [--drain 200000]
//
// Client CPU is every shardline process's user+system time (coordinator, workers, shards): the
// process tree under each run polled from /proc every 50 ms, keeping each process's last reading
// (reaped-children time would miss shards that outlive their parent by a moment). The simulator and
// redis-server run for the whole bench and are not counted (Redis's own CPU is shown apart).
// Targets (issue #12): Redis adds ≤ 10% client CPU per request at chunk size 256; the coordinator
// drains ≥ 20,000 results/s. Needs redis-server (Debian's package).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startSimProcess } from './sim-process.mjs';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '100000' },
    concurrency: { type: 'string', default: '64' },
    drain: { type: 'string', default: '200000' },
  },
});
const CLI = new URL('../dist/cli/main.js', import.meta.url).pathname;
const TICK_MS = 1000 / Number(spawnSync('getconf', ['CLK_TCK']).stdout.toString().trim() || 100);

/** CPU ms of every process in the tree under `rootPid`, by pid, read from /proc now. */
function treeCpuMs(rootPid) {
  const stats = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // After the command name: ppid is f[1]; utime and stime (fields 14 and 15) are f[11], f[12].
      stats.set(Number(d), { ppid: Number(f[1]), ms: (Number(f[11]) + Number(f[12])) * TICK_MS });
    } catch {
      // gone already
    }
  }
  const tree = new Map();
  const members = new Set([rootPid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, st] of stats) {
      if (members.has(st.ppid) && !members.has(pid)) {
        members.add(pid);
        grew = true;
      }
    }
  }
  for (const pid of members) if (stats.has(pid)) tree.set(pid, stats.get(pid).ms);
  return tree;
}

/** Run shardline, polling its process tree's CPU; resolves with the wall time and total CPU ms. */
function measuredRun(args) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [CLI, ...args], { stdio: 'ignore' });
    const last = new Map();
    const poll = setInterval(() => {
      for (const [pid, ms] of treeCpuMs(child.pid)) last.set(pid, ms);
    }, 50);
    const limit = setTimeout(() => child.kill('SIGKILL'), 5 * 60_000);
    child.on('exit', (code) => {
      clearInterval(poll);
      clearTimeout(limit);
      if (code !== 0) return reject(new Error(`shardline run exited ${code}`));
      resolve({ s: (performance.now() - t0) / 1000, cpuMs: [...last.values()].reduce((a, b) => a + b, 0) });
    });
  });
}

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}


const dir = mkdtempSync(join(tmpdir(), 'sl-bench-dist-'));
const port = await freePort();
const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 500));
const redisUrl = `redis://127.0.0.1:${port}`;
const sim = await startSimProcess('fast');
const n = Number(values.requests);
const input = join(dir, 'in.jsonl');
const lines = [];
for (let i = 0; i < n; i++) lines.push(JSON.stringify({ custom_id: `r${i}`, body: { model: 'sim', messages: [{ role: 'user', content: `q ${i}` }], max_tokens: 8, stream: false } }));
writeFileSync(input, `${lines.join('\n')}\n`);

const { Redis } = await import('ioredis');
const rc = new Redis(redisUrl);
const redisCpuMs = async () => {
  const info = await rc.info('cpu');
  return (Number(/used_cpu_user:([\d.]+)/.exec(info)[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)[1])) * 1000;
};

const configs = [
  { name: '1 local shard (no Redis)', args: [] },
  { name: '1 worker over Redis', args: ['--redis', redisUrl, '--local-workers', '1'] },
  { name: '3 workers over Redis', args: ['--redis', redisUrl, '--local-workers', '3'] },
];
const rows = [];
let drain;
try {
  for (const c of configs) {
    const out = join(dir, `out-${rows.length}`);
    const r0 = await redisCpuMs();
    const { s, cpuMs } = await measuredRun(['run', input, '--endpoint', `${sim.url}/v1`, '--out', out, '--concurrency', values.concurrency, '--progress', 'off', ...c.args]);
    rows.push({ name: c.name, s, cpuUsPerReq: (cpuMs * 1000) / n, redisUsPerReq: (((await redisCpuMs()) - r0) * 1000) / n });
    rmSync(out, { recursive: true, force: true });
  }
  drain = await measureDrain();
} finally {
  await rc.quit();
  sim.stop();
  redis.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}

/** The coordinator's side alone: results pre-loaded in the run's stream, drained into results.jsonl. */
async function measureDrain() {
  const { RunChannel } = await import('../dist/runner/redis/run-channel.js');
  const { DirResultSink } = await import('../dist/runner/dir-result-sink.js');
  const { IdInterner } = await import('../dist/events/id-interner.js');
  const channel = new RunChannel(redisUrl);
  const runId = 'drain-bench';
  const total = Number(values.drain);
  // A result line as a `fast`-profile run writes it (8-token answer).
  const line = '{"id":"batch_req_x","custom_id":"ID","response":{"status_code":200,"request_id":"c","body":{"choices":[{"index":0,"message":{"role":"assistant","content":" the of and to in is that for"},"finish_reason":"length"}],"usage":{"prompt_tokens":8,"completion_tokens":8,"total_tokens":16}}},"error":null}';
  for (let i = 0; i < total; i += 1000) {
    await channel.sendResults(runId, Array.from({ length: Math.min(1000, total - i) }, (_, k) => ({ id: `r${i + k}`, line: line.replace('ID', `r${i + k}`) })));
  }
  const sink = new DirResultSink(join(dir, 'drain'));
  const seen = new IdInterner(1 << 16);
  const t0 = performance.now();
  let after = '0';
  let got = 0;
  while (got < total) {
    const batch = await channel.readResults(runId, after, 500);
    for (const r of batch) {
      seen.internString(r.id);
      sink.writeResult(r.id, r.line);
      got++;
    }
    sink.flush();
    after = batch[batch.length - 1].streamId;
    await channel.trimResults(runId, after);
  }
  const s = (performance.now() - t0) / 1000;
  await sink.close();
  await channel.close();
  return { total, s };
}

const fmt = (x, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
console.log(`shardline distributed bench — node ${process.version}, ${new Date().toISOString()}, ${fmt(n)} requests, fast profile, 8-token answers, concurrency ${values.concurrency} per shard, chunks of 256`);
for (const r of rows) console.log(`${r.name.padEnd(26)} ${fmt(n / r.s).padStart(7)} req/s   client CPU ${fmt(r.cpuUsPerReq).padStart(5)} µs/req   Redis CPU ${fmt(r.redisUsPerReq).padStart(4)} µs/req`);
const extra = rows[1].cpuUsPerReq / rows[0].cpuUsPerReq - 1;
console.log(`Redis adds ${fmt(extra * 100, 1)}% client CPU per request (1 worker vs 1 local shard; target ≤ 10%): ${extra <= 0.1 ? 'met' : 'not met'}`);
console.log(`coordinator drains ${fmt(drain.total / drain.s)} results/s from the stream into results.jsonl (target ≥ 20,000): ${drain.total / drain.s >= 20000 ? 'met' : 'not met'}`);
