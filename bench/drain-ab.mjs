#!/usr/bin/env node
// Two builds of the coordinator's drain side by side: results pre-loaded in a run's Redis stream (as
// workers send them: batches of 512 lines with their facts), read back and written to results.jsonl
// the way a distributed run's coordinator does, in a process of its own per build, alternating A B /
// B A run after run. The figure is the drain's CPU (all its threads: GC helpers included) per result,
// B's over A's, mean ± standard error over the runs.
//
//   node bench/drain-ab.mjs --a <checkout> --b <checkout> [--runs 6] [--results 200000]
//
// A checkout is a directory holding a built shardline (its dist/ and node_modules); `--a .` is this one.
// Needs redis-server.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
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
  console.log(JSON.stringify(await drainOnce(values.child, values.redis, values.dir)));
  process.exit(0);
}

const distOf = (dir) => join(resolve(dir), 'dist');
for (const side of ['a', 'b']) {
  if (!values[side] || !existsSync(join(distOf(values[side]), 'runner/distributed/run-channel.js'))) {
    console.error(`bench/drain-ab.mjs: --${side} must name a checkout with a built shardline (dist/)`);
    process.exit(2);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'sl-bench-drain-'));
const redis = await startRedisProcess('bench/drain-ab.mjs', dir, ['--appendonly', 'no']);

/** One drain of a build in its own process; resolves with its CPU µs per result. */
function child(side, run) {
  const args = [new URL(import.meta.url).pathname, '--child', distOf(values[side]), '--redis', redis.url];
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
const mean = ratios.reduce((x, y) => x + y, 0) / ratios.length;
const se =
  ratios.length > 1
    ? Math.sqrt(ratios.reduce((x, r) => x + (r - mean) ** 2, 0) / (ratios.length - 1) / ratios.length)
    : NaN;
console.log(
  `B's drain spends ${(mean * 100).toFixed(1)}% ± ${(se * 100).toFixed(1)}% (standard error) CPU per result ` +
    `against A's (${ratios.length} runs of ${total.toLocaleString('en-US')} results)`,
);

/** Load `total` results into a stream, then drain them into results.jsonl as the coordinator does. */
async function drainOnce(dist, redisUrl, outDir) {
  const load = (path) => import(pathToFileURL(join(dist, path)).href);
  const { RunChannel } = await load('runner/distributed/run-channel.js');
  const { DirResultSink } = await load('runner/output/dir-result-sink.js');
  const { IdInterner } = await load('events/id-interner.js');
  const { newRunTotals, tallyDone } = await load('runner/run-totals.js');
  const channel = new RunChannel(redisUrl);
  const runId = `drain-${process.pid}`;
  // A result line as a `fast`-profile run writes it (8-token answer).
  const line =
    '{"id":"batch_req_x","custom_id":"ID","response":{"status_code":200,"request_id":"c",' +
    '"body":{"choices":[{"index":0,"message":{"role":"assistant","content":" the of and to in is that for"},' +
    '"finish_reason":"length"}],"usage":{"prompt_tokens":8,"completion_tokens":8,"total_tokens":16}}},"error":null}';
  const facts = { outcome: 'succeeded', attempts: 1, promptTokens: 8, completionTokens: 8, ttftMs: 2.5 };
  for (let i = 0; i < total; i += 512) {
    const batch = Array.from({ length: Math.min(512, total - i) }, (_, k) => ({
      id: `r${i + k}`,
      line: line.replace('ID', `r${i + k}`),
      facts,
    }));
    await channel.sendResults(runId, batch);
  }
  const sink = new DirResultSink(outDir);
  const seen = new IdInterner(1 << 16);
  const totals = newRunTotals();
  const cpu0 = process.cpuUsage();
  let after = '0';
  let got = 0;
  while (got < total) {
    const batch = await channel.readResults(runId, after, 500);
    for (const r of batch) {
      seen.internString(r.id);
      sink.writeResult(r.id, r.line);
      tallyDone(totals, r.facts);
      got++;
    }
    sink.flush();
    after = batch[batch.length - 1].streamId;
    await channel.trimResults(runId, after);
  }
  const cpu = process.cpuUsage(cpu0);
  await sink.close();
  await channel.finish(runId);
  await channel.close();
  return { cpuUs: (cpu.user + cpu.system) / total };
}
