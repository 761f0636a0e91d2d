#!/usr/bin/env node
// Two builds of the coordinator's drain side by side (bench/drain-results.mjs: results pre-loaded in a
// run's Redis stream as workers send them, read back into results.jsonl), each in a process of its own,
// alternating A B / B A run after run. The figure is the drain's CPU (all its threads: GC helpers
// included) per result, B's over A's, mean ± standard error over the runs.
//
//   node bench/drain-ab.mjs --a <checkout> --b <checkout> [--runs 6] [--results 200000]
//
// A checkout is a directory holding a built shardline (its dist/ and node_modules); `--a .` is this one.
// Needs redis-server.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { checkoutsOrExit, meanAndError } from './ab-stats.mjs';
import { drainResults } from './drain-results.mjs';
import { startRedisProcess } from './redis-process.mjs';

const { values } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string' },
    runs: { type: 'string', default: '6' },
    results: { type: 'string', default: '200000' },
    // Internal: one drain, in a child process.
    child: { type: 'string' },
    redis: { type: 'string' },
    dir: { type: 'string' },
  },
});
const total = Number(values.results);

if (values.child) {
  console.log(JSON.stringify(await drainResults(values.child, values.redis, values.dir, total)));
  process.exit(0);
}

const dist = checkoutsOrExit('bench/drain-ab.mjs', values);

const dir = mkdtempSync(join(tmpdir(), 'sl-bench-drain-'));
const redis = await startRedisProcess('bench/drain-ab.mjs', dir, ['--appendonly', 'no']);

/** One drain of a build in its own process; resolves with its CPU µs per result. */
function child(side, run) {
  const args = [new URL(import.meta.url).pathname, '--child', dist[side], '--redis', redis.url];
  args.push('--dir', join(dir, `${side}-${run}`), '--results', String(total));
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  const limit = setTimeout(() => proc.kill('SIGKILL'), 5 * 60_000);
  return new Promise((resolveRun, reject) =>
    proc.on('exit', (code) => {
      clearTimeout(limit);
      if (code !== 0) return reject(new Error(`drain ${side} exited ${code}`));
      resolveRun(JSON.parse(out));
    }),
  );
}

const ratios = [];
try {
  for (let run = 0; run < Number(values.runs); run++) {
    const order = run % 2 === 0 ? ['a', 'b'] : ['b', 'a'];
    const got = {};
    for (const side of order) got[side] = await child(side, run);
    const { a, b } = got;
    ratios.push(b.cpuUs / a.cpuUs - 1);
    console.log(
      `run ${run + 1} (${order[0].toUpperCase()} first): A ${a.cpuUs.toFixed(2)} µs/result, ` +
        `B ${b.cpuUs.toFixed(2)} µs/result; B/A ${((b.cpuUs / a.cpuUs - 1) * 100).toFixed(1)}%`,
    );
  }
} finally {
  redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
const { mean, se } = meanAndError(ratios);
console.log(
  `B's drain spends ${(mean * 100).toFixed(1)}% ± ${(se * 100).toFixed(1)}% (standard error) CPU per result ` +
    `against A's (${ratios.length} runs of ${total.toLocaleString('en-US')} results)`,
);
