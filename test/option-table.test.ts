import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createProgram } from '../src/cli/program.js';
import { ConfigError } from '../src/errors.js';
import { optionDocBlocks, replaceOptionBlocks } from '../src/config/option-docs.js';
import {
  addOptions,
  configKeys,
  docsTable,
  envKeys,
  flagValues,
  helpLine,
  localOnlyKeys,
  longFlag,
  parseOptions,
  publishOptions,
  type OptionSpec,
} from '../src/config/option-table.js';
import { isResolved, parseRunOptions, resolveRun } from '../src/config/resolved-run-options.js';
import { resolveRunOptions } from '../src/config/resolve-run-options.js';
import { CONFIG_FLAG, RUN_OPTIONS } from '../src/config/run-option-table.js';
import { runOptionsSchema } from '../src/config/run-options.js';
import { SIM_OPTIONS } from '../src/config/sim-options.js';
import { SWEEP_OPTIONS, SWEEP_RUN_KEYS } from '../src/config/sweep-options.js';
import { WORKER_OPTIONS } from '../src/config/worker-options.js';
import { LOCAL_ONLY_OPTIONS } from '../src/runner/distributed/run-channel.js';
import { publicConfig } from '../src/runner/output/run-manifest.js';
import { tempDir } from './helpers/run-dir.js';

const base = { input: 'in.jsonl', endpoint: 'http://127.0.0.1:1/v1', out: 'o' };

/** The long flags a registered command offers, without commander's own --help. */
function commandFlags(name: string): string[] {
  const cmd = createProgram().commands.find((c) => c.name() === name)!;
  return cmd.options.map((o) => o.long!).filter((f) => f !== '--help');
}

describe('the run option table: one entry per option', () => {
  it('gives every schema key a way to set it, and the schema no key the table lacks', () => {
    expect(Object.keys(runOptionsSchema.shape).sort()).toEqual(Object.keys(RUN_OPTIONS).sort());
    for (const [key, spec] of Object.entries(RUN_OPTIONS) as [string, OptionSpec][]) {
      // A flag, an environment variable, or the command's positional argument.
      expect(spec.flag !== undefined || (spec.env?.length ?? 0) > 0 || key === 'input', key).toBe(true);
      expect(spec.help.length, key).toBeGreaterThan(10);
    }
  });

  it('is what `shardline run`, `worker`, `sweep` and `sim` offer, flag for flag', () => {
    const flagsOf = (t: Record<string, OptionSpec>, keys = Object.keys(t)) =>
      keys.map((k) => longFlag(t[k]!)).filter((f): f is string => f !== undefined);
    expect(commandFlags('run').sort()).toEqual([...flagsOf(RUN_OPTIONS), '--config'].sort());
    expect(commandFlags('worker').sort()).toEqual(flagsOf(WORKER_OPTIONS).sort());
    expect(commandFlags('sweep').sort()).toEqual(
      [...flagsOf(RUN_OPTIONS, [...SWEEP_RUN_KEYS]), ...flagsOf(SWEEP_OPTIONS)].sort(),
    );
    expect(commandFlags('sim').sort()).toEqual(flagsOf(SIM_OPTIONS).sort());
  });

  it('keeps every docs/ options table equal to what the tables generate (npm run docs:options)', () => {
    for (const file of new Set(optionDocBlocks().map((b) => b.file))) {
      const text = readFileSync(file, 'utf8');
      expect(replaceOptionBlocks(text, file), `${file} is stale: run npm run docs:options`).toBe(text);
    }
    const runDoc = readFileSync('docs/run.md', 'utf8');
    for (const spec of Object.values({ ...RUN_OPTIONS, config: CONFIG_FLAG }) as OptionSpec[]) {
      const named = spec.flag ?? spec.env?.[0] ?? spec.label!;
      expect(runDoc, named).toContain(named.replace(/\|/g, '\\|'));
    }
  });

  it('reads help defaults from the schema and writes each default once', () => {
    expect(helpLine(RUN_OPTIONS.concurrency)).toMatch(/\(env LLM_CONCURRENCY; default 16\)$/);
    expect(helpLine(RUN_OPTIONS.maxAttempts)).toMatch(/default 5\)$/);
    expect(helpLine(RUN_OPTIONS.readAhead)).toMatch(/default 4 × shards × concurrency\)$/);
    const runHelp = createProgram()
      .commands.find((c) => c.name() === 'run')!
      .helpInformation({ error: false })
      .replace(/\s+/g, ' ');
    expect(runHelp).toContain('default 600');
    expect(runHelp).toMatch(/--retry-mode <mode>.*\(choices: "backoff", "fixed"\)/);
  });

  it('derives the published config, the workers’ share and the environment mapping from the entries', () => {
    const o = resolveRunOptions({
      flags: { ...base, endpoint: 'http://u:p@127.0.0.1:1/v1?api-version=2&key=secret', headers: ['X-Key: s3'] },
      env: { OPENAI_API_KEY: 'sk-openai-0000', SHARDLINE_API_KEY: 'sk-shardline-1111' },
    });
    expect(o.apiKey).toBe('sk-shardline-1111');
    const published = JSON.stringify(publicConfig(o));
    expect(published).not.toMatch(/sk-|s3|secret|u:p/);
    expect(publicConfig(o)).toMatchObject({ api_key: '(set, not recorded)', headers: ['X-Key: (not recorded)'] });
    expect(publicConfig(resolveRunOptions({ flags: base }))).toMatchObject({ api_key: '(none)', headers: [] });
    expect([...LOCAL_ONLY_OPTIONS].sort()).toEqual(localOnlyKeys(RUN_OPTIONS).sort());
    expect(LOCAL_ONLY_OPTIONS).toEqual(expect.arrayContaining(['apiKey', 'headers', 'input', 'out', 'redis']));
    expect(envKeys(RUN_OPTIONS)).toEqual(
      expect.arrayContaining([
        ['LLM_CONCURRENCY', 'concurrency'],
        ['SHARD_COUNT', 'shards'],
      ]),
    );
  });

  it('takes a negated flag’s config-file key either way round', () => {
    const dir = tempDir();
    const file = join(dir, 'run.yaml');
    writeFileSync(file, 'no-keep-alive: true\n');
    expect(resolveRunOptions({ flags: base, configFile: file }).keepAlive).toBe(false);
    writeFileSync(file, 'keep-alive: false\napi-key: sk-from-file-123\nheaders: "X-A: 1"\n');
    const o = resolveRunOptions({ flags: base, configFile: file });
    expect([o.keepAlive, o.apiKey, o.headers]).toEqual([false, 'sk-from-file-123', ['X-A: 1']]);
    expect(configKeys(RUN_OPTIONS).get('max-attempts')).toEqual({ key: 'maxAttempts', negated: false });
  });

  it('adds an option with one entry: flag, help, env, config key, schema, docs row and publishing', () => {
    const table = {
      ...RUN_OPTIONS,
      warmupS: {
        flag: '--warmup-s <s>',
        env: ['SHARDLINE_WARMUP_S'],
        schema: z.coerce.number().min(0).default(2.5),
        help: 'seconds of requests left out of the figures',
      },
    } satisfies Record<string, OptionSpec>;
    const cmd = new Command('run').exitOverride().argument('<input>');
    addOptions(cmd, table);
    cmd.parse(['in.jsonl', '--warmup-s', '4', '--no-keep-alive', '--shards', '3'], { from: 'user' });
    const given = flagValues(cmd, table);
    // Only what was on the command line: no commander default slips in as if given.
    expect(given).toEqual({ warmupS: '4', keepAlive: false, shards: '3' });
    expect(parseOptions(table, { ...base, ...given })).toMatchObject({ warmupS: 4, keepAlive: false, shards: 3 });
    expect(parseOptions(table, base).warmupS).toBe(2.5);
    expect(cmd.helpInformation()).toMatch(
      /--warmup-s <s> +seconds of requests left out of the figures\s+\(env\s+SHARDLINE_WARMUP_S; default 2\.5\)/,
    );
    expect(envKeys(table)).toContainEqual(['SHARDLINE_WARMUP_S', 'warmupS']);
    expect(configKeys(table).get('warmup-s')).toEqual({ key: 'warmupS', negated: false });
    expect(docsTable(table)).toContain(
      '| `--warmup-s <s>` | `SHARDLINE_WARMUP_S` | 2.5 | seconds of requests left out',
    );
    expect(publishOptions(table, parseOptions(table, base))).toMatchObject({ warmupS: 2.5 });
    expect(() => parseOptions(table, { ...base, warmupS: '-1' })).toThrow(/Expected `--warmup-s` to be a number ≥ 0/);
  });

  it('names the flag of a bad value for each command’s table', () => {
    expect(() => parseOptions(SIM_OPTIONS, { port: '70000' })).toThrow(ConfigError);
    expect(() => parseOptions(SIM_OPTIONS, { port: '70000' })).toThrow(/`--port`/);
    expect(() => parseOptions(SWEEP_OPTIONS, { levels: '8,4' })).toThrow(/`--levels` to be a list of rising levels/);
    expect(() => parseOptions(WORKER_OPTIONS, { out: 'x' })).toThrow(/`--redis` is required/);
  });
});

describe('resolved run options: parsed once', () => {
  it('resolves slot bounds, prefetch, read-ahead and retry causes once, and passes a resolved object through', () => {
    const o = resolveRunOptions({ flags: { ...base, concurrency: 'auto:2-40:8', shards: '2' } });
    expect(o.slots).toEqual({ max: 40, adaptive: { min: 2, max: 40, start: 8 } });
    expect([o.prefetchItems, o.readAheadItems, o.retryCauses]).toEqual([40, 320, undefined]);
    expect(isResolved(o)).toBe(true);
    expect(parseRunOptions(o)).toBe(o);
    // Derived fields are not options: not published, not in a copy (which is parsed afresh).
    expect(Object.keys(o)).not.toContain('slots');
    expect(JSON.stringify(publicConfig(o))).not.toContain('prefetchItems');
    const copy = parseRunOptions({ ...o, concurrency: 3 });
    expect([copy.slots.max, copy.prefetchItems, copy.readAheadItems]).toEqual([3, 3, 24]);
    const fixed = resolveRun(
      runOptionsSchema.parse({ ...base, concurrency: 5000, retryFailed: 'http_429,timeout_total' }),
    );
    expect([fixed.prefetchItems, fixed.retryCauses]).toEqual([1024, ['http_429', 'timeout_total']]);
    expect(parseRunOptions({ ...base, retryFailed: true }).retryCauses).toBe('all');
  });
});
