import { spawn } from 'node:child_process';
import { cpSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { analyze, parseProfile, startSim, type RunningSim } from '../src/index.js';
import { expectBooksAgree } from './helpers/books.js';
import { CLI, runCli } from './helpers/cli.js';
import { loadEvents, loadResults, ofType, tempDir, writeInput } from './helpers/run-dir.js';

let sim: RunningSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

/** Every fault at once: resets and stalls mid-stream, 5xx in bursts, 429 storms past a per-second budget. */
const faultMatrix = parseProfile({
  base: 'fast',
  step_ms_base: 3,
  step_ms_per_seq: 0,
  tokens_per_step: 1,
  jitter: 0.3,
  faults: {
    reset: { p: 0.05, after_tokens: 4 },
    stall: { p: 0.03, after_tokens: 4, stall_ms: 1500 },
    errors: { p_500: 0.3, p_503: 0.2, burst_every_s: 2, burst_len_s: 0.4 },
    rate_limit: { requests_per_min: 9000, burst_s: 1, random_429_p: 0.03, retry_after_s: 0 },
  },
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function livePids(out: string): Promise<number[]> {
  if (!existsSync(join(out, 'events'))) return [];
  const started = ofType(loadEvents(out), 'shard_start').map((e) => e.pid);
  return started.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
}

describe('fault-matrix soak: kill -9 of a shard and of the whole run under every fault at once', () => {
  it(
    'ends with exactly one result per line, each counted by the report, no empty success',
    { timeout: 180_000 },
    async () => {
      sim = await startSim({ profile: faultMatrix, seed: 7 });
      const dir = tempDir();
      const n = 400;
      const input = writeInput(dir, n);
      const out = join(dir, 'out');
      const args = [
        'run',
        input,
        '--endpoint',
        `${sim.url}/v1`,
        '--out',
        out,
        '--shards',
        '2',
        '--concurrency',
        '8',
        '--max-attempts',
        '10',
        '--retry-backoff-s',
        '0.05',
        '--retry-backoff-max-s',
        '0.4',
        '--timeout-idle-s',
        '0.5',
        '--progress',
        'off',
      ];
      for (let round = 0; round < 5; round++) {
        const child = spawn(process.execPath, [CLI, ...args], { stdio: 'ignore' });
        const exited = new Promise((r) => child.once('exit', r));
        await sleep(300 + Math.floor(Math.random() * 700));
        // A shard first (the run replaces it and goes on), then the whole run.
        const shards = (await livePids(out)).filter((pid) => pid !== child.pid);
        const victim = shards[Math.floor(Math.random() * shards.length)];
        if (victim !== undefined) process.kill(victim, 'SIGKILL');
        await sleep(200 + Math.floor(Math.random() * 800));
        child.kill('SIGKILL');
        await exited;
        // Orphaned shards notice their coordinator is gone and exit; wait so the next run has the files alone.
        for (let i = 0; i < 100 && (await livePids(out)).length > 0; i++) await sleep(50);
        if (existsSync(join(out, 'results.jsonl'))) {
          const ids = loadResults(out).map((r) => r.custom_id);
          expect(new Set(ids).size, `round ${round}`).toBe(ids.length);
        }
      }
      const final = await runCli(args, { timeoutMs: 120_000 });
      expect([0, 3], final.stderr).toContain(final.code);
      const results = loadResults(out);
      expect(new Set(results.map((r) => r.custom_id)).size).toBe(n);
      expect(results).toHaveLength(n);
      for (const r of results) {
        if (r.error !== null) continue;
        expect(r.response!.body.choices[0]!.message.content.length, r.custom_id).toBeGreaterThan(0);
        expect(r.response!.body.usage!.completion_tokens, r.custom_id).toBeGreaterThan(0);
      }
      await expectBooksAgree(out);
      // The faults really happened: the matrix is not a quiet run.
      const causes = (await analyze([out])).retries.causes;
      expect(Object.keys(causes).length).toBeGreaterThanOrEqual(3);
    },
  );

  it("report warns, with the count, when a shard's event file is missing from the log", async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast' }) });
    const dir = tempDir();
    const out = join(dir, 'out');
    const r = await runCli([
      'run',
      writeInput(dir, 60),
      '--endpoint',
      `${sim.url}/v1`,
      '--out',
      out,
      '--shards',
      '2',
      '--progress',
      'off',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const copy = join(dir, 'copy');
    cpSync(out, copy, { recursive: true });
    // Drop the file of the shard that finished the most requests.
    const ends = ofType(loadEvents(out), 'request_end');
    const shard = [0, 1].sort(
      (a, b) => ends.filter((e) => e.shard === b).length - ends.filter((e) => e.shard === a).length,
    )[0]!;
    const lost = ends.filter((e) => e.shard === shard).length;
    expect(lost).toBeGreaterThan(0);
    rmSync(join(copy, 'events', `shard-00${shard}.jsonl`));
    const report = await analyze([copy]);
    expect(report.results).toMatchObject({ lines: 60, agree: false, without_request_end: lost });
    const text = await runCli(['report', copy]);
    expect(text.stdout).toContain(
      `warning: results.jsonl and the events disagree: ${lost} result line(s) have no request_end event`,
    );
    const json = await runCli(['report', copy, '--json']);
    expect(JSON.parse(json.stdout).results.without_request_end).toBe(lost);
    expect(json.stderr).toContain(`${lost} result line(s) have no request_end event`);
  });
});
