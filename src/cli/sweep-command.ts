import { redactUrl } from '../util/redact-url.js';
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { addOptions, flagValues } from '../config/option-table.js';
import { RUN_OPTIONS } from '../config/run-option-table.js';
import { resolveRunOptions } from '../config/resolve-run-options.js';
import { parseSweepOptions, SWEEP_OPTIONS, SWEEP_RUN_KEYS, SWEEP_RUN_OVERRIDES } from '../config/sweep-options.js';
import type { SweepStage } from '../diagnose/knee.js';
import { renderSweepPage } from '../report/sweep-page.js';
import { sweep } from '../sweep/sweep.js';

/** `shardline sweep`: short runs at rising concurrency, a table, the knee and the flag to use. */
export function registerSweepCommand(program: Command): void {
  const command = program
    .command('sweep')
    .description(
      'Find the knee: short runs at rising concurrency, TPM and TTFT p95/p99 per level, and the level to use',
    )
    .argument('<input>', 'requests (JSONL); each stage runs its first lines');
  addOptions(command, RUN_OPTIONS, SWEEP_RUN_KEYS, SWEEP_RUN_OVERRIDES);
  addOptions(command, SWEEP_OPTIONS);
  command.action(async (input: string, _raw: unknown, cmd: Command) => {
    const s = parseSweepOptions(flagValues(cmd, SWEEP_OPTIONS));
    // The run flags are checked as `run` checks them (and read the API key from the environment).
    const runOptions = resolveRunOptions({
      flags: { ...flagValues(cmd, RUN_OPTIONS, SWEEP_RUN_KEYS), input, out: s.out },
      env: process.env,
    });
    const { input: _i, out: _o, concurrency: _c, ...rest } = runOptions;
    const result = await sweep({
      input,
      run: rest,
      out: s.out,
      levels: s.levelList,
      sloTtftP95Ms: s.sloTtftP95Ms,
      requestsPerStage: s.requestsPerStage,
      onStage: (st) => process.stderr.write(`shardline: sweep: ${stageLine(st)}\n`),
    });
    if (s.html) {
      writeFileSync(s.html, renderSweepPage(result.stages, result.knee));
      process.stderr.write(`shardline: sweep page written to ${s.html}\n`);
    }
    if (s.json) {
      process.stdout.write(`${JSON.stringify({ schema: 'shardline.sweep/v1', ...result }, null, 2)}\n`);
      return;
    }
    const lines = ['level        TPM   TTFT p95   TTFT p99   retries  success', ...result.stages.map(stageLine), ''];
    const k = result.knee;
    lines.push(k.level === null ? `no knee: ${k.why}` : `knee: concurrency ${k.level} — ${k.why}`);
    if (k.level !== null)
      lines.push(
        `use: shardline run ${input} ${endpointFlags(runOptions.endpoint)} --concurrency ` +
          `${k.level}${runOptions.shards > 1 ? ` --shards ${runOptions.shards}` : ''}`,
      );
    process.stdout.write(`${lines.join('\n')}\n`);
  });
}

function stageLine(s: SweepStage): string {
  const ms = (x: number | null) => (x === null ? '–' : `${Math.round(x)} ms`);
  const pct = (x: number | null) => (x === null ? '–' : `${(x * 100).toFixed(1)}%`);
  return (
    `${String(s.level).padStart(5)} ${Math.round(s.tpm).toLocaleString('en-US').padStart(10)} ` +
    `${ms(s.ttftP95Ms).padStart(10)} ${ms(s.ttftP99Ms).padStart(10)} ${pct(s.retryRate).padStart(9)} ` +
    `${pct(s.successRate).padStart(8)}`
  );
}

/** `--endpoint` as the user would type it again: once per URL (a config file's objects by their URL). */
function endpointFlags(endpoint: string | (string | { url: string })[]): string {
  const list = Array.isArray(endpoint) ? endpoint : [endpoint];
  return list.map((e) => `--endpoint ${redactUrl(typeof e === 'string' ? e : e.url)}`).join(' ');
}
