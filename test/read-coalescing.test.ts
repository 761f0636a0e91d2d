import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runChatAttempt, type AttemptOutcome } from '../src/client/chat-attempt.js';
import { RawPool } from '../src/client/raw-pool.js';
import { ReadCoalescer } from '../src/client/read-coalescer.js';
import { monotonicEpochMs } from '../src/events/clock.js';
import { nextReadHoldMs, AUTO_READ_HOLD_MS, ReadHoldTracker } from '../src/runner/read-hold-policy.js';
import { HostCpu } from '../src/runner/host-cpu.js';
import { analyze, completionText, formatReport, parseProfile, run, startSim, type RunningSim } from '../src/index.js';
import { loadEvents, loadResults, ofType, tempDir, writeInput } from './helpers/run-dir.js';

const end0 = (events: ReturnType<typeof loadEvents>) => ofType(events, 'shard_end')[0]!;

const TOKENS = ['alpha ', 'beta ', 'gamma ', 'delta ', 'epsilon ', 'zeta ', 'eta ', 'theta'];
const sse = (o: unknown) => `data: ${JSON.stringify(o)}\n\n`;
const chunk = (delta: Record<string, string>) => sse({ id: 'c', object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: null }] });

interface Script {
  /** ms between the role chunk and the first token (nothing on the wire meanwhile). */
  beforeFirstMs: number;
  /** ms between content tokens; each token is its own write. */
  gapMs: number;
  /** Cut the connection after this many tokens instead of finishing. */
  cutAfter?: number;
}

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
});

/** An SSE server writing each token as its own chunk, `gapMs` apart, on keep-alive connections. */
async function pacedServer(script: Script): Promise<{ origin: string; connections: () => number }> {
  let connections = 0;
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => void answer(res));
  });
  server.on('connection', () => connections++);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const answer = async (res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(chunk({ role: 'assistant' }));
    await sleep(script.beforeFirstMs);
    for (let i = 0; i < TOKENS.length; i++) {
      if (i > 0) await sleep(script.gapMs);
      if (script.cutAfter === i) return res.socket?.destroy();
      res.write(chunk({ content: TOKENS[i]! }));
    }
    res.write(sse({ id: 'c', object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }));
    res.write(sse({ id: 'c', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 3, completion_tokens: TOKENS.length, total_tokens: 3 + TOKENS.length } }));
    res.end('data: [DONE]\n\n');
  };
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { origin: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`, connections: () => connections };
}

async function attempt(pool: RawPool, origin: string, coalescer: ReadCoalescer | undefined) {
  let headersTs = 0;
  let firstTs = 0;
  const outcome: AttemptOutcome = await runChatAttempt(
    pool,
    { origin, path: '/v1/chat/completions', headers: { 'content-type': 'application/json' } },
    JSON.stringify({ messages: [{ role: 'user', content: 'q' }], stream: true }),
    true,
    { ttftMs: 10_000, idleMs: 10_000, totalMs: 20_000 },
    monotonicEpochMs,
    { onHeaders: (_s, ts) => (headersTs = ts), onFirstToken: (ts) => (firstTs = ts) },
    coalescer,
  );
  return { outcome, headersTs, firstTs };
}

describe('read coalescing (raw transport)', () => {
  it('reads a paced stream in fewer reads, loses nothing, and reuses the connection', async () => {
    const { origin, connections } = await pacedServer({ beforeFirstMs: 0, gapMs: 25 });
    const pool = new RawPool({ origin, connections: 1, connectTimeoutMs: 5000 });
    const plain = await attempt(pool, origin, undefined);
    const plainReads = pool.reads;
    // A hold longer than the whole stream after its first token: the rest comes in one or two reads.
    const coalescer = new ReadCoalescer(400);
    const held = await attempt(pool, origin, coalescer);
    const heldReads = pool.reads - plainReads;
    await pool.close();
    coalescer.close();

    for (const r of [plain, held]) {
      expect(r.outcome.outcome).toBe('ok');
      if (r.outcome.outcome !== 'ok') return;
      expect(r.outcome.completion.choices[0]!.message.content).toBe(TOKENS.join(''));
      expect(r.outcome.completion.usage?.completion_tokens).toBe(TOKENS.length);
      expect(r.outcome.contentChunks).toBe(TOKENS.length);
    }
    // Head + role + first token take one to three reads; everything after the first token arrives
    // while held. A slower machine only gathers more per read, so this bound cannot flake upwards.
    expect(heldReads).toBeLessThanOrEqual(5);
    expect(plainReads).toBeGreaterThan(heldReads);
    // Both attempts on one keep-alive connection: the held response released it cleanly.
    expect(connections()).toBe(1);
  });

  it('never holds before the first token', async () => {
    // Nothing but a role chunk for 60 ms, then the first token: a hold begun before it would
    // delay its read by the whole 1 s window.
    const { origin } = await pacedServer({ beforeFirstMs: 60, gapMs: 5 });
    const pool = new RawPool({ origin, connections: 1, connectTimeoutMs: 5000 });
    const coalescer = new ReadCoalescer(1000);
    const r = await attempt(pool, origin, coalescer);
    await pool.close();
    coalescer.close();
    expect(r.outcome.outcome).toBe('ok');
    expect(r.firstTs - r.headersTs).toBeLessThan(900);
    expect(r.firstTs - r.headersTs).toBeGreaterThanOrEqual(50);
  });

  it('a connection cut while held fails the attempt with a cause once it resumes', async () => {
    const { origin } = await pacedServer({ beforeFirstMs: 0, gapMs: 10, cutAfter: 3 });
    const pool = new RawPool({ origin, connections: 1, connectTimeoutMs: 5000 });
    const coalescer = new ReadCoalescer(200);
    const r = await attempt(pool, origin, coalescer);
    await pool.close();
    coalescer.close();
    expect(r.outcome).toMatchObject({ outcome: 'error', cause: 'conn_reset' });
  });
});

describe('nextReadHoldMs (auto policy)', () => {
  // Long paced streams, on an otherwise quiet machine unless a test says otherwise.
  const paced = { streams: 40, decodeMs: 1000, chunkGapMs: 10, hostBusy: 0.2, cpuWait: 0 };
  it('a number is used as is', () => {
    expect(nextReadHoldMs(0, 50, { ...paced, loopBusy: 0.9 })).toBe(0);
    expect(nextReadHoldMs(20, 0, { ...paced, loopBusy: 0 })).toBe(20);
  });
  it('holds when the loop is busy with long paced streams, with hysteresis', () => {
    expect(nextReadHoldMs('auto', 0, { ...paced, loopBusy: 0.6 })).toBe(AUTO_READ_HOLD_MS);
    expect(nextReadHoldMs('auto', 0, { ...paced, loopBusy: 0.59 })).toBe(0);
    // Between the two lines the current setting stays.
    expect(nextReadHoldMs('auto', AUTO_READ_HOLD_MS, { ...paced, loopBusy: 0.45 })).toBe(AUTO_READ_HOLD_MS);
    expect(nextReadHoldMs('auto', 0, { ...paced, loopBusy: 0.45 })).toBe(0);
    expect(nextReadHoldMs('auto', AUTO_READ_HOLD_MS, { ...paced, loopBusy: 0.29 })).toBe(0);
    // No stream ended in the interval (long answers): keep what was decided.
    const none = { streams: 0, decodeMs: 0, chunkGapMs: 0, hostBusy: 0.2, cpuWait: 0 };
    expect(nextReadHoldMs('auto', AUTO_READ_HOLD_MS, { ...none, loopBusy: 0.9 })).toBe(AUTO_READ_HOLD_MS);
    expect(nextReadHoldMs('auto', 0, { ...none, loopBusy: 0.9 })).toBe(0);
  });
  it('on a saturated machine, holds for a loop half as busy, and keeps holding until the machine eases', () => {
    // Two shards and a server on two cores: each loop ~45% busy, the machine ~90%.
    expect(nextReadHoldMs('auto', 0, { ...paced, loopBusy: 0.45, hostBusy: 0.9 })).toBe(AUTO_READ_HOLD_MS);
    expect(nextReadHoldMs('auto', 0, { ...paced, loopBusy: 0.45, hostBusy: 0.84 })).toBe(0);
    // A loop under 30% is not worth relieving to start with…
    expect(nextReadHoldMs('auto', 0, { ...paced, loopBusy: 0.25, hostBusy: 0.95 })).toBe(0);
    // …but once holding, a loop the holds made quieter keeps them while the machine stays busy…
    expect(nextReadHoldMs('auto', AUTO_READ_HOLD_MS, { ...paced, loopBusy: 0.25, hostBusy: 0.7 })).toBe(AUTO_READ_HOLD_MS);
    // …and lets go when the machine eases, or when the loop is all but idle.
    expect(nextReadHoldMs('auto', AUTO_READ_HOLD_MS, { ...paced, loopBusy: 0.25, hostBusy: 0.55 })).toBe(0);
    expect(nextReadHoldMs('auto', AUTO_READ_HOLD_MS, { ...paced, loopBusy: 0.1, hostBusy: 1 })).toBe(0);
  });
  it('counts time waiting for a core as demand: a loop that cannot get one looks idle', () => {
    // Two shards and a server on two cores: each loop ~40% busy, waiting ~29% for a core.
    expect(nextReadHoldMs('auto', 0, { ...paced, loopBusy: 0.4, cpuWait: 0.29, hostBusy: 0.65 })).toBe(AUTO_READ_HOLD_MS);
    expect(nextReadHoldMs('auto', 0, { ...paced, loopBusy: 0.4, cpuWait: 0.1, hostBusy: 0.65 })).toBe(0);
    // Holding, demand between the lines keeps it; a quiet loop with the machine eased lets go.
    expect(nextReadHoldMs('auto', AUTO_READ_HOLD_MS, { ...paced, loopBusy: 0.3, cpuWait: 0.1, hostBusy: 0.5 })).toBe(AUTO_READ_HOLD_MS);
    expect(nextReadHoldMs('auto', AUTO_READ_HOLD_MS, { ...paced, loopBusy: 0.2, cpuWait: 0.05, hostBusy: 0.5 })).toBe(0);
    // Waiting alone is no reason: a loop under 15% busy has nothing worth saving.
    expect(nextReadHoldMs('auto', 0, { ...paced, loopBusy: 0.1, cpuWait: 0.9, hostBusy: 1 })).toBe(0);
  });
  it('never holds fast or short streams, however busy the loop', () => {
    // Chunks 0.1 ms apart share reads already (the `fast` profile: a hold cost 41–55% of throughput).
    expect(nextReadHoldMs('auto', AUTO_READ_HOLD_MS, { loopBusy: 1, hostBusy: 1, cpuWait: 0.5, streams: 40, decodeMs: 1000, chunkGapMs: 0.1 })).toBe(0);
    // 200 ms answers: a 50 ms hold would stretch each by up to a quarter.
    expect(nextReadHoldMs('auto', 0, { loopBusy: 1, hostBusy: 1, cpuWait: 0.5, streams: 40, decodeMs: 200, chunkGapMs: 10 })).toBe(0);
  });
});

describe('CpuWait', () => {
  it.runIf(process.platform === 'linux')('sees a thread wait for its core while another thread on the same core is busy', async () => {
    // In a child pinned to one core (taskset, util-linux), the main thread spins and measures in
    // alternating phases: alone, then with a worker thread spinning on the same core. Other tests
    // may load that core too, so each phase is compared with its neighbour rather than with 0:
    // one more runnable thread always means more waiting (1/2 instead of 0 on an idle core, 2/3
    // instead of 1/2 with one competitor), and reading CPU time instead would go the other way.
    const script = `
      const { Worker } = require('node:worker_threads');
      const flag = new Int32Array(new SharedArrayBuffer(4));
      const w = new Worker(
        'const { workerData } = require("node:worker_threads"); const f = workerData;' +
        'for (;;) { if (Atomics.load(f, 0) === 2) break; if (Atomics.load(f, 0) === 0) Atomics.wait(f, 0, 0, 50); else { const end = Date.now() + 5; while (Date.now() < end); } }',
        { eval: true, workerData: flag },
      );
      const spin = (ms) => { const until = performance.now() + ms; let x = 0; while (performance.now() < until) x += Math.sqrt(x + 1); return x; };
      (async () => {
        const { CpuWait } = await import(${JSON.stringify(join(import.meta.dirname, '..', 'dist', 'runner', 'cpu-wait.js'))});
        await new Promise((r) => w.on('online', r));
        const wait = new CpuWait();
        const phases = [];
        for (let i = 0; i < 3; i++) {
          Atomics.store(flag, 0, 0);
          wait.take(); spin(80); const alone = wait.take();
          Atomics.store(flag, 0, 1); Atomics.notify(flag, 0);
          spin(20); wait.take(); spin(80); const shared = wait.take();
          phases.push({ alone, shared });
        }
        Atomics.store(flag, 0, 2); Atomics.notify(flag, 0);
        console.log(JSON.stringify(phases));
        process.exit(0);
      })();`;
    const child = spawn('taskset', ['-c', '0', process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((r) => child.on('exit', r));
    const phases = JSON.parse(out) as { alone: number | null; shared: number | null }[];
    const sum = (k: 'alone' | 'shared') => phases.reduce((a, p) => a + p[k]!, 0) / phases.length;
    for (const p of phases) {
      expect(p.alone).not.toBeNull();
      expect(p.shared).not.toBeNull();
    }
    // Sharing its core with a spinning thread, the main thread waits about half the time or more.
    expect(sum('shared')).toBeGreaterThan(0.3);
    expect(sum('shared')).toBeGreaterThan(sum('alone') + 0.08);
    expect(sum('shared')).toBeLessThanOrEqual(1);
  });
});

describe('HostCpu', () => {
  it('sees a core kept busy', () => {
    const host = new HostCpu();
    const until = performance.now() + 120;
    let x = 0;
    while (performance.now() < until) x += Math.sqrt(x + 1);
    const busy = host.take();
    expect(x).toBeGreaterThan(0);
    // This thread alone kept one of the machine's cores busy for the whole window.
    expect(busy).toBeGreaterThanOrEqual(0.9 / cpus().length);
    expect(busy).toBeLessThanOrEqual(1);
  });
});

describe('ReadHoldTracker (what a shard feeds the policy)', () => {
  it('averages the streams that ended since the last decision, then starts over', () => {
    const t = new ReadHoldTracker('auto', 1000);
    // Three paced streams: 100 chunks over ~1 s, 10 ms apart.
    for (let i = 0; i < 3; i++) t.noteStream(i * 5, i * 5 + 990, 100);
    expect(t.decide(0.7, 0.2)).toBe(AUTO_READ_HOLD_MS);
    // Nothing ended since: the decision stands while the loop is between the lines…
    expect(t.decide(0.45, 0.2)).toBe(AUTO_READ_HOLD_MS);
    // …and fast streams (256 chunks in 10 ms) end it.
    t.noteStream(0, 10, 256);
    expect(t.decide(0.9, 0.2)).toBe(0);
  });
  it('streams of one chunk say nothing about pacing; a quiet loop lets go', () => {
    const t = new ReadHoldTracker('auto', 1000);
    t.noteStream(0, 0, 1);
    expect(t.decide(0.95, 0.2)).toBe(0);
    for (let i = 0; i < 2; i++) t.noteStream(0, 2000, 80);
    expect(t.decide(0.95, 0.2)).toBe(AUTO_READ_HOLD_MS);
    expect(t.decide(0.1, 0.2)).toBe(0);
  });
  it('caps any hold at its maximum (a quarter of the idle timeout)', () => {
    const auto = new ReadHoldTracker('auto', 20);
    auto.noteStream(0, 1000, 100);
    expect(auto.decide(0.9, 0.2)).toBe(20);
    const fixed = new ReadHoldTracker(400, 50);
    expect(fixed.holdMs).toBe(50);
    expect(fixed.decide(0, 0)).toBe(50);
  });
});

describe('--read-coalesce-ms in a run', () => {
  let sim: RunningSim | undefined;
  afterEach(async () => {
    await sim?.close();
    sim = undefined;
  });

  it('a fixed hold reads paced streams several tokens per read; gauges and shard_end say so', async () => {
    // One token per 10 ms decode step, each its own write.
    sim = await startSim({ profile: parseProfile({ base: 'fast', tokens_per_step: 1, step_ms_base: 10, step_ms_per_seq: 0 }), seed: 3 });
    const dir = tempDir();
    const results: Record<string, { reads: number; tokens: number }> = {};
    for (const hold of [0, 80]) {
      const out = join(dir, `out-${hold}`);
      const summary = await run({ input: writeInput(dir, 24, { max_tokens: 30 }, `in-${hold}.jsonl`), endpoint: `${sim.url}/v1`, out, concurrency: 12, transport: 'raw', readCoalesceMs: hold, gaugeIntervalMs: 100, progress: 'off' });
      expect(summary.requests.succeeded).toBe(24);
      for (const r of loadResults(out)) expect(r.response!.body.choices[0]!.message.content).toBe(completionText(30));
      const events = loadEvents(out);
      const gauges = ofType(events, 'gauge').filter((g) => g.shard >= 0);
      expect(gauges.length).toBeGreaterThan(0);
      for (const g of gauges) {
        expect(g.read_hold_ms).toBe(hold);
        expect(g.rss_mb).toBeGreaterThan(10);
        expect(g.loop_busy).toBeGreaterThanOrEqual(0);
        expect(g.loop_busy).toBeLessThanOrEqual(1);
        expect(g.host_busy).toBeGreaterThanOrEqual(0);
        expect(g.host_busy).toBeLessThanOrEqual(1);
        if (process.platform === 'linux') {
          expect(g.cpu_wait).toBeGreaterThanOrEqual(0);
          expect(g.cpu_wait).toBeLessThanOrEqual(1);
        }
      }
      // The coordinator's gauges carry its memory too.
      for (const g of ofType(events, 'gauge').filter((x) => x.shard === -1)) expect(g.rss_mb).toBeGreaterThan(10);
      const end = ofType(events, 'shard_end')[0]!;
      results[hold] = { reads: end.socket_reads as number, tokens: summary.tokens.completion };
      // The report says whether reads were held, and how long, next to how busy the loop was.
      const report = await analyze([out]);
      expect(report.event_loop.read_hold).toEqual({ held_fraction: hold > 0 ? 1 : 0, max_ms: hold });
      expect(report.event_loop.busy_p50).not.toBeNull();
      // The socket reads shard_end counted, per completion token.
      expect(report.client_cpu.reads_per_completion_token).toBeCloseTo((end0(events).socket_reads as number) / summary.tokens.completion, 3);
      expect(report.event_loop.host_busy_p50).toBeGreaterThanOrEqual(0);
      expect(report.event_loop.host_busy_p50).toBeLessThanOrEqual(1);
      if (process.platform === 'linux') expect(report.event_loop.cpu_wait_p50).not.toBeNull();
      const text = formatReport(report);
      if (hold > 0) expect(text).toContain('reads were held (--read-coalesce-ms)');
      else expect(text).not.toContain('reads were held');
    }
    // Without a hold a paced token is mostly its own read; with 80 ms about eight share one.
    expect(results[80]!.reads).toBeLessThan(results[80]!.tokens * 0.4);
    expect(results[80]!.reads).toBeLessThan(results[0]!.reads / 2);
  });
  /** Six paced streams (a token per 10 ms step) through raw with a fixed hold; the holds the gauges saw. */
  async function heldRun(seed: number, maxTokens: number, options: Record<string, number>) {
    sim = await startSim({ profile: parseProfile({ base: 'fast', tokens_per_step: 1, step_ms_base: 10, step_ms_per_seq: 0 }), seed });
    const dir = tempDir();
    const out = join(dir, 'out');
    const summary = await run({ input: writeInput(dir, 6, { max_tokens: maxTokens }), endpoint: `${sim.url}/v1`, out, transport: 'raw', maxAttempts: 1, gaugeIntervalMs: 100, progress: 'off', ...options });
    const holds = ofType(loadEvents(out), 'gauge').filter((g) => g.shard >= 0).map((g) => g.read_hold_ms);
    return { summary, holds: new Set(holds) };
  }

  it('a hold is capped at a quarter of the idle timeout, so it cannot time out a healthy stream', async () => {
    // An 800 ms hold against a 400 ms idle timeout would fail every stream; capped at 100 ms, the
    // gaps the client sees stay far inside it (room for a loaded machine's lag).
    const { summary, holds } = await heldRun(4, 40, { readCoalesceMs: 800, timeoutIdleS: 0.4 });
    expect(summary.failure_causes).toEqual({});
    expect(summary.requests.succeeded).toBe(6);
    expect(holds).toEqual(new Set([100]));
  });

  it('and at a twentieth of the total timeout, so a stream that ends in time is read in time', async () => {
    // 215 tokens 10 ms apart end at ~2.15 s, inside a 2.5 s total. 1 s holds (from ~10 ms, then
    // ~1.0 and ~2.0 s) would read the end at ~3.0 s, failing every stream with timeout_total;
    // capped at 125 ms, each end is read by ~2.3 s.
    const { summary, holds } = await heldRun(6, 215, { readCoalesceMs: 1000, timeoutTotalS: 2.5 });
    expect(summary.failure_causes).toEqual({});
    expect(summary.requests.succeeded).toBe(6);
    expect(holds).toEqual(new Set([125]));
  });

  it('with undici, a set hold does nothing and the summary says so', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast' }), seed: 5 });
    const dir = tempDir();
    const out = join(dir, 'out');
    const summary = await run({ input: writeInput(dir, 4), endpoint: `${sim.url}/v1`, out, readCoalesceMs: 30, progress: 'off' });
    expect(summary.requests.succeeded).toBe(4);
    expect(summary.hints).toEqual(['--read-coalesce-ms 30 had no effect: read holds apply to --transport raw only (undici reads into its own buffer regardless)']);
    const events = loadEvents(out);
    for (const g of ofType(events, 'gauge')) expect(g.read_hold_ms).toBeUndefined();
    expect(ofType(events, 'shard_end')[0]!.socket_reads).toBeUndefined();
    // The default (auto) is no reason for a hint.
    const plain = await run({ input: writeInput(dir, 2, {}, 'b.jsonl'), endpoint: `${sim.url}/v1`, out: join(dir, 'b'), progress: 'off' });
    expect(plain.hints).toEqual([]);
  });
});
