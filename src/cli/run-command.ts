import { Command, Option } from 'commander';
import { resolveRunOptions } from '../config/resolve-run-options.js';
import { createProgressReporter } from '../runner/progress-line.js';
import { run, type RunStage, type RunSummary } from '../runner/run.js';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

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
  program
    .command('run')
    .description('Run every request of a JSONL file against an OpenAI-compatible endpoint, recording raw events')
    .argument('<input>', 'input JSONL: OpenAI Batch API lines or bare chat bodies')
    .option('--endpoint <url>', 'API base URL as the OpenAI client baseURL, e.g. http://127.0.0.1:8000/v1')
    .option('--out <dir>', 'output directory: results.jsonl, rejects.jsonl, run.json, events/')
    .option('--model <name>', 'set this model on every request')
    .option('--shards <n>', 'worker processes (env SHARD_COUNT; default 1)')
    .option('--concurrency <n>', 'in-flight requests per shard (env LLM_CONCURRENCY; default 16)')
    .option('--max-attempts <n>', 'attempts per request, first included (env LLM_MAX_ATTEMPTS; default 5)')
    .option(
      '--endpoint-down-max-s <s>',
      'longest pause of dispatch while the endpoint is down (refusing connections or answering 502/503/504); attempts meanwhile use up no --max-attempts (default 600)',
    )
    .option(
      '--retry-backoff-s <s>',
      'base backoff, doubled per retry, full jitter (env LLM_RETRY_BACKOFF_S; default 1.0)',
    )
    .option('--retry-backoff-max-s <s>', 'backoff cap (default 30)')
    .option(
      '--retry-after-max-s <s>',
      'longest server Retry-After honoured; a request told to wait longer fails at once, to run again later with --retry-failed (default 300)',
    )
    .option(
      '--retry-budget <share>',
      'most retries as a share of attempts over the budget window, per shard; when spent a failure waits the full backoff cap (default 0.2)',
    )
    .option('--retry-budget-window-s <s>', 'retry budget window (default 30)')
    .option(
      '--retry-budget-min-retries <n>',
      'retries always allowed per window, so a small run can still retry (default 10)',
    )
    .addOption(
      new Option(
        '--retry-mode <mode>',
        'backoff (exponential, full jitter, Retry-After, budget) or fixed (the naive loop: a constant delay) (default backoff)',
      ).choices(['backoff', 'fixed']),
    )
    .addOption(
      new Option(
        '--transport <client>',
        'undici, or raw: a minimal HTTP/1.1 client with less CPU per streamed chunk (default undici)',
      ).choices(['undici', 'raw']),
    )
    .option(
      '--read-coalesce-ms <ms|auto>',
      'no effect (read holds were removed); accepted so scripts written for earlier versions still run',
    )
    .option('--no-keep-alive', 'send Connection: close on every request (to reproduce connection churn)')
    .option('--timeout-connect-s <s>', 'connect timeout (default 10)')
    .option('--timeout-ttft-s <s>', 'request sent → first token timeout (default 120)')
    .option('--timeout-idle-s <s>', 'longest gap between content chunks (default 30)')
    .option('--timeout-total-s <s>', 'whole-attempt timeout (default 600)')
    .option('--rate <r>', 'open-loop Poisson arrivals at R requests/s (default: closed loop)')
    .option(
      '--rpm <n>',
      "request budget per minute for the whole run, kept under the provider's x-ratelimit-* headers too (default: none)",
    )
    .option(
      '--tpm <n>',
      'token budget per minute for the whole run: prompt + max_tokens per request, corrected by usage (default: none)',
    )
    .option('--postprocess <module>', 'module whose default export (result) => result runs in a worker pool')
    .option('--header <header>', "extra request header 'Name: value' (repeatable)", collect)
    .option('--config <file>', 'YAML config; keys are flag names without -- (flags and env override it)')
    .option('--resume', 'continue an interrupted run in --out (re-running into the same --out also resumes)')
    .option(
      '--retry-failed [causes]',
      'resume --out and run again the requests whose result there is a failure: all (the default), or those with the listed causes (e.g. http_5xx,timeout_total); their old results move to retried.jsonl',
    )
    .option(
      '--fail-fast <n>',
      'stop (exit 1) when the first N requests to finish all failed with HTTP 401, 403 or 404 — a wrong key, --model or --endpoint; 0 never stops (default 20)',
    )
    .option('--allow-failures <n|p%>', 'failed or rejected requests tolerated before exit code 3')
    .option('--seed <n>', 'seed for arrivals and backoff jitter')
    .option('--read-ahead <n>', 'closed-loop backlog bound (default 4 × shards × concurrency)')
    .option(
      '--prefetch <n>',
      'items a shard holds beyond its free slots so a freed slot starts at once (default concurrency, at most 1024)',
    )
    .addOption(
      new Option(
        '--on-interrupt <mode>',
        'on SIGINT/SIGTERM: finish in-flight work or drop it (default drain)',
      ).choices(['drain', 'abandon']),
    )
    .option('--drain-timeout-s <s>', 'longest drain before in-flight work is abandoned (default 30)')
    .option('--wedge-timeout-s <s>', 'a silent shard is killed and replaced after this long (default 15)')
    .option(
      '--metrics-port <port>',
      'serve Prometheus /metrics (OpenTelemetry GenAI names) during the run; 0 picks a port',
    )
    .option('--metrics-host <host>', 'address for --metrics-port (default 127.0.0.1)')
    .option('--gauge-interval-ms <ms>', 'how often each process writes a gauge event (default 1000)')
    .option(
      '--redis <url>',
      'coordinate a distributed run over this Redis: requests go out in chunks to `shardline worker` processes (docs/distributed.md)',
    )
    .option('--local-workers <n>', 'with --redis: also start this many workers on this machine (default 0)')
    .option(
      '--global-concurrency <n>',
      "with --redis: most requests in flight across all workers together (default: no bound but each worker's own)",
    )
    .addOption(
      new Option(
        '--progress <mode>',
        'progress on stderr (default auto: in place on a TTY, a line every 10 s otherwise)',
      ).choices(['auto', 'tty', 'lines', 'off']),
    )
    .action(async (input: string, raw: Record<string, unknown>) => {
      const { config, header, keepAlive, ...flags } = raw;
      const options = resolveRunOptions({
        flags: {
          ...flags,
          input,
          headers: header,
          resume: raw.resume === true ? true : undefined,
          keepAlive: keepAlive === false ? false : undefined,
        },
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
  return `set ${s.moved} failed results aside in retried.jsonl to run them again${s.kept ? ` (${s.kept} failures of other causes kept)` : ''}`;
}

function summaryLine(s: RunSummary): string {
  const r = s.requests;
  const causes = Object.entries(s.failure_causes)
    .map(([c, n]) => `${c} ${n}`)
    .join(', ');
  return (
    `shardline: ${s.status} in ${s.duration_s.toFixed(1)}s: ${r.succeeded} succeeded, ${r.failed} failed${causes ? ` (${causes})` : ''}, ` +
    `${r.rejected} rejected${r.rejected ? ' (see rejects.jsonl)' : ''}, ${r.skipped} already done` +
    `${r.rerun ? `, ${r.rerun} failed earlier, run again (old results in retried.jsonl)` : ''}; ${s.retries} retries; ` +
    `${s.tpm_average.toLocaleString('en-US')} completion tok/min; results in ${s.out}`
  );
}
