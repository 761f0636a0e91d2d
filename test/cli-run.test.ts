import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseProfile, resolveRunOptions, startSim, type RunningSim } from '../src/index.js';
import { flagOf } from '../src/config/run-options.js';
import { CLI, runCli } from './helpers/cli.js';
import { loadResults, tempDir, writeInput } from './helpers/run-dir.js';
import { writeSynthRun } from './helpers/synth-log.js';

let sim: RunningSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe('run options: precedence flag > environment > config file > default', () => {
  it('applies each layer and names the source of a bad value', () => {
    const dir = tempDir();
    const config = join(dir, 'run.yaml');
    writeFileSync(config, 'concurrency: 4\nshards: 3\nmax-attempts: 7\nretry-backoff-s: 0.5\nheader: "X-A: 1"\n');
    const base = { input: 'in.jsonl', endpoint: 'http://127.0.0.1:1/v1', out: 'o' };
    const fromConfig = resolveRunOptions({ flags: base, configFile: config });
    expect(fromConfig).toMatchObject({
      concurrency: 4,
      shards: 3,
      maxAttempts: 7,
      retryBackoffS: 0.5,
      headers: ['X-A: 1'],
    });
    const env = {
      LLM_CONCURRENCY: '32',
      SHARD_COUNT: '2',
      LLM_RETRY_BACKOFF_S: '2',
      LLM_MAX_ATTEMPTS: '9',
      OPENAI_API_KEY: 'sk-a',
      SHARDLINE_API_KEY: 'sk-b',
    };
    const fromEnv = resolveRunOptions({ flags: base, env, configFile: config });
    expect(fromEnv).toMatchObject({ concurrency: 32, shards: 2, retryBackoffS: 2, maxAttempts: 9, apiKey: 'sk-b' });
    const fromFlags = resolveRunOptions({ flags: { ...base, concurrency: '64' }, env, configFile: config });
    expect(fromFlags.concurrency).toBe(64);
    const defaults = resolveRunOptions({ flags: base });
    expect(defaults).toMatchObject({
      concurrency: 16,
      shards: 1,
      retryBackoffS: 1,
      retryBackoffMaxS: 30,
      maxAttempts: 5,
    });
    expect(() => resolveRunOptions({ flags: base, env: { LLM_CONCURRENCY: 'lots' } })).toThrow(
      'Expected `LLM_CONCURRENCY` to be an integer from 1 to 100000, or auto, auto:MIN-MAX or auto:MIN-MAX:START, ' +
        'got `lots`',
    );
    expect(() => resolveRunOptions({ flags: { ...base, concurrency: '0' } })).toThrow(
      /Expected `--concurrency` to be an integer from 1 to 100000, or auto.*, got `0`/,
    );
    writeFileSync(config, 'concurency: 4\n');
    expect(() => resolveRunOptions({ flags: base, configFile: config })).toThrow(/Unknown key `concurency`/);
    writeFileSync(config, 'shards: -1\n');
    expect(() => resolveRunOptions({ flags: base, configFile: config })).toThrow(
      /Expected `shards in .*run\.yaml` to be/,
    );
    // A bad value is named as the file spells its key, not by the option's inner name.
    writeFileSync(config, 'max-attempts: 0\nread-coalesce-ms: soon\n');
    expect(() => resolveRunOptions({ flags: base, configFile: config })).toThrow(
      new RegExp(
        String.raw`Expected \`max-attempts in .*run\.yaml\` to be .*\n` +
          String.raw`.*Expected \`read-coalesce-ms in .*run\.yaml\` to be 'auto' or a number`,
      ),
    );
  });
});

describe('shardline run (CLI)', () => {
  it('exits 2 naming a bad flag, a bad variable or a missing endpoint', async () => {
    const dir = tempDir();
    const input = writeInput(dir, 1);
    const noEndpoint = await runCli(['run', input, '--out', join(dir, 'o')]);
    expect(noEndpoint.code).toBe(2);
    expect(noEndpoint.stderr).toMatch(/`--endpoint` is required/);
    const badEndpoint = await runCli(['run', input, '--endpoint', '127.0.0.1:8000/v1', '--out', join(dir, 'o')]);
    expect(badEndpoint.code).toBe(2);
    expect(badEndpoint.stderr.match(/`--endpoint`/g)).toHaveLength(1);
    expect(badEndpoint.stderr).toMatch(
      'Expected `--endpoint` to be an http:// or https:// URL such as http://127.0.0.1:8000/v1, ' +
        'got `127.0.0.1:8000/v1`',
    );
    const fullUrl = await runCli([
      'run',
      input,
      '--endpoint',
      'http://127.0.0.1:8000/v1/chat/completions',
      '--out',
      join(dir, 'o'),
    ]);
    expect(fullUrl.code).toBe(2);
    expect(fullUrl.stderr).toMatch(
      '`--endpoint` to be valid (the API base URL without /chat/completions: ' +
        'requests go to <endpoint>/chat/completions)',
    );
    const badShards = await runCli([
      'run',
      input,
      '--endpoint',
      'http://127.0.0.1:9/v1',
      '--out',
      join(dir, 'o'),
      '--shards',
      'two',
    ]);
    expect(badShards.code).toBe(2);
    expect(badShards.stderr).toMatch(/`--shards`/);
    const badEnv = await runCli(['run', input, '--endpoint', 'http://127.0.0.1:9/v1', '--out', join(dir, 'o')], {
      env: { ...process.env, LLM_MAX_ATTEMPTS: '0' },
    });
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toMatch(/`LLM_MAX_ATTEMPTS`/);
    const badChoice = await runCli([
      'run',
      input,
      '--endpoint',
      'http://127.0.0.1:9/v1',
      '--out',
      join(dir, 'o'),
      '--on-interrupt',
      'panic',
    ]);
    expect(badChoice.code).toBe(2);
    expect(badChoice.stderr).toMatch(/--on-interrupt.*drain, abandon/);
    const badHold = await runCli([
      'run',
      input,
      '--endpoint',
      'http://127.0.0.1:9/v1',
      '--out',
      join(dir, 'o'),
      '--read-coalesce-ms',
      'soon',
    ]);
    expect(badHold.code).toBe(2);
    expect(badHold.stderr).toContain(
      "Expected `--read-coalesce-ms` to be 'auto' or a number of milliseconds from 0 to 1000, got `soon`",
    );
    const badBudget = await runCli([
      'run',
      input,
      '--endpoint',
      'http://127.0.0.1:9/v1',
      '--out',
      join(dir, 'o'),
      '--retry-budget',
      '1.5',
    ]);
    expect(badBudget.code).toBe(2);
    expect(badBudget.stderr).toContain('Expected `--retry-budget` to be a number ≤ 1, got `1.5`');
    const missingInput = await runCli([
      'run',
      join(dir, 'nope.jsonl'),
      '--endpoint',
      'http://127.0.0.1:9/v1',
      '--out',
      join(dir, 'o'),
    ]);
    expect(missingInput.code).toBe(1);
    expect(missingInput.stderr).toMatch(/Cannot read input/);
    const outIsFile = await runCli(['run', input, '--endpoint', 'http://127.0.0.1:9/v1', '--out', input]);
    expect(outIsFile.code).toBe(2);
    expect(outIsFile.stderr).toContain(`Expected \`--out\` to be a directory, got \`${input}\` (a file is in the way)`);
    const dirInput = await runCli(['run', dir, '--endpoint', 'http://127.0.0.1:9/v1', '--out', join(dir, 'o')]);
    expect(dirInput.code).toBe(1);
    expect(dirInput.stderr).toContain(`Cannot read input \`${dir}\`: it is a directory, expected a JSONL file`);
    expect(dirInput.stderr).not.toMatch(/unexpected error/);
  });

  it('prints the summary JSON on stdout, progress and logs on stderr, and exits 3 on failed requests', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast', faults: { errors: { p_500: 1 } } }) });
    const dir = tempDir();
    const r = await runCli(
      [
        'run',
        writeInput(dir, 3),
        '--endpoint',
        `${sim.url}/v1`,
        '--out',
        join(dir, 'o'),
        '--max-attempts',
        '2',
        '--retry-backoff-s',
        '0.01',
      ],
      { env: { ...process.env, OPENAI_API_KEY: 'sk-from-env' } },
    );
    expect(r.code).toBe(3);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({
      status: 'finished',
      exit_code: 3,
      requests: { failed: 3 },
      failure_causes: { http_5xx: 3 },
    });
    expect(r.stderr).toMatch(/3 failed \(http_5xx 3\)/);
    const allowed = await runCli([
      'run',
      writeInput(dir, 3, {}, 'b.jsonl'),
      '--endpoint',
      `${sim.url}/v1`,
      '--out',
      join(dir, 'o2'),
      '--max-attempts',
      '1',
      '--allow-failures',
      '100%',
    ]);
    expect(allowed.code).toBe(0);
  });

  it('points at the flag behind failures that mean a wrong endpoint: 404 and connection refused', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast' }) });
    const dir = tempDir();
    // The server's root instead of its API base URL: every request gets 404 from /chat/completions.
    const noV1 = await runCli([
      'run',
      writeInput(dir, 3),
      '--endpoint',
      sim.url,
      '--out',
      join(dir, 'o'),
      '--max-attempts',
      '1',
    ]);
    expect(noV1.code).toBe(3);
    const summary = JSON.parse(noV1.stdout);
    expect(summary.failure_statuses).toEqual({ 404: 3 });
    expect(summary.hints).toHaveLength(1);
    expect(noV1.stderr).toContain(`hint: 3 requests got HTTP 404 from ${sim.url}/chat/completions`);
    expect(noV1.stderr).toMatch(/usually ending in \/v1/);
    // Nothing listening: a port just freed.
    const closed = await startSim({ profile: parseProfile({ base: 'fast' }) });
    const port = closed.port;
    await closed.close();
    const refused = await runCli([
      'run',
      writeInput(dir, 2, {}, 'b.jsonl'),
      '--endpoint',
      `http://127.0.0.1:${port}/v1`,
      '--out',
      join(dir, 'o2'),
      '--max-attempts',
      '1',
    ]);
    expect(refused.code).toBe(3);
    expect(JSON.parse(refused.stdout)).toMatchObject({ failure_causes: { conn_refused: 2 }, failure_statuses: {} });
    expect(refused.stderr).toContain(
      `hint: 2 requests found nothing listening at http://127.0.0.1:${port} (connection refused)`,
    );
    // A healthy run has no hints.
    const ok = await runCli([
      'run',
      writeInput(dir, 2, {}, 'c.jsonl'),
      '--endpoint',
      `${sim.url}/v1`,
      '--out',
      join(dir, 'o3'),
    ]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).hints).toEqual([]);
    expect(ok.stderr).not.toContain('hint:');
  });

  it('stops on SIGINT: drains in-flight work, writes what finished, exits 130 with a summary line', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast', step_ms_base: 5, tokens_per_step: 1 }) });
    const dir = tempDir();
    const out = join(dir, 'o');
    const child = spawn(
      process.execPath,
      [
        CLI,
        'run',
        writeInput(dir, 400, { max_tokens: 40 }),
        '--endpoint',
        `${sim.url}/v1`,
        '--out',
        out,
        '--concurrency',
        '4',
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // Signal once results are flowing (start-up under a loaded CI machine can take over a second).
    const resultsPath = join(out, 'results.jsonl');
    for (let i = 0; i < 200 && !(existsSync(resultsPath) && statSync(resultsPath).size > 0); i++)
      await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGINT');
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(130);
    expect(stderr).toMatch(/SIGINT: stopping \(drain in-flight work\)/);
    expect(stderr).toMatch(/shardline: interrupted in /);
    const summary = JSON.parse(stdout);
    expect(summary.status).toBe('interrupted');
    const results = loadResults(out);
    expect(results.length).toBe(summary.requests.succeeded);
    expect(results.length).toBeGreaterThan(0);
    expect(results.length).toBeLessThan(400);
    // Drained: every request that started an attempt before the signal has its result.
    for (const r of results) expect(r.error).toBeNull();
    const resumed = await runCli([
      'run',
      join(dir, 'input.jsonl'),
      '--endpoint',
      `${sim.url}/v1`,
      '--out',
      out,
      '--concurrency',
      '32',
    ]);
    expect(resumed.code).toBe(0);
    expect(loadResults(out)).toHaveLength(400);
  });

  it('answers --help on every command', async () => {
    for (const cmd of ['run', 'report', 'compare', 'sample', 'verify', 'demo', 'sim', 'sweep', 'worker']) {
      const r = await runCli([cmd, '--help']);
      expect(r.code, cmd).toBe(0);
      expect(r.stdout, cmd).toMatch(new RegExp(`^Usage: shardline ${cmd}`));
    }
  });

  it('documents every option as a flag in --help and in docs/run.md', async () => {
    const r = await runCli(['run', '--help']);
    expect(r.code).toBe(0);
    const doc = readFileSync(join(import.meta.dirname, '..', 'docs', 'run.md'), 'utf8');
    // Every option the schema accepts, by the flag users type (INPUT and the API key are not flags).
    const flags = Object.values(flagOf).filter((f) => f.startsWith('--'));
    expect(flags.length).toBeGreaterThan(30);
    for (const flag of [...flags, '--config']) {
      expect(r.stdout, `--help lists ${flag}`).toContain(flag);
      expect(doc, `docs/run.md documents ${flag}`).toContain(`\`${flag}`);
    }
    // The options table stays a table: one that needs more than ~400 characters belongs in a section.
    const rows = doc.split('\n').filter((l) => l.startsWith('| `--') || l.startsWith('| |'));
    expect(rows.length).toBeGreaterThan(30);
    for (const row of rows)
      for (const cell of row.split(/(?<!\\)\|/)) expect(cell.trim().length, row.slice(0, 40)).toBeLessThanOrEqual(400);
  });
});

describe('CLI errors from the filesystem', () => {
  it('say what failed on which path, in one line, with exit 1', async () => {
    const dir = writeSynthRun(tempDir('sl-fs-'), { requests: 10, limit: 2 });
    const missing = join(dir, 'no-such-dir', 'report.html');
    const r = await runCli(['report', dir, '--html', missing]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`shardline: ENOENT: no such file or directory, open '${missing}'\n`);
    const s = await runCli(['sample', dir, '-o', missing]);
    expect(s.code).toBe(1);
    expect(s.stderr).toContain(`ENOENT: no such file or directory, open '${missing}'`);
    expect(s.stderr).not.toMatch(/unexpected error|\n\s+at /);
  });
});
