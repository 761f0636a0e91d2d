import { spawn } from 'node:child_process';
import { existsSync, readFileSync, appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseProfile, run, startSim, type RunningSim } from '../src/index.js';
import { LOCK_FILE } from '../src/runner/output/out-lock.js';
import { expectBooksAgree } from './helpers/books.js';
import { CLI, runCli } from './helpers/cli.js';
import { loadEvents, loadResults, ofType, tempDir, writeInput } from './helpers/run-dir.js';

let sim: RunningSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

// ~60 ms per request: long enough that a kill lands mid-run, short enough to keep the suite quick.
const paced = parseProfile({ base: 'fast', step_ms_base: 3, step_ms_per_seq: 0, tokens_per_step: 1, jitter: 0.3 });

async function shardPids(out: string, count: number, timeoutMs = 10_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const file = join(out, 'events');
    if (existsSync(file)) {
      const pids = ofType(loadEvents(out), 'shard_start').map((e) => e.pid);
      if (pids.length >= count) return pids;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('shards did not start');
}

function expectExactlyOnce(out: string, n: number): void {
  const results = loadResults(out);
  const ids = results.map((r) => r.custom_id);
  expect(new Set(ids).size).toBe(ids.length);
  expect(ids.length).toBe(n);
  for (let i = 0; i < n; i++) expect(ids).toContain(`req-${i}`);
}

describe('durability: nothing lost, nothing duplicated', () => {
  it('replaces a shard killed with SIGKILL and finishes its in-flight work', async () => {
    sim = await startSim({ profile: paced });
    const dir = tempDir();
    const out = join(dir, 'out');
    const done = run({
      input: writeInput(dir, 200),
      endpoint: `${sim.url}/v1`,
      out,
      shards: 2,
      concurrency: 8,
      progress: 'off',
    });
    const [victim] = await shardPids(out, 2);
    await new Promise((r) => setTimeout(r, 300));
    process.kill(victim!, 'SIGKILL');
    const summary = await done;
    expect(summary.status).toBe('finished');
    expect(summary.shard_restarts).toBe(1);
    expect(summary.requests.succeeded).toBe(200);
    expectExactlyOnce(out, 200);
    const events = loadEvents(out);
    const exit = ofType(events, 'shard_exit');
    expect(exit).toHaveLength(1);
    expect(exit[0]).toMatchObject({ pid: victim, signal: 'SIGKILL', reason: 'crashed' });
    expect(ofType(events, 'shard_start').some((e) => e.replaces === victim)).toBe(true);
  });

  it('detects a wedged shard (stopped process), kills and replaces it', async () => {
    sim = await startSim({ profile: paced });
    const dir = tempDir();
    const out = join(dir, 'out');
    const done = run({
      input: writeInput(dir, 120),
      endpoint: `${sim.url}/v1`,
      out,
      shards: 2,
      concurrency: 4,
      wedgeTimeoutS: 1,
      progress: 'off',
    });
    const [victim] = await shardPids(out, 2);
    await new Promise((r) => setTimeout(r, 200));
    process.kill(victim!, 'SIGSTOP');
    const summary = await done;
    expect(summary.shard_restarts).toBe(1);
    expectExactlyOnce(out, 120);
    expect(ofType(loadEvents(out), 'shard_exit')[0]).toMatchObject({ pid: victim, reason: 'wedged' });
  });

  it('stops at once, saying why, when shard processes cannot start at all', async () => {
    sim = await startSim({ profile: paced });
    const dir = tempDir();
    const out = join(dir, 'out');
    // Node runs the -e script instead of the shard: every shard exits before it says ready.
    const env = { ...process.env, SHARDLINE_SHARD_NODE_OPTIONS: '-e process.exit(7)' };
    const r = await runCli(
      ['run', writeInput(dir, 20), '--endpoint', `${sim.url}/v1`, '--out', out, '--shards', '2', '--progress', 'off'],
      { env },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('exited before it started (exit 7)');
    expect(r.stderr).toContain('shard processes exit before they start (3 in a row, last: exit 7)');
    const summary = JSON.parse(r.stdout) as { status: string; shard_restarts: number; error: string };
    expect(summary.status).toBe('failed');
    // Three failed starts, not the twenty restarts a crashing shard gets.
    expect(summary.shard_restarts).toBe(3);
    const exits = ofType(loadEvents(out), 'shard_exit');
    expect(exits.map((e) => e.reason)).toEqual(['failed_start', 'failed_start', 'failed_start']);
    expect(exits.every((e) => e.code === 7)).toBe(true);
    // Nothing ran, so a resume with a working shard still has every line to do.
    expect(existsSync(join(out, 'results.jsonl')) ? loadResults(out) : []).toHaveLength(0);
  });

  it('kill -9 of the whole run at random moments, then --resume: exactly one result per input line', async () => {
    sim = await startSim({ profile: paced });
    const dir = tempDir();
    const n = 300;
    const input = writeInput(dir, n, { max_tokens: 24 });
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
      '--progress',
      'off',
    ];
    for (let round = 0; round < 5; round++) {
      // A kill may land before the first run wrote run.json; re-running into the same --out resumes
      // either way, and --resume (which insists on a run to resume) is used once there is one.
      const resume = existsSync(join(out, 'run.json')) ? ['--resume'] : [];
      const child = spawn(process.execPath, [CLI, ...args, ...resume], { stdio: 'ignore' });
      const exited = new Promise((r) => child.once('exit', r));
      const at = 250 + Math.floor(Math.random() * 1200);
      await new Promise((r) => setTimeout(r, at));
      child.kill('SIGKILL');
      await exited;
      // Every line on disk is whole and unique, whatever the moment of the kill.
      if (existsSync(join(out, 'results.jsonl'))) {
        const ids = loadResults(out).map((r) => r.custom_id);
        expect(new Set(ids).size, `round ${round}, killed at ${at} ms`).toBe(ids.length);
      }
    }
    const before = existsSync(join(out, 'results.jsonl')) ? loadResults(out).length : 0;
    // On a loaded machine every kill can land before the first run wrote run.json: then there is
    // nothing to --resume, and a plain run into the same --out is the same command.
    const final = await runCli([...args, ...(existsSync(join(out, 'run.json')) ? ['--resume'] : [])]);
    expect(final.code, final.stderr).toBe(0);
    const summary = JSON.parse(final.stdout);
    expect(summary.requests.skipped).toBe(before);
    expect(summary.requests.succeeded).toBe(n - before);
    expectExactlyOnce(out, n);
    await expectBooksAgree(out);
    const manifest = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(manifest.status).toBe('finished');
    expect(manifest.resumes).toBeGreaterThanOrEqual(1);
  });

  it('lets one run at a time use an output directory, and takes over a lock its killed owner left', async () => {
    sim = await startSim({ profile: paced });
    const dir = tempDir();
    const out = join(dir, 'out');
    const input = writeInput(dir, 40);
    const first = run({ input, endpoint: `${sim.url}/v1`, out, concurrency: 4, progress: 'off' });
    // While the first runs, a second into the same directory is refused and changes nothing there.
    while (!existsSync(join(out, LOCK_FILE))) await new Promise((r) => setTimeout(r, 5));
    await expect(run({ input, endpoint: `${sim.url}/v1`, out, concurrency: 4, progress: 'off' })).rejects.toThrow(
      new RegExp(`Another shardline run \\(pid ${process.pid}\\) is using \`--out\``),
    );
    const summary = await first;
    expect(summary.requests.succeeded).toBe(40);
    expect(loadResults(out)).toHaveLength(40);
    expect(existsSync(join(out, LOCK_FILE))).toBe(false);
    // A lock whose process is gone (a run killed with kill -9) does not block the next run.
    const gone = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => gone.on('exit', r));
    writeFileSync(join(out, LOCK_FILE), `${gone.pid}\n`);
    const again = await run({ input, endpoint: `${sim.url}/v1`, out, progress: 'off' });
    expect(again.requests.skipped).toBe(40);
    expect(existsSync(join(out, LOCK_FILE))).toBe(false);
  });

  it('refuses to resume when the input changed', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast' }) });
    const dir = tempDir();
    const input = writeInput(dir, 5);
    const out = join(dir, 'out');
    const first = await runCli(['run', input, '--endpoint', `${sim.url}/v1`, '--out', out]);
    expect(first.code).toBe(0);
    appendFileSync(
      input,
      `${JSON.stringify({ custom_id: 'new', body: { messages: [{ role: 'user', content: 'x' }] } })}\n`,
    );
    const again = await runCli(['run', input, '--endpoint', `${sim.url}/v1`, '--out', out, '--resume']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/input changed/);
    expect(loadResults(out)).toHaveLength(5);
    const nothing = await runCli([
      'run',
      input,
      '--endpoint',
      `${sim.url}/v1`,
      '--out',
      join(dir, 'fresh'),
      '--resume',
    ]);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toMatch(/Nothing to resume/);
  });
});
