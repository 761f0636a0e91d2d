import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { VERSION } from '../src/index.js';
import { runCli, startCli } from './helpers/cli.js';
import { postChat } from './helpers/http.js';

describe('shardline CLI basics', () => {
  it('prints its version and help', async () => {
    const v = await runCli(['--version']);
    expect(v.code).toBe(0);
    expect(v.stdout.trim()).toBe(VERSION);
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/sim/);
    const simHelp = await runCli(['sim', '--help']);
    expect(simHelp.code).toBe(0);
    expect(simHelp.stdout).toMatch(/--profile/);
    expect(simHelp.stdout).toMatch(/--list-profiles/);
  });

  it('exits 2 naming an unknown flag or a bad value', async () => {
    const unknown = await runCli(['sim', '--bogus']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--bogus/);
    const badPort = await runCli(['sim', '--port', '70000']);
    expect(badPort.code).toBe(2);
    expect(badPort.stderr).toMatch(/Expected `--port` to be .*≤ 65535, got `70000`/);
    const unknownCommand = await runCli(['frobnicate']);
    expect(unknownCommand.code).toBe(2);
  });
});

describe('shardline sim', () => {
  it('lists the built-in profiles with their capacity', async () => {
    const r = await runCli(['sim', '--list-profiles']);
    expect(r.code).toBe(0);
    for (const name of ['fast', 'realistic', 'saturated', 'flaky', 'rate-limited', 'churn'])
      expect(r.stdout).toMatch(new RegExp(`^${name}\\s`, 'm'));
    expect(r.stdout).toMatch(/167,630/); // realistic: 60000·64·256 / (25 + 64/25000·1000 + 256·22.8)
  });

  it('serves on port 0, answers a request and stops on SIGTERM', async () => {
    const { child, match } = await startCli(
      ['sim', '--port', '0', '--profile', 'fast'],
      /listening on (http:\/\/127\.0\.0\.1:(\d+))\n/,
    );
    const url = match[1]!;
    expect(Number(match[2])).toBeGreaterThan(0);
    const reply = await postChat(url, { messages: [{ role: 'user', content: 'x' }], max_tokens: 3 });
    expect(reply.status).toBe(200);
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
  });

  it('loads a YAML profile on top of a base', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sl-prof-'));
    const file = join(dir, 'mine.yaml');
    writeFileSync(file, 'base: fast\nfaults:\n  errors:\n    p_503: 1\n');
    const { child, match } = await startCli(['sim', '--port', '0', '--profile', file], /listening on (\S+)\n/);
    const reply = await postChat(match[1]!, { messages: [{ role: 'user', content: 'x' }] });
    expect(reply.status).toBe(503);
    child.kill('SIGINT');
    await once(child, 'exit');
  });

  it('rejects a bad profile with exit 2 naming the field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sl-prof-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'slots: 0\nfaults:\n  errors:\n    p_500: 1.5\n  typo_field: true\n');
    const r = await runCli(['sim', '--profile', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /Expected `slots` to be an integer > 0, got `0`|Expected `slots` to be a number > 0, got `0`/,
    );
    expect(r.stderr).toMatch(/Expected `faults\.errors\.p_500` to be a number ≤ 1, got `1\.5`/);
    expect(r.stderr).toMatch(/Unknown field `faults\.typo_field`/);
    const unknownName = await runCli(['sim', '--profile', 'nosuch']);
    expect(unknownName.code).toBe(2);
    expect(unknownName.stderr).toMatch(/Expected `--profile` to be one of fast, realistic/);
    writeFileSync(file, 'slots: [unclosed\n');
    const notYaml = await runCli(['sim', '--profile', file]);
    expect(notYaml.code).toBe(2);
    expect(notYaml.stderr).toMatch(/not valid YAML/);
  });
});
