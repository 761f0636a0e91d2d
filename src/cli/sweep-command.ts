import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { resolveRunOptions } from '../config/resolve-run-options.js';
import { parseSweepOptions } from '../config/sweep-options.js';
import type { SweepStage } from '../diagnose/knee.js';
import { renderSweepPage } from '../report/sweep-page.js';
import { sweep } from '../runner/sweep.js';

/** `shardline sweep`: short runs at rising concurrency, a table, the knee and the flag to use. */
export function registerSweepCommand(program: Command): void {
  program
    .command('sweep')
    .description(
      'Find the knee: short runs at rising concurrency, TPM and TTFT p95/p99 per level, and the level to use',
    )
    .argument('<input>', 'requests (JSONL); each stage runs its first lines')
    .requiredOption('--endpoint <url>', "API base URL, as the OpenAI client's baseURL")
    .option(
      '--levels <list|auto>',
      'concurrency levels, e.g. 1,2,4,8,16,32 (default auto: doubling from 1 until two levels in a row add under 5% throughput or miss the SLO)',
    )
    .option('--slo-ttft-p95-ms <ms>', "TTFT p95 the knee must meet (default 3 × the lightest stage's)")
    .option('--requests-per-stage <n>', 'requests per stage (default max(200, 10 × level))')
    .option('--out <dir>', "directory for the stages' run directories, one per level (default sweep)")
    .option('--model <name>', 'model to set on every request')
    .option('--header <h>', 'extra request header "Name: value" (repeatable)', (v: string, prev: string[] = []) => [
      ...prev,
      v,
    ])
    .option('--shards <n>', 'shards per stage (default 1): levels are per shard')
    .option('--html <file>', 'also write a self-contained page with TPM and TTFT p95/p99 vs level')
    .option('--json', 'print only the JSON result on stdout')
    .action(async (input: string, raw: Record<string, unknown>) => {
      const s = parseSweepOptions({
        levels: raw.levels,
        sloTtftP95Ms: raw.sloTtftP95Ms,
        requestsPerStage: raw.requestsPerStage,
        out: raw.out,
      });
      // The run flags are checked as `run` checks them (and read the API key from the environment).
      const runOptions = resolveRunOptions({
        flags: { input, out: s.out, endpoint: raw.endpoint, model: raw.model, headers: raw.header, shards: raw.shards },
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
      if (raw.html) {
        writeFileSync(String(raw.html), renderSweepPage(result.stages, result.knee));
        process.stderr.write(`shardline: sweep page written to ${String(raw.html)}\n`);
      }
      if (raw.json) {
        process.stdout.write(`${JSON.stringify({ schema: 'shardline.sweep/v1', ...result }, null, 2)}\n`);
        return;
      }
      const lines = ['level        TPM   TTFT p95   TTFT p99   retries  success', ...result.stages.map(stageLine), ''];
      const k = result.knee;
      lines.push(k.level === null ? `no knee: ${k.why}` : `knee: concurrency ${k.level} — ${k.why}`);
      if (k.level !== null)
        lines.push(
          `use: shardline run ${input} --endpoint ${String(raw.endpoint)} --concurrency ${k.level}${runOptions.shards > 1 ? ` --shards ${runOptions.shards}` : ''}`,
        );
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}

function stageLine(s: SweepStage): string {
  const ms = (x: number | null) => (x === null ? '–' : `${Math.round(x)} ms`);
  const pct = (x: number | null) => (x === null ? '–' : `${(x * 100).toFixed(1)}%`);
  return `${String(s.level).padStart(5)} ${Math.round(s.tpm).toLocaleString('en-US').padStart(10)} ${ms(s.ttftP95Ms).padStart(10)} ${ms(s.ttftP99Ms).padStart(10)} ${pct(s.retryRate).padStart(9)} ${pct(s.successRate).padStart(8)}`;
}
