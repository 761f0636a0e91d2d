#!/usr/bin/env node
// What Redis costs: requests/s and client CPU per request for one local shard (no Redis), one
// worker over Redis, and three workers over Redis, side by side in one run against the `fast`
// simulator; then how many results/s the coordinator's side drains from the Redis stream into
// results.jsonl on its own (results pre-loaded, no workers), the ceiling of a distributed run.
//
//   node bench/distributed.mjs [--requests 100000] [--concurrency 64] [--drain 200000] [--rounds 3]
//                              [--set redis|per-core|per-core-aa] [--order rotate|mirror|together]
//
// --set per-core-aa: the local run against itself, the floor under what an --order can tell.
// --set per-core: a local run with one shard per core against a distributed run with one worker per core
// on the same box (issue #25's targets: ≤ 5% more client CPU per request, ≥ 90% of the request rate).
//
// Each round runs the setups back to back, in a rotated order (--order rotate, the default of --set
// redis), or mirrored: A B B A, a round's figure for a setup being the mean of its two runs (--order
// mirror, the default of --set per-core); figures are medians over the rounds, and the Redis overhead
// is the median of each round's own ratio (this 2-core VM's speed drifts by tens of percent between
// minutes, so only neighbours are compared). --order together starts a round's setups at the same
// moment, so each sees the machine as the other does, second by second: a round's CPU figures are then
// taken over the stretch in which every setup was between 20% and 80% of its results (each on half the
// cores: its CPU a request, not its rate, is the figure to read).
// Client CPU is every shardline process's user+system time (coordinator, workers, shards): the
// process tree under each run polled from /proc every 100 ms, keeping each process's last reading
// (reaped-children time would miss shards that outlive their parent by a moment). The simulator and
// redis-server run for the whole bench and are not counted (Redis's own CPU is shown apart).
// "Per request" is the steady state (see measuredRun); "all in" divides a whole run's CPU, start-up
// included, by its requests. Targets (issue #12): Redis adds ≤ 10% client CPU per request at chunk
// size 256 (judged on the steady state); the coordinator drains ≥ 20,000 results/s. Needs
// redis-server (Debian's package).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { procStats, treeOf } from './proc-stat.mjs';
import { startRedisProcess } from './redis-process.mjs';
import { startSimProcess } from './sim-process.mjs';
import { writeChatInput } from './chat-input.mjs';
import { drainResults } from './drain-results.mjs';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '100000' },
    concurrency: { type: 'string', default: '64' },
    drain: { type: 'string', default: '200000' },
    rounds: { type: 'string', default: '3' },
    set: { type: 'string', default: 'redis' },
    order: { type: 'string' },
  },
});
const CLI = new URL('../dist/cli/main.js', import.meta.url).pathname;
if (!['redis', 'per-core', 'per-core-aa'].includes(values.set)) {
  console.error(`bench/distributed.mjs: --set must be redis, per-core or per-core-aa, got ${values.set}`);
  process.exit(2);
}
if (!['mirror', 'rotate', 'together', undefined].includes(values.order)) {
  console.error(`bench/distributed.mjs: --order must be mirror, rotate or together, got ${values.order}`);
  process.exit(2);
}

const roles = new Map();
/** What a process is, from its command line (read once per pid). */
function roleOf(pid) {
  let role = roles.get(pid);
  if (!role) {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    role = cmd.includes('worker')
      ? 'worker'
      : cmd.some((a) => a.endsWith('shard-main.js'))
        ? 'shard'
        : cmd.includes('run')
          ? 'coordinator'
          : undefined;
    // Not known yet (a fork before its exec): ask again next time.
    if (role) roles.set(pid, role);
  }
  return role ?? 'other';
}

/** Every process in the tree under `rootPid`, by pid: its CPU ms so far and its kind, read from /proc now. */
function treeCpuMs(rootPid) {
  const stats = procStats();
  const tree = new Map();
  for (const pid of treeOf(rootPid, stats)) tree.set(pid, { ms: stats.get(pid).cpuMs, role: roleOf(pid) });
  return tree;
}

/**
 * Run shardline, polling its process tree's CPU and the size of results.jsonl; resolves with the
 * wall time, the total CPU ms (each process's last reading), and the steady-state CPU per request:
 * the tree's CPU over the stretch in which results 20% to 80% were written, divided by those
 * results. That slope leaves out what a run costs whatever its size (processes starting and
 * warming up, Redis connections, BullMQ loading its scripts, the drain at the end).
 */
function measuredRun(args, out, n) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [CLI, ...args], { stdio: 'ignore' });
    const last = new Map();
    const marks = [];
    const resultsPath = join(out, 'results.jsonl');
    const poll = setInterval(() => {
      const tree = treeCpuMs(child.pid);
      for (const [pid, st] of tree) last.set(pid, st);
      let bytes = 0;
      try {
        bytes = statSync(resultsPath).size;
      } catch {
        // not yet written
      }
      const roleMs = {};
      for (const { role } of last.values()) roleMs[role] = 0;
      for (const { role, ms } of last.values()) roleMs[role] += ms;
      marks.push({ t: performance.now(), bytes, cpuMs: [...tree.values()].reduce((a, b) => a + b.ms, 0), roleMs });
    }, 100);
    const limit = setTimeout(() => child.kill('SIGKILL'), 5 * 60_000);
    child.on('exit', (code) => {
      clearInterval(poll);
      clearTimeout(limit);
      if (code !== 0) return reject(new Error(`shardline run exited ${code}`));
      const byRole = {};
      for (const { role, ms } of last.values()) byRole[role] = (byRole[role] ?? 0) + ms;
      // Result lines are near enough the same length for bytes to stand for a count.
      const total = statSync(resultsPath).size;
      const a = marks.find((m) => m.bytes >= 0.2 * total);
      const b = marks.find((m) => m.bytes >= 0.8 * total);
      const steadyUs =
        a && b && b.bytes > a.bytes ? ((b.cpuMs - a.cpuMs) * 1000) / (((b.bytes - a.bytes) / total) * n) : NaN;
      const steadyRate = a && b && b.t > a.t ? (((b.bytes - a.bytes) / total) * n) / ((b.t - a.t) / 1000) : NaN;
      const steadyByRole = {};
      if (a && b && b.bytes > a.bytes)
        for (const role of Object.keys(b.roleMs))
          steadyByRole[role] =
            (((b.roleMs[role] ?? 0) - (a.roleMs[role] ?? 0)) * 1000) / (((b.bytes - a.bytes) / total) * n);
      resolve({
        s: (performance.now() - t0) / 1000,
        marks,
        total,
        steadyByRole,
        cpuMs: [...last.values()].reduce((a, b) => a + b.ms, 0),
        steadyUs,
        steadyRate,
        byRole,
      });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'sl-bench-dist-'));
const redis = await startRedisProcess('bench/distributed.mjs', dir, ['--appendonly', 'no']);
const redisUrl = redis.url;
const sim = await startSimProcess('fast');
const n = Number(values.requests);
const input = writeChatInput(join(dir, 'in.jsonl'), n, { maxTokens: 8, stream: false });

const { Redis } = await import('ioredis');
const rc = new Redis(redisUrl);
const redisCpuMs = async () => {
  const info = await rc.info('cpu');
  return (Number(/used_cpu_user:([\d.]+)/.exec(info)[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)[1])) * 1000;
};

const cores = (await import('node:os')).availableParallelism();
const perCore = values.set === 'per-core' || values.set === 'per-core-aa';
const local = { name: `${cores} local shards (no Redis)`, args: ['--shards', String(cores)] };
const configs = perCore
  ? [
      values.set === 'per-core-aa' ? { ...local, name: `${local.name}, A` } : local,
      values.set === 'per-core-aa'
        ? { ...local, name: `${local.name}, B` }
        : { name: `${cores} workers over Redis`, args: ['--redis', redisUrl, '--local-workers', String(cores)] },
    ]
  : [
      { name: '1 local shard (no Redis)', args: [] },
      { name: '1 worker over Redis', args: ['--redis', redisUrl, '--local-workers', '1'] },
      { name: '3 workers over Redis', args: ['--redis', redisUrl, '--local-workers', '3'] },
    ];
const rounds = Number(values.rounds);
// Per-core rounds are mirrored by default: its two setups differ by a few percent on a VM whose speed
// moves by tens of percent between minutes (rotated rounds ranged −17% to +42%).
const order = values.order ?? (perCore ? 'mirror' : 'rotate');
const mirror = order === 'mirror';
const together = order === 'together';
/** samples[config][round] */
const samples = configs.map(() => []);
let drain;
try {
  for (let round = 0; round < rounds; round++) {
    // Rotated, or mirrored (A B B A): each setup then runs twice a round, once either side of the
    // other's runs, and the round takes their mean, so a machine that speeds up or slows down across a
    // round weighs on both setups alike.
    const rotated = configs.map((_, k) => (k + round) % configs.length);
    const runs = configs.map(() => []);
    const args = (c, out) => [
      'run',
      input,
      '--endpoint',
      `${sim.url}/v1`,
      '--out',
      out,
      '--concurrency',
      values.concurrency,
      '--progress',
      'off',
      ...c.args,
    ];
    const record = (ci, r, redisMs) => {
      const c = configs[ci];
      runs[ci].push({
        s: r.s,
        cpuUsPerReq: (r.cpuMs * 1000) / n,
        marginalUs: r.steadyUs,
        steadyRate: r.steadyRate,
        fixedS: (r.cpuMs - (r.steadyUs * n) / 1000) / 1000,
        redisUsPerReq: (redisMs * 1000) / n,
        byRole: r.byRole,
        steadyByRole: r.steadyByRole,
      });
      // Each run as it ends (stderr): a round far from the others shows which side moved.
      const parts = Object.entries(r.steadyByRole).map(([role, us]) => `${role} ${us.toFixed(1)}`);
      process.stderr.write(
        `round ${round + 1} ${c.name}: ${r.steadyUs.toFixed(1)} µs/req steady (${parts.join(', ')}), ` +
          `${Math.round(r.steadyRate)} req/s\n`,
      );
    };
    if (together) {
      const outs = configs.map((_, ci) => join(dir, `out-${round}-${ci}`));
      const r0 = await redisCpuMs();
      // Started in the round's rotated order: the one spawned second has the first's start-up to itself.
      const started = new Map(rotated.map((ci) => [ci, measuredRun(args(configs[ci], outs[ci]), outs[ci], n)]));
      const rs = await Promise.all(configs.map((_, ci) => started.get(ci)));
      const redisMs = (await redisCpuMs()) - r0;
      const common = commonSteady(rs);
      rs.forEach((r, ci) => record(ci, { ...r, ...common[ci] }, configs[ci].args.includes('--redis') ? redisMs : 0));
      for (const out of outs) rmSync(out, { recursive: true, force: true });
    } else {
      const sequence = mirror ? [...rotated, ...[...rotated].reverse()] : rotated;
      for (const ci of sequence) {
        const out = join(dir, `out-${round}-${ci}-${runs[ci].length}`);
        const r0 = await redisCpuMs();
        const r = await measuredRun(args(configs[ci], out), out, n);
        record(ci, r, (await redisCpuMs()) - r0);
        rmSync(out, { recursive: true, force: true });
      }
    }
    runs.forEach((r, ci) => (samples[ci][round] = meanRun(r)));
  }
  if (!perCore) drain = await measureDrain();
} finally {
  await rc.quit();
  sim.stop();
  redis.stop();
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Runs that ran at once, measured over the same stretch of time: from when the last of them reached
 * 20% of its results to when the first reached 80% (each run's own CPU and results over that stretch).
 * Without it the faster run's window would end sooner, and the slower would have the machine to
 * itself for part of its own.
 */
function commonSteady(rs) {
  const when = (r, share) => r.marks.find((m) => m.bytes >= share * r.total)?.t ?? NaN;
  const from = Math.max(...rs.map((r) => when(r, 0.2)));
  const to = Math.min(...rs.map((r) => when(r, 0.8)));
  return rs.map((r) => {
    const a = r.marks.find((m) => m.t >= from);
    const b = r.marks.findLast((m) => m.t <= to);
    if (!(to > from) || !a || !b || b.bytes <= a.bytes) return { steadyUs: NaN, steadyRate: NaN, steadyByRole: {} };
    const results = ((b.bytes - a.bytes) / r.total) * n;
    const steadyByRole = {};
    for (const role of Object.keys(b.roleMs))
      steadyByRole[role] = (((b.roleMs[role] ?? 0) - (a.roleMs[role] ?? 0)) * 1000) / results;
    return {
      steadyUs: ((b.cpuMs - a.cpuMs) * 1000) / results,
      steadyRate: results / ((b.t - a.t) / 1000),
      steadyByRole,
    };
  });
}

/** One round's figure for a setup: the mean of its runs in the round, field by field (by process kind too). */
function meanRun(runs) {
  const mean = (f) => runs.reduce((a, r) => a + f(r), 0) / runs.length;
  const byKind = (field) => {
    const out = {};
    for (const role of new Set(runs.flatMap((r) => Object.keys(r[field]))))
      out[role] = mean((r) => r[field][role] ?? 0);
    return out;
  };
  return {
    s: mean((r) => r.s),
    cpuUsPerReq: mean((r) => r.cpuUsPerReq),
    marginalUs: mean((r) => r.marginalUs),
    steadyRate: mean((r) => r.steadyRate),
    fixedS: mean((r) => r.fixedS),
    redisUsPerReq: mean((r) => r.redisUsPerReq),
    byRole: byKind('byRole'),
    steadyByRole: byKind('steadyByRole'),
  };
}

/** The coordinator's side alone: results pre-loaded in the run's stream, drained into results.jsonl. */
async function measureDrain() {
  const total = Number(values.drain);
  const { s } = await drainResults(new URL('../dist', import.meta.url).pathname, redisUrl, join(dir, 'drain'), total);
  return { total, s };
}

const fmt = (x, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
console.log(
  `shardline distributed bench — node ${process.version}, ${new Date().toISOString()}, ${fmt(n)} requests a run, ` +
    `fast profile, 8-token answers, concurrency ${values.concurrency} per shard, chunks of 256–2,048 (by pace)`,
);
const median = (xs) => {
  const a = [...xs].sort((x, y) => x - y);
  return a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
};
console.log(
  `medians of ${rounds} round(s), ${order} order; client CPU by process kind in brackets; per request = steady ` +
    `state (the CPU spent while results 20–80% were written, per result); the rest of a run's CPU is its start and end`,
);
configs.forEach((c, ci) => {
  const runs = samples[ci];
  const roles = [...new Set(runs.flatMap((r) => Object.keys(r.byRole)))];
  const parts = roles
    .map((role) => `${role} ${fmt(median(runs.map((r) => ((r.byRole[role] ?? 0) * 1000) / n)))}`)
    .join(', ');
  const steadyParts = roles
    .map((role) => `${role} ${fmt(median(runs.map((r) => r.steadyByRole[role] ?? 0)))}`)
    .join(', ');
  console.log(
    `${c.name.padEnd(26)} ${fmt(median(runs.map((r) => n / r.s))).padStart(7)} req/s   client CPU ` +
      `${fmt(median(runs.map((r) => r.cpuUsPerReq))).padStart(5)} µs/req all in (${parts}); ` +
      `${fmt(median(runs.map((r) => r.marginalUs))).padStart(5)} µs per request steady (${steadyParts}) + ` +
      `${fmt(median(runs.map((r) => r.fixedS)), 2)} s start and end   Redis CPU ` +
      `${fmt(median(runs.map((r) => r.redisUsPerReq))).padStart(4)} µs/req`,
  );
});
const pct = (xs) => xs.map((x) => `${fmt(x * 100, 1)}%`).join(', ');
if (perCore) {
  const cpu = samples[1].map((r, i) => r.marginalUs / samples[0][i].marginalUs - 1);
  const rate = samples[1].map((r, i) => r.steadyRate / samples[0][i].steadyRate);
  const rateAllIn = samples[1].map((r, i) => samples[0][i].s / r.s);
  console.log(
    `${configs[1].name} vs ${configs[0].name}, steady state: ${fmt(median(cpu) * 100, 1)}% client CPU per request ` +
      `(rounds: ${pct(cpu)}; target ≤ 5%): ${median(cpu) <= 0.05 ? 'met' : 'not met'}; ` +
      `${fmt(median(rate) * 100, 1)}% of the request rate (rounds: ${pct(rate)}; target ≥ 90%): ` +
      `${median(rate) >= 0.9 ? 'met' : 'not met'}; ` +
      `whole runs, start and end included: ${fmt(median(rateAllIn) * 100, 1)}% of the rate`,
  );
  configs.forEach((c, ci) =>
    console.log(`  ${c.name}: ${fmt(median(samples[ci].map((r) => r.steadyRate)))} req/s in the steady state`),
  );
  process.exit(0);
}
const allIn = samples[1].map((r, i) => r.cpuUsPerReq / samples[0][i].cpuUsPerReq - 1);
const perRequest = samples[1].map((r, i) => r.marginalUs / samples[0][i].marginalUs - 1);
const extra = median(perRequest);
console.log(
  `Redis adds ${fmt(extra * 100, 1)}% client CPU per request (1 worker vs 1 local shard, median of rounds: ` +
    `${pct(perRequest)}; target ≤ 10%): ${extra <= 0.1 ? 'met' : 'not met'}`,
);
console.log(`all in, start and end included: ${fmt(median(allIn) * 100, 1)}% (rounds: ${pct(allIn)})`);
console.log(
  `coordinator drains ${fmt(drain.total / drain.s)} results/s from the stream into results.jsonl (target ≥ 20,000): ` +
    `${drain.total / drain.s >= 20000 ? 'met' : 'not met'}`,
);
