#!/usr/bin/env node
// Memory flat in job size: a job of `--small` and one of `--requests` requests (short answers,
// `fast` simulator in its own process), recording wall time, requests/s and the peak RSS of the
// coordinator and of each shard, then the same for `shardline report` on each log.
//
//   node bench/scale.mjs [--requests 1000000] [--small 100000] [--shards 2] [--concurrency 64]
//
// Peak RSS is each process's own VmHWM, polled from /proc every 200 ms while it lives (Linux).
// Targets (issue #13): every process < 300 MB and flat from the small job to the large one; report < 10 s.
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { procStats } from './proc-stat.mjs';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '1000000' },
    small: { type: 'string', default: '100000' },
    shards: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '64' },
    keep: { type: 'boolean', default: false },
  },
});
const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const TIME_LIMIT_MS = 30 * 60_000;

function hwmMb(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

function childrenOf(pid) {
  const out = [];
  for (const [child, st] of procStats()) if (st.ppid === pid) out.push(child);
  return out;
}

/** Run a CLI command; resolves with wall time and the peak RSS of it and of each child process. */
function measure(args) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    const peaks = new Map();
    const poll = setInterval(() => {
      for (const pid of [child.pid, ...childrenOf(child.pid)]) {
        const mb = hwmMb(pid);
        if (mb !== undefined) peaks.set(pid, Math.max(peaks.get(pid) ?? 0, mb));
      }
    }, 200);
    const limit = setTimeout(() => child.kill('SIGKILL'), TIME_LIMIT_MS);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(poll);
      clearTimeout(limit);
      const main = peaks.get(child.pid) ?? NaN;
      peaks.delete(child.pid);
      resolve({ code, s: (performance.now() - t0) / 1000, mainMb: main, childMb: [...peaks.values()], stdout });
    });
  });
}

async function writeInput(path, n) {
  const ws = createWriteStream(path);
  for (let i = 0; i < n; i++) {
    const line =
      `{"custom_id":"r${i}","method":"POST","url":"/v1/chat/completions","body":{"model":"sim",` +
      `"messages":[{"role":"user","content":"q ${i}"}],"max_tokens":8,"stream":false}}\n`;
    if (!ws.write(line)) await new Promise((r) => ws.once('drain', r));
  }
  await new Promise((r) => ws.end(r));
}

const sim = spawn(process.execPath, [CLI, 'sim', '--profile', 'fast', '--port', '0', '--host', '127.0.0.1'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const url = await new Promise((resolve) => {
  let out = '';
  sim.stdout.on('data', (d) => {
    out += d;
    const m = /listening on (\S+)/.exec(out);
    if (m) resolve(m[1]);
  });
});

const dir = mkdtempSync(join(tmpdir(), 'sl-scale-'));
const rows = [];
try {
  for (const n of [Number(values.small), Number(values.requests)]) {
    const input = join(dir, `in-${n}.jsonl`);
    await writeInput(input, n);
    const out = join(dir, `out-${n}`);
    const r = await measure([
      'run',
      input,
      '--endpoint',
      `${url}/v1`,
      '--out',
      out,
      '--shards',
      values.shards,
      '--concurrency',
      values.concurrency,
      '--progress',
      'off',
    ]);
    if (r.code !== 0) throw new Error(`run of ${n} exited ${r.code}`);
    const rep = await measure(['report', out, '--json', '--progress', 'off']);
    const report = JSON.parse(rep.stdout);
    rows.push({ n, run: r, rep, counted: report.requests.total, agree: report.results?.agree });
    rmSync(input);
    if (!values.keep) rmSync(out, { recursive: true });
  }
} finally {
  sim.kill('SIGTERM');
  if (!values.keep) rmSync(dir, { recursive: true, force: true });
}

const fmt = (x, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
console.log(
  `shardline scale bench — node ${process.version}, ${new Date().toISOString()}, ${values.shards} shards × ` +
    `${values.concurrency}, fast profile, 8-token answers`,
);
console.log(
  'requests     run wall   req/s    coordinator peak   shard peaks        report wall  report peak  counted  ' +
    'results agree',
);
for (const { n, run, rep, counted, agree } of rows) {
  console.log(
    `${fmt(n).padStart(9)}  ${fmt(run.s, 1).padStart(8)} s  ${fmt(n / run.s).padStart(6)}  ` +
      `${fmt(run.mainMb).padStart(10)} MB      ${run.childMb
        .map((m) => fmt(m))
        .join(', ')
        .padEnd(14)} MB  ` +
      `${fmt(rep.s, 1).padStart(8)} s  ${fmt(rep.mainMb).padStart(8)} MB  ${fmt(counted).padStart(9)}  ${agree}`,
  );
}
const [small, large] = rows;
const worst = Math.max(large.run.mainMb, ...large.run.childMb);
console.log(
  `peak RSS, ${fmt(large.n)} vs ${fmt(small.n)}: coordinator ${fmt(large.run.mainMb / small.run.mainMb, 2)}×, ` +
    `largest shard ${fmt(Math.max(...large.run.childMb) / Math.max(...small.run.childMb), 2)}×`,
);
console.log(
  `targets: every runner process < 300 MB: ${worst < 300 ? 'met' : 'NOT met'} (${fmt(worst)} MB); report < 10 s: ` +
    `${large.rep.s < 10 ? 'met' : 'NOT met'} (${fmt(large.rep.s, 1)} s)`,
);
