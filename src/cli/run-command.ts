import type { Command } from 'commander';
import { addOptions, flagValues } from '../config/option-table.js';
import { CONFIG_FLAG, RUN_OPTIONS } from '../config/run-option-table.js';
import { resolveRunOptions } from '../config/resolve-run-options.js';
import { createProgressReporter } from './progress-line.js';
import { run, type RunStage, type RunSummary } from '../runner/run.js';

/**
 * `--retry-failed` takes an optional value, so `run --retry-failed in.jsonl …` would take the input
 * for causes. Causes are words of letters, digits and underscores: a next word that could not be a
 * list of them (a path: `in.jsonl`, `data/in`) is left as an argument, and the flag means all
 * failures. A misspelt cause (`http_500`) is still taken as one, so its error names the flag.
 */
export function retryFailedArgv(argv: readonly string[]): string[] {
  return argv.map((arg, i) => {
    const next = argv[i + 1];
    return arg === '--retry-failed' && next !== undefined && !next.startsWith('-') && !/^\w+(,\w+)*$/.test(next)
      ? '--retry-failed=all'
      : arg;
  });
}

/** `shardline run`: the runner over the library's `run()`. */
export function registerRunCommand(program: Command): void {
  const command = program
    .command('run')
    .description('Run every request of a JSONL file against an OpenAI-compatible endpoint, recording raw events')
    .argument('<input>', 'input JSONL: OpenAI Batch API lines or bare chat bodies');
  addOptions(command, { ...RUN_OPTIONS, config: CONFIG_FLAG });
  command.action(async (input: string, _raw: unknown, cmd: Command) => {
    const { config, ...flags } = flagValues(cmd, { ...RUN_OPTIONS, config: CONFIG_FLAG });
    const options = resolveRunOptions({
      flags: { ...flags, input },
      env: process.env,
      ...(typeof config === 'string' ? { configFile: config } : {}),
    });
    const progress = createProgressReporter(options.progress);
    const stop = new AbortController();
    const abandon = new AbortController();
    const onSignal = (sig: NodeJS.Signals) => {
      if (!stop.signal.aborted) {
        process.stderr.write(
          `\nshardline: ${sig}: stopping (${options.onInterrupt} in-flight work); again to abandon\n`,
        );
        stop.abort();
      } else abandon.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    let summary: RunSummary;
    try {
      summary = await run(options, {
        signal: stop.signal,
        abandonSignal: abandon.signal,
        onProgress: (p) => progress.update(p),
        onMetrics: (url) => process.stderr.write(`shardline: metrics on ${url}\n`),
        onStage: (stage) => {
          const notice = stageNotice(stage);
          if (notice) process.stderr.write(`shardline: ${notice}\n`);
        },
      });
    } finally {
      progress.end();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    process.stderr.write(`${summaryLine(summary)}\n`);
    // Why the run could not go on: in the JSON on stdout too, but stderr is what a person reads.
    if (summary.error) process.stderr.write(`shardline: error: ${summary.error}\n`);
    for (const hint of summary.hints) process.stderr.write(`shardline: hint: ${hint}\n`);
    process.exitCode = summary.exit_code;
  });
}

/** Start-up work worth a line before a large job's first request: reading a GiB takes seconds. */
const NOTICE_BYTES = 256 * 1024 * 1024;

/** The stderr line for a start-up stage, or undefined when it is quick enough to pass unsaid. */
export function stageNotice(s: RunStage): string | undefined {
  const gb = (bytes: number) => `${(bytes / 1e9).toFixed(1)} GB`;
  if (s.stage === 'hash_input')
    return s.bytes >= NOTICE_BYTES
      ? `hashing the input (${gb(s.bytes)}), so that a resume can tell whether it changed…`
      : undefined;
  if (s.stage === 'read_results')
    return s.bytes >= NOTICE_BYTES
      ? `reading the earlier results in --out (${gb(s.bytes)}) to skip what is done…`
      : undefined;
  if (s.moved === 0)
    return s.kept
      ? `no failed results with the causes asked for (${s.kept} others kept)`
      : 'no failed results to run again';
  return (
    `set ${s.moved} failed results aside in retried.jsonl to run them ` +
    `again${s.kept ? ` (${s.kept} failures of other causes kept)` : ''}`
  );
}

function summaryLine(s: RunSummary): string {
  const r = s.requests;
  const causes = Object.entries(s.failure_causes)
    .map(([c, n]) => `${c} ${n}`)
    .join(', ');
  return (
    `shardline: ${s.status} in ${s.duration_s.toFixed(1)}s: ${r.succeeded} succeeded, ${r.failed} ` +
    `failed${causes ? ` (${causes})` : ''}, ` +
    `${r.rejected} rejected${r.rejected ? ' (see rejects.jsonl)' : ''}, ${r.skipped} already done` +
    `${r.rerun ? `, ${r.rerun} failed earlier, run again (old results in retried.jsonl)` : ''}; ${s.retries} ` +
    `retries; ` +
    `${s.tpm_average.toLocaleString('en-US')} completion tok/min; results in ${s.out}`
  );
}
