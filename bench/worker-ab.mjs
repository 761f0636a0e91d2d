#!/usr/bin/env node
// Two builds of the worker side by side in the same distributed run: one worker from build A, one
// from build B, taking chunks from the same coordinator against the `fast` simulator. Each worker's
// whole-process CPU (user+system, from /usr/bin/time's rusage) is divided by the requests it served
// (its peak RSS is shown beside it, for flags that trade memory for CPU);
// the figure is B's CPU per request over A's. Both workers see the same machine at the same moment,
// so a change of a percent or two shows through the VM's drift, which moves a round of
// `bench/distributed.mjs` by ±15%. The start order alternates between runs: a worker started second
// read 3.6% cheaper than an identical one started first (three pairs); alternated, an A/A run of
// this build against itself read -1.1% ± 0.8% (four runs), the floor under what it can tell.
//
//   node bench/worker-ab.mjs --a <checkout> --b <checkout> [--runs 6] [--requests 200000]
//                            [--a-node-flags "..."] [--b-node-flags "..."]
//
// A checkout is a directory holding a built shardline (its dist/ and node_modules); `--a .` is this
// one. Give the same checkout twice with different --*-node-flags to measure a V8 flag. Needs
// redis-server and /usr/bin/time.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeChatInput } from './chat-input.mjs';
import { checkoutsOrExit, meanAndError } from './ab-stats.mjs';
import { startRedisProcess } from './redis-process.mjs';
import { runShardline, startSimProcess } from './sim-process.mjs';

const { values } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string' },
    runs: { type: 'string', default: '6' },
    requests: { type: 'string', default: '200000' },
    'a-node-flags': { type: 'string', default: '' },
    'b-node-flags': { type: 'string', default: '' },
  },
});
const dist = checkoutsOrExit('bench/worker-ab.mjs', values);
if (spawnSync('/usr/bin/time', ['true']).error) {
  console.error('bench/worker-ab.mjs needs /usr/bin/time (Debian: apt-get install time)');
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), 'sl-bench-ab-'));
const redis = await startRedisProcess('bench/worker-ab.mjs', dir, ['--appendonly', 'no']);
const sim = await startSimProcess('fast');
const n = Number(values.requests);
const input = writeChatInput(join(dir, 'in.jsonl'), n, { maxTokens: 8, stream: false });

/** Start one worker of a build for one run; resolves with its CPU seconds and the requests it served. */
function worker(side, run) {
  const timeFile = join(dir, `time-${side}-${run}`);
  const flags = values[`${side}-node-flags`].split(' ').filter(Boolean);
  const args = ['-f', '%U %S %M', '-o', timeFile, process.execPath, ...flags, join(dist[side], 'cli/main.js')];
  args.push('worker', '--redis', redis.url, '--once', '--out', join(dir, `w-${side}-${run}`));
  const child = spawn('/usr/bin/time', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let said = '';
  child.stdout.on('data', (d) => (said += d));
  child.stderr.on('data', (d) => (said += d));
  const limit = setTimeout(() => child.kill('SIGKILL'), 5 * 60_000);
  return new Promise((resolveRun, reject) =>
    child.on('exit', (code) => {
      clearTimeout(limit);
      const served = /(\d+) succeeded/.exec(said);
      if (code !== 0 || !served) return reject(new Error(`worker ${side} exited ${code}: ${said.slice(-300)}`));
      const [user, sys, rssKb] = readFileSync(timeFile, 'utf8').trim().split(' ').map(Number);
      resolveRun({ cpuS: user + sys, served: Number(served[1]), rssMb: rssKb / 1024 });
    }),
  );
}

const ratios = [];
try {
  for (let run = 0; run < Number(values.runs); run++) {
    const order = run % 2 === 0 ? ['a', 'b'] : ['b', 'a'];
    const started = {};
    for (const side of order) started[side] = worker(side, run);
    // Both are waiting for a run before the coordinator publishes one.
    await new Promise((r) => setTimeout(r, 800));
    const out = join(dir, `out-${run}`);
    const runArgs = ['run', input, '--endpoint', `${sim.url}/v1`, '--out', out, '--concurrency', '64'];
    await runShardline([...runArgs, '--progress', 'off', '--redis', redis.url], { stderr: 'ignore' });
    const a = await started.a;
    const b = await started.b;
    const usA = (a.cpuS * 1e6) / a.served;
    const usB = (b.cpuS * 1e6) / b.served;
    ratios.push(usB / usA - 1);
    console.log(
      `run ${run + 1} (${order[0].toUpperCase()} started first): A ${usA.toFixed(1)} µs/req (${a.served} requests, ` +
        `peak RSS ${a.rssMb.toFixed(0)} MB), B ${usB.toFixed(1)} µs/req (${b.served}, ${b.rssMb.toFixed(0)} MB); ` +
        `B/A ${((usB / usA - 1) * 100).toFixed(1)}%`,
    );
    rmSync(out, { recursive: true, force: true });
  }
} finally {
  sim.stop();
  redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
const { mean, se } = meanAndError(ratios);
console.log(
  `B spends ${(mean * 100).toFixed(1)}% ± ${(se * 100).toFixed(1)}% (standard error) CPU per request against A ` +
    `(${ratios.length} runs, whole worker processes, start-up included)`,
);
