import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { analyze, parseProfile, startSim, type RunningSim } from '../src/index.js';
import type { RequestSpec } from '../src/input/request-line.js';
import { ChunkQueue, CHUNK_PROTOCOL, chunkJobId } from '../src/runner/distributed/chunk-queue.js';
import { specAt, toColumns, type RequestColumns } from '../src/runner/distributed/request-columns.js';
import { RunChannel } from '../src/runner/distributed/run-channel.js';
import { expectBooksAgree } from './helpers/books.js';
import { CLI, runCli } from './helpers/cli.js';
import { scrape } from './helpers/http.js';
import { exited, killed, until } from './helpers/processes.js';
import { startRedis, type TestRedis } from './helpers/redis.js';
import { loadEvents, loadResults, ofType, tempDir, writeInput } from './helpers/run-dir.js';

let redis: TestRedis;
let sim: RunningSim;
beforeAll(async () => {
  // ~100 ms a request (20 tokens, 5 ms each), so a run lasts long enough to kill things in it.
  [redis, sim] = await Promise.all([
    startRedis(),
    startSim({ profile: parseProfile({ base: 'fast', step_ms_base: 5, tokens_per_step: 1 }) }),
  ]);
});
afterAll(async () => {
  await Promise.all([redis.stop(), sim.close()]);
});

const procs: ChildProcess[] = [];
afterEach(async () => {
  await Promise.all(procs.splice(0).map((p) => killed(p, 'SIGKILL')));
});

function start(args: string[]): ChildProcess & { err: () => string } {
  const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  p.stdout!.resume();
  procs.push(p);
  return Object.assign(p, { err: () => err });
}

function worker(out: string, ...extra: string[]): ChildProcess & { err: () => string } {
  return start(['worker', '--redis', redis.url, '--out', out, '--concurrency', '8', ...extra]);
}

/** A coordinator's `run` over the shared simulator and Redis, into `out`. */
function coordinatorArgs(input: string, out: string, ...extra: string[]): string[] {
  return [
    'run',
    input,
    '--endpoint',
    `${sim.url}/v1`,
    '--out',
    out,
    '--redis',
    redis.url,
    '--progress',
    'off',
    ...extra,
  ];
}

/** A run of `n` requests in a new directory: its `--out` and its coordinator's arguments. */
function newRun(n: number): { out: string; args: string[] } {
  const dir = tempDir();
  const out = join(dir, 'out');
  return { out, args: coordinatorArgs(writeInput(dir, n, { max_tokens: 20 }), out) };
}

function resultLines(out: string): number {
  const p = join(out, 'results.jsonl');
  return existsSync(p) ? readFileSync(p, 'utf8').split('\n').filter(Boolean).length : 0;
}

/** Exactly one result per input line, all succeeded, and the report counts each once. */
async function expectExactlyOnce(out: string, n: number): Promise<void> {
  const results = loadResults(out);
  expect(results).toHaveLength(n);
  expect(new Set(results.map((r) => r.custom_id)).size).toBe(n);
  expect(results.every((r) => r.error === null)).toBe(true);
  await expectBooksAgree(out);
}

describe('distributed runs on BullMQ + a real Redis', () => {
  it(
    'starts while Redis is down and rides through until it is up (coordinator and worker)',
    { timeout: 90_000 },
    async () => {
      const own = await startRedis();
      const s = await startSim({ profile: parseProfile({ base: 'fast' }) });
      const procs: ChildProcess[] = [];
      try {
        await own.stop();
        const dir = tempDir();
        const input = writeInput(dir, 300);
        const out = join(dir, 'out');
        const start = (args: string[]) => {
          const p = spawn(process.execPath, [CLI, ...args, '--redis', own.url, '--redis-wait-s', '60'], {
            stdio: ['ignore', 'ignore', 'pipe'],
          });
          const said = { err: '' };
          p.stderr!.on('data', (d: Buffer) => (said.err += d.toString()));
          procs.push(p);
          return { p, said };
        };
        const coord = start(['run', input, '--endpoint', `${s.url}/v1`, '--out', out, '--progress', 'off']);
        const worker = start(['worker', '--out', out, '--once']);
        const waiting = () => /cannot be reached/.test(coord.said.err) && /cannot be reached/.test(worker.said.err);
        await until(waiting, 30_000, 'the coordinator and the worker saying Redis cannot be reached');
        await own.start();
        expect(await exited(coord.p), coord.said.err).toBe(0);
        expect(await exited(worker.p), worker.said.err).toBe(0);
        for (const { said } of [coord, worker]) {
          expect(said.err.match(/cannot be reached/g)).toHaveLength(1);
          expect(said.err).toMatch(/answers again after \d+\.\d s/);
        }
        expect(new Set(loadResults(out).map((r) => r.custom_id)).size).toBe(300);
      } finally {
        for (const p of procs) await killed(p, 'SIGKILL');
        await s.close();
        await own.stop();
      }
    },
  );

  it(
    'three workers, five of them killed with kill -9 at random moments: exactly one result per line, one report',
    { timeout: 150_000 },
    async () => {
      const n = 2400;
      const { out, args } = newRun(n);
      const coordinator = start(args);
      const workers = [worker(out, '--metrics-port', '0'), worker(out), worker(out)];
      await until(() => resultLines(out) > 100, 30_000, 'the first results');
      // Each worker serves its own /metrics.
      const metricsUrl = /worker metrics on (\S+)/.exec(workers[0]!.err())?.[1];
      expect(metricsUrl, workers[0]!.err()).toBeDefined();
      expect((await scrape(metricsUrl!.replace(/\/metrics$/, ''))).get('shardline_in_flight_limit')).toBe(8);
      for (let round = 0; round < 5; round++) {
        await new Promise((r) => setTimeout(r, 300 + Math.random() * 900));
        const alive = workers.filter((w) => w.exitCode === null && w.signalCode === null);
        await killed(alive[Math.floor(Math.random() * alive.length)]!, 'SIGKILL');
        workers.push(worker(out));
      }
      expect(resultLines(out)).toBeLessThan(n);
      const code = await exited(coordinator);
      expect(code, coordinator.err()).toBe(0);
      await expectExactlyOnce(out, n);
      // One report over every machine's files: shards numbered run-wide, events under one run id.
      const events = loadEvents(out);
      expect(new Set(events.map((e) => e.run)).size).toBe(1);
      // Eight workers started (a killed one may die before its shard starts); no number used twice.
      const pidsOf = new Map<number, Set<number>>();
      for (const e of ofType(events, 'shard_start')) pidsOf.set(e.shard, (pidsOf.get(e.shard) ?? new Set()).add(e.pid));
      expect(pidsOf.size).toBeGreaterThanOrEqual(4);
      expect(pidsOf.size).toBeLessThanOrEqual(8);
      for (const pids of pidsOf.values()) expect(pids.size).toBe(1);
      const report = await analyze([out]);
      expect(report.requests.succeeded).toBe(n);
      expect(report.results?.agree).toBe(true);
    },
  );

  it(
    'hands the chunks of a worker wedged past its lock (SIGSTOP) to another; woken after the run, it adds nothing',
    { timeout: 120_000 },
    async () => {
      const n = 1200;
      const { out, args } = newRun(n);
      const coordinator = start(args);
      const wedged = worker(out);
      worker(out);
      await until(() => resultLines(out) > 100, 30_000, 'the first results');
      wedged.kill('SIGSTOP');
      // The other worker finishes the run once the wedged one's chunk locks (10 s) expire.
      expect(await exited(coordinator), coordinator.err()).toBe(0);
      await expectExactlyOnce(out, n);
      const results = readFileSync(join(out, 'results.jsonl'), 'utf8');
      const runId = (JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as { run_id: string }).run_id;
      wedged.kill('SIGCONT');
      // Woken, it finds the run over, lets it go and waits for the next one.
      await until(
        () => /worker \w+ with run/.test(wedged.err()),
        30_000,
        `the woken worker to let the run go:\n${wedged.err()}`,
      );
      await new Promise((r) => setTimeout(r, 500));
      expect(readFileSync(join(out, 'results.jsonl'), 'utf8')).toBe(results);
      // What it finished while wedged does not bring the run's results stream back to life in Redis.
      const channel = new RunChannel(redis.url);
      try {
        expect(await channel.redis.exists(`shardline:run:${runId}:results`)).toBe(0);
        // And the run's other keys expire rather than stay for good.
        const left = await channel.redis.keys(`shardline:run:${runId}:*`);
        expect(left.sort()).toEqual(['config', 'finished', 'shards'].map((k) => `shardline:run:${runId}:${k}`));
        for (const k of left) expect(await channel.redis.ttl(k), k).toBeGreaterThan(0);
      } finally {
        await channel.close();
      }
      expect(wedged.exitCode).toBeNull();
      // It says what happened, once a chunk, and not as a Redis failure.
      expect(wedged.err()).toMatch(
        new RegExp(`chunk ${runId}\\.\\d+ went to another worker while this one was silent past its lock`),
      );
      expect(wedged.err()).not.toMatch(/Redis at/);
    },
  );

  it(
    'a coordinator killed with kill -9 and started again finishes the run without running finished requests again',
    { timeout: 120_000 },
    async () => {
      const n = 1500;
      const { out, args } = newRun(n);
      const first = start(args);
      // One worker keeps a child process per shard (--shards 2); the others run their one shard in process.
      const workers = [worker(out, '--shards', '2'), worker(out), worker(out)];
      await until(() => resultLines(out) > 400, 30_000, 'a third of the results');
      await killed(first, 'SIGKILL');
      const before = loadResults(out).length;
      expect(before).toBeLessThan(n);
      const again = await runCli(args, { timeoutMs: 90_000 });
      expect(again.code, again.stderr).toBe(0);
      await expectExactlyOnce(out, n);
      const summary = JSON.parse(again.stdout) as { requests: { skipped: number } };
      // The resumed coordinator skipped what results.jsonl already held when it started.
      expect(summary.requests.skipped).toBeGreaterThanOrEqual(before);
      const shardPids = ofType(loadEvents(out), 'shard_start').map((e) => e.pid);
      expect(shardPids).toHaveLength(4);
      expect(shardPids.filter((pid) => workers.some((w) => w.pid === pid))).toHaveLength(2);
    },
  );

  it(
    'a coordinator started again over chunks a former one cut larger (several blocks) adds none overlapping them: ' +
      'no request runs twice',
    { timeout: 90_000 },
    async () => {
      const n = 1500;
      const { out, args } = newRun(n);
      // No worker yet: the first coordinator only cuts its chunks (one block each: no results, no pace).
      const first = start(args);
      const queue = new ChunkQueue<RequestColumns>(redis.url);
      try {
        await until(() => existsSync(join(out, 'run.json')), 30_000, 'run.json');
        const runId = (JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')) as { run_id: string }).run_id;
        await until(async () => (await queue.blocksAt(runId, 5)) !== undefined, 30_000, 'six chunks in Redis');
        await killed(first, 'SIGKILL');
        // Recut as a coordinator at a fast pace would have: blocks 0–3 in one chunk, 4–5 in another.
        const items: RequestSpec[] = [];
        for (let b = 0; b < 6; b++) {
          const id = chunkJobId(runId, b);
          const cols = (await queue.queue.getJob(id))!.data.items;
          items.push(...cols.ids.map((_, i) => specAt(cols, i)));
          await queue.queue.remove(id);
        }
        expect(items.map((r) => r.id)).toEqual(Array.from({ length: n }, (_, i) => `req-${i}`));
        await queue.add([
          { runId, index: 0, blocks: 4, protocol: CHUNK_PROTOCOL, items: toColumns(items.slice(0, 1024)) },
          { runId, index: 4, blocks: 2, protocol: CHUNK_PROTOCOL, items: toColumns(items.slice(1024)) },
        ]);
        worker(out);
        worker(out);
        const again = await runCli(args, { timeoutMs: 60_000 });
        expect(again.code, again.stderr).toBe(0);
        await expectExactlyOnce(out, n);
        // Every request was sent once: no chunk of the second coordinator's overlapped the former's.
        const starts = ofType(loadEvents(out), 'attempt_start');
        expect(new Set(starts.map((e) => e.id)).size).toBe(n);
        expect(starts).toHaveLength(n);
        // The run's chunks are gone from Redis once it finished, the former coordinator's included.
        expect(await queue.blocksAt(runId, 0)).toBeUndefined();
        expect(await queue.blocksAt(runId, 4)).toBeUndefined();
      } finally {
        await queue.close();
      }
    },
  );

  it('survives Redis killed with kill -9 and restarted mid-run (AOF)', { timeout: 120_000 }, async () => {
    const n = 1500;
    const { out, args } = newRun(n);
    const coordinator = start(args);
    worker(out);
    worker(out);
    worker(out);
    await until(() => resultLines(out) > 300, 30_000, 'the first results');
    await redis.restart();
    const code = await exited(coordinator);
    expect(code, coordinator.err()).toBe(0);
    await expectExactlyOnce(out, n);
  });

  it(
    'runs with --local-workers in one command, and puts a chunk of another run back untouched',
    { timeout: 90_000 },
    async () => {
      const leftover = new ChunkQueue<RequestColumns>(redis.url);
      try {
        await leftover.add([
          {
            runId: 'an-abandoned-run',
            index: 0,
            protocol: CHUNK_PROTOCOL,
            items: toColumns([{ id: 'x', lineNo: 1, body: '{}', stream: true }]),
          },
        ]);
        const dir = tempDir();
        const out = join(dir, 'out');
        const r = await runCli(
          [
            'run',
            writeInput(dir, 600, { max_tokens: 20 }),
            '--endpoint',
            `${sim.url}/v1`,
            '--out',
            out,
            '--redis',
            redis.url,
            '--local-workers',
            '2',
            '--concurrency',
            '5',
            '--progress',
            'off',
          ],
          { timeoutMs: 80_000 },
        );
        expect(r.code, r.stderr).toBe(0);
        await expectExactlyOnce(out, 600);
        // Workers given no --concurrency take the run's, not the default; each names its host.
        const starts = ofType(loadEvents(out), 'shard_start');
        expect(starts.map((e) => [e.shard, e.concurrency, e.host]).sort()).toEqual([
          [0, 5, hostname()],
          [1, 5, hostname()],
        ]);
        const job = await leftover.queue.getJob(chunkJobId('an-abandoned-run', 0));
        expect(await job!.getState()).toBe('delayed');
      } finally {
        await leftover.queue.remove(chunkJobId('an-abandoned-run', 0));
        await leftover.close();
      }
    },
  );

  it('holds --global-concurrency across workers, checked from the merged event log', { timeout: 90_000 }, async () => {
    const dir = tempDir();
    const out = join(dir, 'out');
    const n = 900;
    const input = writeInput(dir, n, { max_tokens: 20 });
    const coordinator = start(coordinatorArgs(input, out, '--global-concurrency', '10', '--metrics-port', '0'));
    // Three workers that could hold 24 in flight between them.
    worker(out);
    worker(out);
    worker(out);
    // The coordinator serves the run's aggregate /metrics, from every worker's results.
    await until(() => resultLines(out) > 100, 30_000, 'the first results');
    const metricsUrl = /metrics on (\S+)/.exec(coordinator.err())?.[1];
    expect(metricsUrl, coordinator.err()).toBeDefined();
    const m = await scrape(metricsUrl!.replace(/\/metrics$/, ''));
    expect(m.get('shardline_requests_total{outcome="succeeded"}')).toBeGreaterThan(100);
    expect(m.get('shardline_completion_tokens_per_minute')).toBeGreaterThan(0);
    expect(await exited(coordinator), coordinator.err()).toBe(0);
    await expectExactlyOnce(out, n);
    const events = loadEvents(out);
    const steps = [
      ...ofType(events, 'attempt_start').map((e) => ({ ts: e.ts, d: 1 })),
      ...ofType(events, 'attempt_end').map((e) => ({ ts: e.ts, d: -1 })),
    ].sort((a, b) => a.ts - b.ts || a.d - b.d);
    let open = 0;
    let peak = 0;
    for (const s of steps) peak = Math.max(peak, (open += s.d));
    expect(peak).toBeLessThanOrEqual(10);
    // The bound is used, not undercut: at some moment all 10 were in flight.
    expect(peak).toBe(10);
    // And more than one worker took part.
    expect(new Set(ofType(events, 'attempt_start').map((e) => e.shard)).size).toBeGreaterThan(1);
  });

  it(
    "counts attempts, retries, prompt tokens, failure statuses and TTFT in the summary by a local run's definitions",
    { timeout: 120_000 },
    async () => {
      const flaky = await startSim({ profile: parseProfile({ base: 'fast', faults: { errors: { p_500: 0.3 } } }) });
      try {
        const dir = tempDir();
        const input = writeInput(dir, 400, { max_tokens: 4 });
        const args = [
          'run',
          input,
          '--endpoint',
          `${flaky.url}/v1`,
          '--progress',
          'off',
          '--max-attempts',
          '2',
          '--retry-backoff-s',
          '0.01',
          '--retry-budget',
          '1',
          '--allow-failures',
          '100%',
        ];
        const runs = await Promise.all([
          runCli([...args, '--out', join(dir, 'distributed'), '--redis', redis.url, '--local-workers', '2'], {
            timeoutMs: 100_000,
          }),
          runCli([...args, '--out', join(dir, 'local')], { timeoutMs: 100_000 }),
        ]);
        for (const [i, name] of ['distributed', 'local'].entries()) {
          const r = runs[i]!;
          expect(r.code, r.stderr).toBe(0);
          const out = join(dir, name);
          const summary = JSON.parse(r.stdout) as {
            requests: { succeeded: number; failed: number };
            attempts: number;
            retries: number;
            tokens: { prompt: number; completion: number };
            failure_statuses: Record<string, number>;
            ttft_p95_ms: number | null;
          };
          const results = loadResults(out);
          const starts = ofType(loadEvents(out), 'attempt_start');
          // What the results and the merged events say, counted here by hand.
          const statuses: Record<string, number> = {};
          for (const e of results)
            if (e.error?.status !== undefined) statuses[e.error.status] = (statuses[e.error.status] ?? 0) + 1;
          expect(summary.requests.failed, name).toBeGreaterThan(0);
          expect(summary.attempts, name).toBe(starts.length);
          expect(summary.retries, name).toBe(starts.length - results.length);
          expect(summary.retries, name).toBeGreaterThan(0);
          expect(summary.tokens.prompt, name).toBe(
            results.reduce((a, e) => a + (e.response?.body.usage?.prompt_tokens ?? 0), 0),
          );
          expect(summary.tokens.prompt, name).toBeGreaterThan(0);
          expect(summary.failure_statuses, name).toEqual(statuses);
          expect(summary.ttft_p95_ms, name).toBeGreaterThan(0);
        }
      } finally {
        await flaky.close();
      }
    },
  );

  it(
    '--fail-fast stops the whole distributed run when every request is refused (exit 1), not each worker alone',
    { timeout: 90_000 },
    async () => {
      const dir = tempDir();
      const out = join(dir, 'out');
      // The server's root instead of its API base URL: every request gets 404.
      const r = await runCli(
        [
          'run',
          writeInput(dir, 3000),
          '--endpoint',
          sim.url,
          '--out',
          out,
          '--redis',
          redis.url,
          '--local-workers',
          '2',
          '--concurrency',
          '4',
          '--progress',
          'off',
        ],
        { timeoutMs: 80_000 },
      );
      expect(r.code, r.stderr).toBe(1);
      const summary = JSON.parse(r.stdout) as {
        status: string;
        requests: { failed: number; succeeded: number };
        error: string;
      };
      expect(summary.status).toBe('failed');
      expect(summary.error).toMatch(
        new RegExp(
          String.raw`^the first \d+ requests to finish all failed with HTTP 404 \(\d+\): ` +
            String.raw`stopped before sending the rest \(--fail-fast\)`,
        ),
      );
      expect(loadResults(out)).toHaveLength(summary.requests.failed);
      // Stopped within the chunks the workers held (two each), not after the whole input.
      expect(ofType(loadEvents(out), 'attempt_start').length).toBeLessThanOrEqual(4 * 256);
    },
  );

  it(
    'exits 2 naming a bad --redis URL, and 1 naming the URL when Redis is down (password hidden) or the ' +
      'coordinator runs another version',
    async () => {
      const dir = tempDir();
      const input = writeInput(dir, 3);
      const bad = await runCli([
        'run',
        input,
        '--endpoint',
        `${sim.url}/v1`,
        '--out',
        join(dir, 'a'),
        '--redis',
        'http://127.0.0.1:6379',
      ]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/`--redis` to be a redis:\/\/ or rediss:\/\/ URL/);
      const down = await runCli([
        'run',
        input,
        '--endpoint',
        `${sim.url}/v1`,
        '--out',
        join(dir, 'b'),
        '--redis',
        'redis://:hunter2@127.0.0.1:1',
        '--redis-wait-s',
        '1',
      ]);
      expect(down.code).toBe(1);
      // It said once that it would try again, then gave up naming how long it tried.
      expect(down.stderr).toMatch(
        /Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1 cannot be reached .*trying again for up to 1 s/,
      );
      expect(down.stderr.match(/trying again/g)).toHaveLength(1);
      expect(down.stderr).toMatch(
        /Cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1.*tried for .* s, --redis-wait-s 1/,
      );
      expect(down.stderr).not.toContain('hunter2');
      const w = await runCli([
        'worker',
        '--redis',
        'redis://127.0.0.1:1',
        '--out',
        join(dir, 'c'),
        '--redis-wait-s',
        '0',
      ]);
      expect(w.code).toBe(1);
      expect(w.stderr).toMatch(/Cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
      expect(w.stderr).not.toMatch(/trying again/);
      const lw = await runCli([
        'run',
        input,
        '--endpoint',
        `${sim.url}/v1`,
        '--out',
        join(dir, 'd'),
        '--local-workers',
        '2',
      ]);
      expect(lw.code).toBe(2);
      expect(lw.stderr).toMatch(/`--local-workers` only with `--redis`/);
      // A coordinator of another chunk protocol (another shardline version): the worker names both.
      const channel = new RunChannel(redis.url);
      try {
        await channel.redis
          .multi()
          .set(
            'shardline:run:from-the-future:config',
            JSON.stringify({ runId: 'from-the-future', version: '9.9.9', protocol: 999, options: {} }),
          )
          .set('shardline:run:current', 'from-the-future')
          .exec();
        const old = await runCli(['worker', '--redis', redis.url, '--out', join(dir, 'g')]);
        expect(old.code).toBe(1);
        expect(old.stderr).toMatch(
          new RegExp(
            `shardline 9\\.9\\.9 \\(chunk protocol 999\\); this worker is shardline \\S+ \\(protocol ` +
              `${CHUNK_PROTOCOL}\\)`,
          ),
        );
        await channel.finish('from-the-future');
      } finally {
        await channel.close();
      }
      const gc = await runCli([
        'run',
        input,
        '--endpoint',
        `${sim.url}/v1`,
        '--out',
        join(dir, 'f'),
        '--global-concurrency',
        '8',
      ]);
      expect(gc.code).toBe(2);
      expect(gc.stderr).toMatch(/`--global-concurrency` only with `--redis`/);
      const rpm = await runCli([
        'run',
        input,
        '--endpoint',
        `${sim.url}/v1`,
        '--out',
        join(dir, 'h'),
        '--redis',
        redis.url,
        '--rate',
        '600',
      ]);
      expect(rpm.code).toBe(2);
      expect(rpm.stderr).toMatch(/Expected no `--rate` with `--redis`, got `600`: every worker would apply it/);
    },
  );
});
