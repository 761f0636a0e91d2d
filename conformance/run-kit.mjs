#!/usr/bin/env node
// The real-server conformance kit (`npm run test:real`): builds llama.cpp's llama-server from the
// source node-llama-cpp ships (cached), makes a tiny random-weight GGUF, and runs shardline against
// it on 127.0.0.1 in the scenarios that went wrong on a real server. Prints a markdown table (and
// writes it to --table FILE). Not part of `npm test`: the first build takes ~15-20 min on 2 cores.
//
//   node conformance/run-kit.mjs [--only a,b] [--requests N] [--table FILE] [--keep DIR]
//
// Every server binds 127.0.0.1 on a free port; every run is bounded in requests and time.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedisProcess } from '../bench/redis-process.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist', 'cli', 'main.js');
const args = process.argv.slice(2);
const flag = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const only = flag('--only', '').split(',').filter(Boolean);
const requests = Number(flag('--requests', '1000'));
const tableFile = flag('--table', '');
const keep = flag('--keep', '');
const PARALLEL = 4;

if (!existsSync(cli)) throw new Error('build first: npm run build');
const log = (s) => process.stderr.write(`kit: ${s}\n`);

// 1. llama-server and the model (cached under ~/.cache/shardline-real).
log('building or finding llama-server (the first build takes ~15-20 min)…');
const serverBin = execFileSync('bash', [join(root, 'conformance', 'build-llama-server.sh')], {
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'inherit'],
})
  .trim()
  .split('\n')
  .pop();
const cacheDir = dirname(dirname(dirname(serverBin)));
const model = join(cacheDir, 'tiny.gguf');
if (!existsSync(model))
  execFileSync('python3', [join(root, 'conformance', 'make-model.py'), join(cacheDir, 'src'), model], {
    stdio: 'inherit',
  });
const versionRun = spawnSync(serverBin, ['--version'], { encoding: 'utf8' });
const version =
  `${versionRun.stdout}${versionRun.stderr}`
    .split('\n')
    .find((l) => /version/.test(l))
    ?.trim() ?? '(unknown)';

const work = keep || mkdtempSync(join(tmpdir(), 'shardline-kit-'));
mkdirSync(work, { recursive: true });

// 2. Inputs: streamed and not, short answers so a run is seconds long.
function writeInput(name, n, stream, maxTokens = 32) {
  const path = join(work, name);
  const lines = [];
  for (let i = 0; i < n; i++) {
    lines.push(
      JSON.stringify({
        custom_id: `r${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: {
          model: 'tiny',
          stream,
          max_tokens: maxTokens,
          messages: [{ role: 'user', content: `Say something about the number ${i}.` }],
        },
      }),
    );
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}
/** Lines of another endpoint: `/v1/completions` (prompt) or `/v1/embeddings` (input, 4 texts a line). */
function writeEndpointInput(name, n, url) {
  const path = join(work, name);
  const lines = [];
  for (let i = 0; i < n; i++) {
    const body =
      url === '/v1/embeddings'
        ? { model: 'tiny', input: [0, 1, 2, 3].map((j) => `Text ${i}.${j} to embed.`) }
        : { model: 'tiny', max_tokens: 32, prompt: `Say something about the number ${i}.` };
    lines.push(JSON.stringify({ custom_id: `r${i}`, method: 'POST', url, body }));
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}
const streamed = writeInput('streamed.jsonl', requests, true);
const completions = writeEndpointInput('completions.jsonl', requests, '/v1/completions');
const embeddings = writeEndpointInput('embeddings.jsonl', requests, '/v1/embeddings');
const plain = writeInput('plain.jsonl', requests, false);
const long = writeInput('long.jsonl', 2000, true, 64);

// 3. The server: random weights can end a stream with the server's own error event when they pick
// a lone byte token (invalid UTF-8 on its own), so the byte tokens <0x00>..<0xFF> (ids 3-258 in
// this vocabulary) are banned with logit biases.
const bans = [];
for (let id = 3; id <= 258; id++) bans.push('-l', `${id}-100`);

async function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startServer(port, extra = []) {
  const child = spawn(
    serverBin,
    [
      '-m',
      model,
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--parallel',
      String(PARALLEL),
      '-c',
      String(PARALLEL * 2048),
      '-t',
      '1',
      ...bans,
      ...extra,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let errText = '';
  child.stderr.on('data', (d) => (errText = (errText + d).slice(-4000)));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`llama-server exited: ${errText}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/health`);
      if (r.status === 200) return { child, readyAt: Date.now() };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error('llama-server did not become ready in 60 s');
    await new Promise((r) => setTimeout(r, 50));
  }
}

function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

function runCli(argv, env = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [cli, ...argv], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, seconds: (Date.now() - t0) / 1000 });
    });
  });
}

async function report(out) {
  const r = await runCli(['report', out, '--json']);
  return JSON.parse(r.stdout);
}

/** Events of a run directory, parsed (small runs only). */
function events(out) {
  const dir = join(out, 'events');
  const all = [];
  for (const f of readdirSync(dir))
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) if (line) all.push(JSON.parse(line));
  return all.sort((a, b) => a.ts - b.ts);
}

const rows = [];
function row(name, command, fields) {
  rows.push({ name, command, ...fields });
  log(`${name}: ${JSON.stringify(fields)}`);
}

function figures(rep) {
  const a = rep.attempts;
  return {
    ok: rep.requests.succeeded,
    failed: rep.requests.failed,
    attempts: a,
    notFirst: a > 0 ? `${((100 * (rep.retries.count + (rep.outages?.paused_attempts ?? 0))) / a).toFixed(2)}%` : '–',
    retries: rep.retries.count,
    stale: rep.connections.stale_resends ?? 0,
    verdict: rep.verdict.bound,
    tpm: Math.round(rep.tpm.run_average),
    ttftP95: rep.ttft_ms.server.p95 === null ? '–' : Math.round(rep.ttft_ms.server.p95),
  };
}

const scenarios = {
  async 'keepalive-undici'() {
    await fixedRun('keepalive-undici', streamed, ['--concurrency', '4']);
  },
  async 'keepalive-raw'() {
    await fixedRun('keepalive-raw', streamed, ['--concurrency', '4', '--transport', 'raw']);
  },
  async 'under-c1'() {
    await fixedRun('under-c1', streamed, ['--concurrency', '1']);
  },
  async 'over-c32-stream'() {
    await fixedRun('over-c32-stream', streamed, ['--concurrency', '32']);
  },
  async 'over-c32-plain'() {
    await fixedRun('over-c32-plain', plain, ['--concurrency', '32']);
  },
  async auto() {
    await fixedRun('auto', streamed, ['--concurrency', 'auto'], {
      note: (out, rep) => {
        const limits = events(out).filter((e) => e.type === 'limit');
        const last = limits.at(-1)?.new ?? 16;
        const tail = limits.slice(-Math.max(1, Math.floor(limits.length / 2))).map((e) => e.new);
        return (
          `limit settled at ${last} (second half of its changes: ` +
          `${Math.min(...tail, last)}–${Math.max(...tail, last)}); knee ${PARALLEL}; report: settled ` +
          `${rep.utilization.limit_settled}, at the end ${rep.utilization.limit_final}`
        );
      },
    });
  },
  async sweep() {
    const out = join(work, 'sweep');
    const r = await withServer([], (port) =>
      runCli(['sweep', streamed, '--endpoint', `http://127.0.0.1:${port}/v1`, '--out', out, '--json']),
    );
    let knee = '–';
    let why = r.stderr.slice(-300);
    try {
      const j = JSON.parse(r.stdout);
      knee = j.knee.level;
      why = j.knee.why;
    } catch {
      // the error is in stderr
    }
    row('sweep', 'shardline sweep streamed.jsonl --endpoint … (default levels)', {
      exit: r.code,
      verdict: '–',
      note: `knee ${knee} (server --parallel ${PARALLEL}): ${why}`,
    });
  },
  async 'kill-restart'() {
    const port = await freePort();
    let server = await startServer(port);
    const out = join(work, 'kill-restart');
    const argv = [
      'run',
      long,
      '--endpoint',
      `http://127.0.0.1:${port}/v1`,
      '--out',
      out,
      '--concurrency',
      '4',
      '--progress',
      'off',
    ];
    const running = runCli(argv);
    await new Promise((r) => setTimeout(r, 4000));
    await stop(server.child);
    const killedAt = Date.now();
    await new Promise((r) => setTimeout(r, 7000));
    server = await startServer(port);
    const backAt = server.readyAt;
    const r = await running;
    await stop(server.child);
    // Event timestamps are epoch ms: the first attempt started after the server was back.
    const firstAfter = events(out).find((e) => e.type === 'attempt_start' && e.ts >= backAt - 50);
    const rep = await report(out);
    row('kill-restart', 'shardline run long.jsonl … --concurrency 4; kill -9 at 4 s, back 7 s later', {
      exit: r.code,
      ...figures(rep),
      note:
        `down ${((backAt - killedAt) / 1000).toFixed(1)} s; first request ` +
        `${firstAfter ? `${Math.max(0, (firstAfter.ts - backAt) / 1000).toFixed(2)} s` : 'never'} after it was ` +
        `back; ${rep.outages?.paused_attempts ?? 0} paused attempts`,
    });
  },
  async 'two-servers'() {
    // Two llama-server instances, one run over both (--endpoint twice); the second killed with kill -9 at
    // 4 s and never brought back: its share must move to the first with nothing failed.
    const ports = [await freePort(), await freePort()];
    const servers = [await startServer(ports[0]), await startServer(ports[1])];
    const out = join(work, 'two-servers');
    const argv = ['run', long, '--out', out, '--concurrency', '4', '--progress', 'off'];
    for (const port of ports) argv.push('--endpoint', `http://127.0.0.1:${port}/v1`);
    const running = runCli(argv);
    await new Promise((r) => setTimeout(r, 4000));
    await stop(servers[1].child);
    const killedAt = Date.now();
    const r = await running;
    await stop(servers[0].child);
    const rep = await report(out);
    const ups = rep.by_upstream ?? {};
    const after = events(out).filter((e) => e.type === 'request_end' && e.ts > killedAt + 1000);
    const shardsAfter = new Set(after.map((e) => e.shard));
    const named = rep.verdict.findings.some((f) => f.mode === 'endpoint_down' && f.evidence.includes(`${ports[1]}`));
    row('two-servers', 'shardline run long.jsonl --endpoint A --endpoint B --concurrency 4; B kill -9 at 4 s', {
      exit: r.code,
      ...figures(rep),
      note:
        `A ${ups['0']?.requests ?? 0} requests, B ${ups['1']?.requests ?? 0} ` +
        `(down ${ups['1']?.down_s?.toFixed(1) ?? '–'} ` +
        `s, ${ups['1']?.paused_attempts ?? 0} paused); after B died + 1 s, requests ended on shards ` +
        `${[...shardsAfter].join(',') || '–'}; report names B down: ${named}`,
    });
  },
  async 'down-at-start'() {
    // One llama-server and a port nothing listens on, one run over both: the dead one is out of rotation from
    // its first refused connection (it once drew the live one's work and failed it), nothing fails.
    const port = await freePort();
    const dead = await freePort();
    const { child } = await startServer(port);
    const out = join(work, 'down-at-start');
    const argv = ['run', streamed, '--out', out, '--concurrency', '4', '--progress', 'off'];
    for (const p of [port, dead]) argv.push('--endpoint', `http://127.0.0.1:${p}/v1`);
    let r;
    try {
      r = await runCli(argv);
    } finally {
      await stop(child);
    }
    const rep = await report(out);
    const named = rep.verdict.findings.some((f) => f.mode === 'endpoint_down' && f.evidence.includes(`${dead}`));
    row('down-at-start', 'shardline run streamed.jsonl --endpoint A --endpoint DEAD --concurrency 4', {
      exit: r.code,
      ...figures(rep),
      note:
        `A ${rep.by_upstream?.['0']?.requests ?? 0} requests, DEAD ${rep.by_upstream?.['1']?.requests ?? 0}; ` +
        `report names DEAD down: ${named}; run-level outages ${rep.outages?.count ?? '–'}`,
    });
  },
  async distributed() {
    // One llama-server, a run over Redis with two local workers (one shard each, run directly on their
    // chunks): every request exactly once, none failed, and the same stale-connection figures as `run`.
    const redis = await startRedisProcess('the distributed scenario', work, ['--appendonly', 'no']);
    try {
      await fixedRun('distributed', streamed, ['--concurrency', '4', '--redis', redis.url, '--local-workers', '2'], {
        command: `shardline run streamed.jsonl … --concurrency 4 --redis URL --local-workers 2`,
        note: (out) => {
          const ids = readFileSync(join(out, 'results.jsonl'), 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l).custom_id);
          const shards = new Set(
            events(out)
              .filter((e) => e.type === 'request_end')
              .map((e) => e.shard),
          );
          return (
            `${ids.length} result lines, ${new Set(ids).size} distinct ids for ${requests} input lines; ` +
            `requests ended on ${shards.size} workers' shards`
          );
        },
      });
    } finally {
      redis.stop();
    }
  },
  async completions() {
    await fixedRun('completions', completions, ['--concurrency', '4'], {
      note: (out, rep) => {
        const e = rep.by_endpoint?.completions;
        return e
          ? `completions: ${e.succeeded} ok, ${Math.round(e.tpm)} tok/min, ` +
              `TTFT p95 ${Math.round(e.ttft_ms?.p95 ?? 0)} ms`
          : 'no completions figures';
      },
    });
  },
  async embeddings() {
    await fixedRun('embeddings', embeddings, ['--concurrency', '4'], {
      serverArgs: ['--embeddings', '--pooling', 'mean'],
      note: (out, rep) => {
        const e = rep.by_endpoint?.embeddings;
        const first = readFileSync(join(out, 'results.jsonl'), 'utf8').split('\n')[0] ?? '';
        const dims = JSON.parse(first)?.response?.body?.data?.[0]?.embedding?.length ?? 0;
        return e
          ? `embeddings: ${e.succeeded} ok, ${e.items} inputs, ${Math.round(e.input_tpm)} input tok/min, ` +
              `${dims} dimensions, TTFT ${e.ttft_ms === null ? 'none' : 'present'}`
          : 'no embeddings figures';
      },
    });
  },
  async 'wrong-key'() {
    await fixedRun('wrong-key', streamed, [], {
      serverArgs: ['--api-key', 'kit-right-key'],
      env: { OPENAI_API_KEY: 'kit-wrong-key' },
      command: 'OPENAI_API_KEY=wrong shardline run …',
      note: (out, rep) => {
        const leaked =
          JSON.stringify(rep).includes('kit-wrong-key') ||
          readdirSync(join(out, 'events')).some((f) =>
            readFileSync(join(out, 'events', f), 'utf8').includes('kit-wrong-key'),
          );
        return `${rep.verdict.findings[0]?.action ?? ''}`.slice(0, 120) + (leaked ? ' KEY LEAKED' : '');
      },
    });
  },
};

/** Run `fn` against a fresh llama-server on a free port, stopping it afterwards whatever happens. */
async function withServer(serverArgs, fn) {
  const port = await freePort();
  const { child } = await startServer(port, serverArgs);
  try {
    return await fn(port);
  } finally {
    await stop(child);
  }
}

/**
 * One `shardline run` against a fresh server, reported as a row: its note is the top finding's
 * action unless `o.note(out, report)` says otherwise.
 */
async function fixedRun(name, input, extra, o = {}) {
  const out = join(work, name);
  const r = await withServer(o.serverArgs ?? [], (port) =>
    runCli(
      ['run', input, '--endpoint', `http://127.0.0.1:${port}/v1`, '--out', out, '--progress', 'off', ...extra],
      o.env,
    ),
  );
  const rep = await report(out);
  const top = rep.verdict.findings.filter((f) => f.severity !== 'low')[0];
  row(name, o.command ?? `shardline run ${input.split('/').pop()} … ${extra.join(' ')}`, {
    exit: r.code,
    ...figures(rep),
    note: o.note ? o.note(out, rep) : top ? `${top.mode}: ${top.action}`.slice(0, 140) : '',
  });
}

for (const [name, fn] of Object.entries(scenarios)) {
  if (only.length && !only.includes(name)) continue;
  log(`scenario ${name}…`);
  try {
    await fn();
  } catch (err) {
    row(name, '', { exit: 'error', note: String(err.message ?? err).slice(0, 200) });
  }
}

const cols = [
  'name',
  'exit',
  'ok',
  'failed',
  'attempts',
  'notFirst',
  'retries',
  'stale',
  'verdict',
  'tpm',
  'ttftP95',
  'note',
];
const head = [
  'scenario',
  'exit',
  'ok',
  'failed',
  'attempts',
  'not first attempts',
  'retries',
  'stale re-sends',
  'verdict',
  'TPM',
  'TTFT p95 ms',
  'note',
];
const table = [
  `llama-server ${version.split('\n')[0]} (node-llama-cpp@${process.env.NODE_LLAMA_CPP_VERSION ?? '3.21.1'} ` +
    `source), --parallel ${PARALLEL}, tiny random-weight llama, ${requests} requests a run; ` +
    `${new Date().toISOString().slice(0, 10)}`,
  '',
  `| ${head.join(' | ')} |`,
  `|${head.map(() => '---').join('|')}|`,
  ...rows.map((r) => `| ${cols.map((c) => String(r[c] ?? '').replace(/\|/g, '/')).join(' | ')} |`),
].join('\n');
process.stdout.write(`${table}\n`);
if (tableFile) writeFileSync(tableFile, `${table}\n`);
if (!keep) rmSync(work, { recursive: true, force: true });
