import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { ConfigError, InputChangedError, IoError } from '../errors.js';
import { parseRunOptions, type ResolvedRunOptions } from '../config/resolved-run-options.js';
import type { RunOptions, RunOptionsInput } from '../config/run-options.js';
import { monotonicEpochMs, type Clock } from '../util/clock.js';
import { EventWriter } from '../events/event-writer.js';
import { hashFile } from '../events/hashing.js';
import { VERSION } from '../version.js';
import { Coordinator, type ProgressSnapshot } from './coordinator.js';
import type { RunTotals } from './run-totals.js';
import { DirResultSink } from './output/dir-result-sink.js';
import { setAsideFailures } from './output/set-aside-failures.js';
import { JsonlWorkSource } from './jsonl-work-source.js';
import { redactUrl } from '../util/redact-url.js';
import { publicConfig, readManifest, writeManifest, type RunManifest } from './output/run-manifest.js';
import { failureHints } from './failure-hints.js';
import { checkPostprocessModule } from './output/postprocessor.js';
import { acquireOutLock } from './output/out-lock.js';
import { ensureDir } from '../util/ensure-dir.js';
import { chatPath, shardConfig } from './shard/shard-config.js';
import { checkReadableInput } from '../input/check-readable.js';

/** What `run()` returns and `shardline run` prints on stdout. */
export interface RunSummary {
  run_id: string;
  status: 'finished' | 'interrupted' | 'failed';
  out: string;
  /**
   * `skipped`: already had a result in OUT (a resume); `rerun`: failed results set aside by
   * `retryFailed` to run again (also counted in `total`).
   */
  requests: { total: number; succeeded: number; failed: number; rejected: number; skipped: number; rerun: number };
  attempts: number;
  retries: number;
  failure_causes: Record<string, number>;
  /** Failed requests by the HTTP status of their final attempt (those that got one). */
  failure_statuses: Record<string, number>;
  /** Plain-language pointers when failures look like a wrong flag (404, 401/403, connection refused). */
  hints: string[];
  tokens: { completion: number; prompt: number };
  duration_s: number;
  tpm_average: number;
  ttft_p95_ms: number | null;
  shard_restarts: number;
  /** 0 ok, 3 failed requests beyond --allow-failures, 130 interrupted, 1 could not go on. */
  exit_code: number;
  error?: string;
}

export interface RunHooks {
  /** Abort to stop: in-flight work drains or is abandoned per `onInterrupt`. */
  signal?: AbortSignal;
  /** Abort to abandon in-flight work at once (e.g. a second Ctrl-C). */
  abandonSignal?: AbortSignal;
  onProgress?: (p: ProgressSnapshot) => void;
  /** Called with the /metrics URL once it serves (with `metricsPort`). */
  onMetrics?: (url: string) => void;
  /** Start-up work before the first request, which takes a while on a large job (see RunStage). */
  onStage?: (stage: RunStage) => void;
  clock?: Clock;
}

/**
 * What a run does before its first request: hash the input (to refuse a resume over a changed
 * one), read the results of an earlier run in OUT (to skip them), set failures aside (retryFailed).
 */
export type RunStage =
  | { stage: 'hash_input'; bytes: number }
  | { stage: 'read_results'; bytes: number }
  | { stage: 'set_aside'; moved: number; kept: number };

/**
 * Run every request of a JSONL file against an OpenAI-compatible endpoint with sharded workers,
 * recording raw events and exactly one result per input line.
 * @example await run({ input: 'in.jsonl', endpoint: 'http://127.0.0.1:8000/v1', out: 'runs/a' })
 */
export async function run(input: RunOptionsInput | RunOptions, hooks: RunHooks = {}): Promise<RunSummary> {
  const o = parseRunOptions(input);
  const clock = hooks.clock ?? monotonicEpochMs;
  checkReadableInput(o.input);
  if (o.globalConcurrency !== undefined && o.redis === undefined)
    throw new ConfigError(
      `Expected \`--global-concurrency\` only with \`--redis\`, got \`${o.globalConcurrency}\` without it (one ` +
        `machine: --shards × --concurrency is the bound)`,
    );
  if (o.localWorkers > 0 && o.redis === undefined)
    throw new ConfigError(`Expected \`--local-workers\` only with \`--redis\`, got \`${o.localWorkers}\` without it`);
  // Each worker would apply an arrival rate on its own: N workers would send N times it. (--rpm/--tpm,
  // and an endpoint's own rpm/tpm, are each one budget in Redis, shared by every worker.)
  if (o.redis !== undefined && o.rate !== undefined)
    throw new ConfigError(
      `Expected no \`--rate\` with \`--redis\`, got \`${o.rate}\`: every worker would apply it on its own (bound ` +
        `a distributed run with --global-concurrency, or pace it with --rpm/--tpm)`,
    );
  if (o.postprocess && !existsSync(o.postprocess)) {
    throw new ConfigError(`Expected \`--postprocess\` to be a module file, got \`${o.postprocess}\` (not found)`);
  }
  if (o.postprocess) await checkPostprocessModule(o.postprocess);
  const out = resolve(o.out);
  try {
    ensureDir(out);
  } catch (cause) {
    const e = cause as NodeJS.ErrnoException;
    if (e.code === 'ENOTDIR')
      throw new ConfigError(`Expected \`--out\` to be a directory, got \`${o.out}\` (a file is in the way)`, { cause });
    throw new IoError(`Cannot create output directory \`${o.out}\`: ${e.message}`, { cause });
  }
  const release = acquireOutLock(out);
  try {
    return await runInDir(o, out, hooks, clock);
  } finally {
    release();
  }
}

/** The run proper, once `out` exists and this process holds its lock. */
async function runInDir(o: ResolvedRunOptions, out: string, hooks: RunHooks, clock: Clock): Promise<RunSummary> {
  hooks.onStage?.({ stage: 'hash_input', bytes: statSync(o.input).size });
  const inputHash = await hashFile(o.input);
  const previous = readManifest(out);
  if (o.resume && !previous) throw new ConfigError(`Nothing to resume: \`--out\` ${out} has no run.json`);
  if (o.retryCauses !== undefined && !previous)
    throw new ConfigError(
      `Nothing to retry: \`--out\` ${out} has no run.json (--retry-failed runs again the failures of an earlier ` +
        `run there)`,
    );
  if (previous && previous.input.sha256 !== inputHash.sha256) {
    throw new InputChangedError(
      `Refusing to resume into ${out}: the input changed (sha256 ${inputHash.sha256.slice(0, 12)}… now, ` +
        `${previous.input.sha256.slice(0, 12)}… when the run started). Use a new --out.`,
    );
  }
  const runId = previous?.run_id ?? newRunId();
  // Before the sink opens results.jsonl: the failures to run again must not count as done.
  const resultsPath = join(out, 'results.jsonl');
  if (existsSync(resultsPath)) hooks.onStage?.({ stage: 'read_results', bytes: statSync(resultsPath).size });
  const setAside = o.retryCauses === undefined ? undefined : await setAsideFailures(resultsPath, o.retryCauses);
  if (setAside) hooks.onStage?.({ stage: 'set_aside', ...setAside });
  // A file of the run that cannot be written (a full disk) stops the run: until the coordinator
  // exists, the first such error is kept for it.
  let writeError: Error | undefined;
  let stopFor = (err: Error): void => void (writeError ??= err);
  const onWriteError = (err: Error): void => stopFor(err);
  const sink = new DirResultSink(out);
  sink.onError = onWriteError;
  const doneIds = await sink.doneIds();
  const events = new EventWriter({
    path: join(out, 'events', 'coordinator.jsonl'),
    run: runId,
    shard: -1,
    now: clock,
    onError: onWriteError,
  });
  const startedAt = new Date();
  const manifest: RunManifest = {
    schema: 'shardline.run/v1',
    run_id: runId,
    status: 'running',
    input: { path: resolve(o.input), ...inputHash },
    endpoint: redactUrl(o.upstreams[0]!.url),
    ...(o.upstreams.length > 1 ? { endpoints: o.upstreams.map((u) => redactUrl(u.url)) } : {}),
    config: publicConfig(o),
    versions: { shardline: VERSION, node: process.version, undici: undiciVersion() },
    started_at: previous?.started_at ?? startedAt.toISOString(),
    ended_at: null,
    resumes: previous ? previous.resumes + 1 : 0,
    totals: null,
  };
  writeManifest(out, manifest);
  events.write('run_start', {
    config: manifest.config,
    resumed: previous !== undefined,
    pid: process.pid,
    ...(setAside ? { rerun: setAside.moved } : {}),
  });

  if (o.redis !== undefined) {
    const t0 = clock();
    // Loaded only for a distributed run: BullMQ and ioredis cost every other command ~0.3 s of CPU to load.
    const { DistributedCoordinator } = await import('./distributed/distributed-run.js');
    const distributed = new DistributedCoordinator({
      options: Object.assign(o, { redis: o.redis }),
      runId,
      out,
      sink,
      doneIds,
      clock,
      signal: hooks.signal,
      ...(hooks.onMetrics ? { onMetrics: hooks.onMetrics } : {}),
    });
    // A results file that cannot be written stops the run cleanly, as on one machine.
    stopFor = (err) => {
      writeError ??= err;
      distributed.stopFor(err);
    };
    if (writeError) distributed.stopFor(writeError);
    const { status, totals: t, ttftP95Ms, error } = await distributed.run();
    await sink.close();
    events.write('run_end', { status, succeeded: t.succeeded, failed: t.failed, rejected: t.rejected });
    events.close();
    const summary = buildSummary(
      o,
      runId,
      out,
      status,
      t,
      (clock() - t0) / 1000,
      ttftP95Ms,
      error,
      setAside?.moved ?? 0,
    );
    finishManifest(
      out,
      { ...manifest, status, ended_at: new Date().toISOString(), totals: { ...summary } },
      writeError,
    );
    return summary;
  }
  const source = new JsonlWorkSource(o.input, o.model, o.bareEndpoint);
  const coordinator = new Coordinator({
    options: o,
    source,
    sink,
    events,
    doneIds,
    inputLines: inputHash.lines,
    clock,
    shardConfig: (index, replaces) => shardConfig(o, runId, out, index, replaces),
    ...(hooks.onProgress ? { onProgress: hooks.onProgress } : {}),
  });
  stopFor = (err) => {
    writeError ??= err;
    coordinator.stopFor(err);
  };
  if (writeError) coordinator.stopFor(writeError);
  const onAbort = () => coordinator.interrupt();
  const onAbandon = () => coordinator.interrupt('abandon');
  hooks.signal?.addEventListener('abort', onAbort, { once: true });
  hooks.abandonSignal?.addEventListener('abort', onAbandon, { once: true });
  if (hooks.signal?.aborted) onAbort();

  if (o.metricsPort !== undefined) {
    const url = await coordinator.live.serve(o.metricsHost, o.metricsPort);
    hooks.onMetrics?.(url);
  }
  const t0 = clock();
  const { status, error } = await coordinator.run();
  await coordinator.live.close();
  const durationS = (clock() - t0) / 1000;
  hooks.signal?.removeEventListener('abort', onAbort);
  hooks.abandonSignal?.removeEventListener('abort', onAbandon);
  await source.close();
  await sink.close();
  const t = coordinator.totals;
  events.write('run_end', { status, succeeded: t.succeeded, failed: t.failed, rejected: t.rejected });
  events.close();
  const summary = buildSummary(
    o,
    runId,
    out,
    status,
    t,
    durationS,
    coordinator.snapshot().ttftP95Ms,
    error,
    setAside?.moved ?? 0,
  );
  finishManifest(out, { ...manifest, status, ended_at: new Date().toISOString(), totals: { ...summary } }, writeError);
  return summary;
}

/**
 * Write the final run.json. After a write error stopped the run, the disk that stopped it may refuse
 * run.json too: it then still says `running`, and the same command resumes. Any other failure is news.
 */
function finishManifest(out: string, manifest: RunManifest, writeError: Error | undefined): void {
  try {
    writeManifest(out, manifest);
  } catch (err) {
    if (!writeError) throw err;
  }
}

function buildSummary(
  o: ResolvedRunOptions,
  runId: string,
  out: string,
  status: RunSummary['status'],
  t: RunTotals,
  durationS: number,
  ttftP95: number | undefined,
  error: Error | undefined,
  rerun: number,
): RunSummary {
  const failures = t.failed + t.rejected;
  let exit = 0;
  if (status === 'failed') exit = 1;
  else if (status === 'interrupted') exit = 130;
  else if (failures > allowedFailures(o.allowFailures, t.requests + t.rejected)) exit = 3;
  return {
    run_id: runId,
    status,
    out,
    requests: {
      total: t.requests,
      succeeded: t.succeeded,
      failed: t.failed,
      rejected: t.rejected,
      skipped: t.skipped,
      rerun,
    },
    attempts: t.attempts,
    retries: t.retries,
    failure_causes: t.causes,
    failure_statuses: t.statuses,
    hints: [
      ...failureHints({
        requestUrl: requestUrlOf(o.upstreams[0]!.url),
        ...(o.upstreams.length > 1 ? { requestUrls: o.upstreams.map((u) => requestUrlOf(u.url)) } : {}),
        failed: t.failed,
        causes: t.causes,
        statuses: t.statuses,
        statusErrors: t.statusErrors,
        retryAfterTooLong: { count: t.retryAfterTooLong, maxMs: t.retryAfterTooLongMaxMs, limitS: o.retryAfterMaxS },
      }),
      ...optionHints(o),
    ],
    tokens: { completion: t.completionTokens, prompt: t.promptTokens },
    duration_s: Math.round(durationS * 1000) / 1000,
    tpm_average: durationS > 0 ? Math.round((t.completionTokens * 60) / durationS) : 0,
    ttft_p95_ms: ttftP95 === undefined ? null : Math.round(ttftP95 * 10) / 10,
    shard_restarts: t.shardRestarts,
    exit_code: exit,
    ...(error ? { error: error.message } : {}),
  };
}

/** Options that were set but did nothing in this run, said once at the end rather than silently ignored. */
function optionHints(o: RunOptions): string[] {
  if (o.readCoalesceMs !== undefined) {
    return [
      `--read-coalesce-ms ${o.readCoalesceMs} had no effect: read holds were removed (they saved CPU in one ` +
        `benchmark shape at the cost of reading stream ends late)`,
    ];
  }
  return [];
}

/** Where requests go, for messages: no credentials, no query. */
function requestUrlOf(endpoint: string): string {
  const u = new URL(endpoint);
  return `${u.origin}${chatPath(u)}`;
}

/** `--allow-failures N|P%` as a count, given how many lines there were. */
export function allowedFailures(spec: string | undefined, lines: number): number {
  if (!spec) return 0;
  if (spec.endsWith('%')) return (Number(spec.slice(0, -1)) / 100) * lines;
  return Number(spec);
}

export function newRunId(): string {
  const stamp = new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

function undiciVersion(): string {
  try {
    return (createRequire(import.meta.url)('undici/package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
