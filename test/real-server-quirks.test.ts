import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { analyze, parseProfile, run, startSim, type RunningSim } from '../src/index.js';
import { expectBooksAgree } from './helpers/books.js';
import { runCli } from './helpers/cli.js';
import { loadEvents, loadResults, ofType, tempDir, writeInput } from './helpers/run-dir.js';

// What llama.cpp's llama-server showed a client (issue "Ride real servers cleanly"), reproduced by
// the simulator's quirks so every `npm test` covers each path; conformance/run-kit.mjs checks the
// same against the real server.

let sim: RunningSim | undefined;
let extra: Server | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
  await new Promise<void>((r) => (extra ? extra.close(() => r()) : r()));
  extra = undefined;
});

const quiet = { progress: 'off' as const };

describe('a host that closes connections after streamed answers while advertising keep-alive', () => {
  for (const transport of ['undici', 'raw'] as const) {
    it(`costs no attempts (${transport}): stale connections are re-sent at once, then no longer reused`, async () => {
      sim = await startSim({ profile: parseProfile({ base: 'fast', slots: 4, faults: { close_after_stream: true } }) });
      const dir = tempDir();
      const out = join(dir, 'out');
      const summary = await run({
        input: writeInput(dir, 300, { stream: true }),
        endpoint: `${sim.url}/v1`,
        out,
        concurrency: 4,
        transport,
        ...quiet,
      });
      expect(summary.exit_code).toBe(0);
      expect(summary.requests.succeeded).toBe(300);
      const events = loadEvents(out);
      const stale = ofType(events, 'stale_connection');
      // The race really happened (the client did meet closed connections) …
      expect(stale.length).toBeGreaterThan(0);
      expect(stale.every((e) => e.after_stream === true)).toBe(true);
      // … and then it learned: no more than a few per shard before it stopped reusing.
      expect(ofType(events, 'keepalive_off')).toHaveLength(1);
      expect(stale.length).toBeLessThanOrEqual(8);
      // None of it was an attempt: every request took exactly one, and nothing backed off.
      expect(ofType(events, 'attempt_start')).toHaveLength(300);
      expect(ofType(events, 'backoff')).toHaveLength(0);
      const report = await analyze([out]);
      expect(report.retries.rate).toBe(0);
      expect(report.connections.stale_resends).toBe(stale.length);
      expect(report.connections.keepalive_off_shards).toBe(1);
      await expectBooksAgree(out);
    });
  }

  it(
    're-sends once per attempt: a server that drops every reused and fresh connection still fails ' + 'the request',
    async () => {
      // Answers the first request it ever gets, then drops every connection a request arrives on.
      let served = 0;
      extra = createServer((req, res) => {
        req.resume();
        req.on('end', () => {
          if (served++ > 0) return req.socket.destroy();
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({
              id: 'x',
              object: 'chat.completion',
              choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
              usage: { prompt_tokens: 1, completion_tokens: 1 },
            }),
          );
        });
      });
      await new Promise<void>((r) => extra!.listen(0, '127.0.0.1', () => r()));
      const port = (extra.address() as AddressInfo).port;
      const dir = tempDir();
      const out = join(dir, 'out');
      const summary = await run({
        input: writeInput(dir, 2, { stream: false }),
        endpoint: `http://127.0.0.1:${port}/v1`,
        out,
        concurrency: 1,
        maxAttempts: 2,
        retryBackoffS: 0.01,
        ...quiet,
      });
      expect(summary.requests).toMatchObject({ succeeded: 1, failed: 1 });
      const events = loadEvents(out);
      // The second request went out on the first one's connection: dropped, re-sent once on a fresh
      // one, dropped again — a real failure, retried by the policy, and dropped for good.
      const stale = ofType(events, 'stale_connection');
      expect(stale).toHaveLength(1);
      expect(stale[0]).toMatchObject({ id: 'req-1', attempt: 1 });
      const ends = ofType(events, 'attempt_end').filter((e) => e.id === 'req-1');
      expect(ends.map((e) => [e.attempt, e.cause])).toEqual([
        [1, 'conn_reset'],
        [2, 'conn_reset'],
      ]);
    },
  );
});

describe('an endpoint that goes down and comes back', () => {
  it('pauses dispatch, spends no attempts meanwhile, and resumes within a second or two of its return', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast', slots: 4, step_ms_base: 2 }) });
    const dir = tempDir();
    const out = join(dir, 'out');
    let backAtMs = 0;
    let downAtMs = 0;
    // The outage starts once the run is going (the breaker engages only for an endpoint that has
    // answered; on a loaded machine the shards take a while to start): a kill -9 and restart on the
    // same port, then a loading period answered 503 "Loading model", as llama-server does.
    const poll = setInterval(() => {
      if (downAtMs || sim!.stats().requests < 40) return;
      downAtMs = Date.now();
      void sim!.outage(1500, 300).then(() => (backAtMs = Date.now() + 300));
    }, 20);
    const summary = await run({
      input: writeInput(dir, 400, { stream: true, max_tokens: 48 }),
      endpoint: `${sim.url}/v1`,
      out,
      concurrency: 4,
      // Were attempts against the dead port charged, these requests would fail for good.
      maxAttempts: 2,
      retryBackoffS: 0.05,
      ...quiet,
    });
    clearInterval(poll);
    expect(downAtMs).toBeGreaterThan(0);
    expect(summary.exit_code).toBe(0);
    expect(summary.requests).toMatchObject({ succeeded: 400, failed: 0 });
    const events = loadEvents(out);
    expect(ofType(events, 'endpoint_down').length).toBeGreaterThanOrEqual(1);
    expect(ofType(events, 'endpoint_up').length).toBe(ofType(events, 'endpoint_down').length);
    const paused = ofType(events, 'paused');
    expect(paused.length).toBeGreaterThan(0);
    // While down the shard sends one probe at a time: a few attempts a second, not the backlog.
    expect(paused.length).toBeLessThan(40);
    // Dispatch resumed promptly after the server answered again (event ts are epoch ms).
    const firstOk = ofType(events, 'attempt_end').find((e) => e.ts >= backAtMs && e.outcome === 'ok');
    expect(firstOk).toBeDefined();
    const firstAfter = ofType(events, 'attempt_start').find((e) => e.ts >= backAtMs)!;
    expect(firstAfter.ts - backAtMs).toBeLessThan(2000);
    const report = await analyze([out]);
    expect(report.outages.count).toBeGreaterThanOrEqual(1);
    expect(report.outages.paused_attempts).toBe(paused.length);
    expect(report.buckets_ms.endpoint_down).toBeGreaterThan(0);
    // Waiting out the outage is neither an admission gap nor a retry loop.
    const modes = report.verdict.findings.map((f) => f.mode);
    expect(modes).toContain('endpoint_down');
    expect(modes, JSON.stringify(report.verdict.findings)).not.toContain('admission_gap');
    expect(modes).not.toContain('retry_loop');
    await expectBooksAgree(out);
  });

  it('does not pause for an endpoint that never answered: a wrong port fails as before', async () => {
    const dir = tempDir();
    const out = join(dir, 'out');
    const summary = await run({
      input: writeInput(dir, 3),
      endpoint: 'http://127.0.0.1:9/v1',
      out,
      concurrency: 1,
      maxAttempts: 2,
      retryBackoffS: 0.01,
      ...quiet,
    });
    expect(summary.requests.failed).toBe(3);
    expect(ofType(loadEvents(out), 'endpoint_down')).toHaveLength(0);
  });
});

describe('small things seen on a real server', () => {
  it('does not count --retry-failed re-runs as retries, and the last progress line keeps the limit', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast', faults: { errors: { p_503: 1 } } }) });
    const dir = tempDir();
    const input = writeInput(dir, 20);
    const out = join(dir, 'out');
    const first = await runCli([
      'run',
      input,
      '--endpoint',
      `${sim.url}/v1`,
      '--out',
      out,
      '--max-attempts',
      '1',
      '--concurrency',
      '4',
      '--progress',
      'lines',
    ]);
    expect(first.code).toBe(3);
    await sim.close();
    sim = await startSim({ profile: parseProfile({ base: 'fast' }) });
    const again = await runCli([
      'run',
      input,
      '--endpoint',
      `${sim.url}/v1`,
      '--out',
      out,
      '--retry-failed',
      '--concurrency',
      '4',
      '--progress',
      'lines',
    ]);
    expect(again.code).toBe(0);
    // The final progress line says the run's limit, not `0/0` once the shards have stopped.
    const lines = again.stderr.split('\n').filter((l) => l.includes('in-flight'));
    expect(lines.at(-1)).toMatch(/in-flight 0\/4 /);
    const report = await analyze([out]);
    expect(report.requests).toMatchObject({ total: 20, succeeded: 20, failed: 0 });
    expect(report.attempts).toBe(40);
    expect(report.retries.rate).toBe(0);
    expect(loadResults(out)).toHaveLength(20);
  });
});

/** Mount a small tmpfs (root only); undefined with the reason printed when it cannot be had here. */
function smallTmpfs(dir: string, size: string): boolean {
  if (process.getuid?.() !== 0) {
    console.log(`skipped the disk-full test: it mounts a tmpfs and needs root (uid ${process.getuid?.()})`);
    return false;
  }
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
    return true;
  } catch (err) {
    console.log(
      `skipped the disk-full test: mount -t tmpfs failed here ` +
        `(${String((err as { stderr?: Buffer }).stderr ?? err).trim()})`,
    );
    return false;
  }
}

describe('a full disk', () => {
  it('stops with one clear line and exit 1, loses nothing, and the same command then finishes the run', async () => {
    const dir = tempDir();
    const mnt = join(dir, 'mnt');
    if (!smallTmpfs(mnt, '600k')) return;
    try {
      sim = await startSim({ profile: parseProfile({ base: 'fast' }) });
      const input = writeInput(dir, 600, { stream: true, max_tokens: 64 });
      const out = join(mnt, 'out');
      const args = [
        'run',
        input,
        '--endpoint',
        `${sim.url}/v1`,
        '--out',
        out,
        '--concurrency',
        '8',
        '--shards',
        '2',
        '--progress',
        'off',
      ];
      const full = await runCli(args);
      expect(full.code).toBe(1);
      expect(full.stderr).toMatch(
        new RegExp(
          String.raw`cannot write \S+\/(results\.jsonl|run\.json|events\/\S+\.jsonl): no space left on device ` +
            String.raw`\(ENOSPC\)\. The run stopped with nothing half-recorded: free some space`,
        ),
      );
      // No stack trace, and it says so once per cause, not once per shard and file.
      expect(full.stderr).not.toMatch(/\n\s+at /);
      expect(full.stderr.match(/no space left/g)!.length).toBeLessThanOrEqual(2);
      // Whole lines only: what a failed write had put in was taken back.
      const before = loadResults(out).length;
      expect(before).toBeLessThan(600);
      for (const e of loadEvents(out)) expect(e.v).toBe(1);
      // Space is freed: the same command resumes and finishes with one result per line.
      execFileSync('mount', ['-o', 'remount,size=64m', mnt]);
      const again = await runCli(args);
      expect(again.code, again.stderr).toBe(0);
      const results = loadResults(out);
      expect(results).toHaveLength(600);
      expect(new Set(results.map((r) => r.custom_id)).size).toBe(600);
      await expectBooksAgree(out);
    } finally {
      await sim?.close();
      sim = undefined;
      execFileSync('umount', ['-l', mnt]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
