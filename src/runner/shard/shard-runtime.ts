import { hostname } from 'node:os';
import { runChatAttempt, type AttemptOutcome, type PhaseTimeouts } from '../../client/chat-attempt.js';
import type { ConnAttribution } from '../../client/conn-tracker.js';
import { KeepAliveLearner } from '../../client/keepalive-learner.js';
import { serverQueueMs } from '../../client/server-timings.js';
import { createRedactor, headerSecrets } from '../../client/redact.js';
import { decideRetry, RetryBudget, type RetryPolicyOptions } from '../../client/retry-policy.js';
import type { Clock } from '../../util/clock.js';
import { EventWriter } from '../../events/event-writer.js';
import type { EventPayloads } from '../../events/event-types.js';
import { round3 } from '../../metrics/percentiles.js';
import { createRng } from '../../util/rng.js';
import { LoopLagSampler } from '../live/loop-lag.js';
import { LoadSampler, rssMb } from '../live/load-sampler.js';
import type { DoneItem, FromShard, RetryItem, ShardConfig, WorkItem } from '../ipc-messages.js';
import { errorResultLine, successResultLine } from '../output/result-line.js';
import type { Postprocessor } from '../output/postprocessor.js';
import { quotaFromHeaders, type QuotaObservation } from '../pacing/rate-budget.js';
import { ownBudget, type OwnBudget } from './own-budget.js';
import { chargeCorrection, chargedTokens } from '../pacing/budget-gate.js';
import { AdaptiveLimit } from '../pacing/adaptive-limit.js';
import { attemptEndPayload, countTokens, type TokenCounts } from './attempt-record.js';
import { ProbeGate } from './probe-gate.js';
import { ShardTransport } from './shard-transport.js';
import { answeredEnd, failedEnd, retryOf } from './request-end.js';

/**
 * One shard: executes attempts with at most `concurrency` in flight over its own keep-alive pool,
 * writes its own event file, and asks the coordinator for work whenever a slot frees (pull-based).
 * A failed attempt is handed back as a retry with its backoff; the coordinator owns all waiting.
 */
export class ShardRuntime {
  private inFlight = 0;
  private postPending = 0;
  private requests = 0;
  private readonly transport: ShardTransport;
  private readonly events: EventWriter;
  private readonly retry: RetryPolicyOptions;
  private readonly timeouts: PhaseTimeouts;
  private readonly loopLag: LoopLagSampler;
  private readonly gaugeTimer: NodeJS.Timeout;
  private cpuMark = process.cpuUsage();
  private readonly gaugeLoad = new LoadSampler();
  private stopping: 'drain' | 'abandon' | undefined;
  private stopped: Promise<void> | undefined;
  /**
   * Prefetched work: up to `prefetch` items beyond the free slots, so a slot that frees starts its
   * next request at once instead of after an IPC round trip to the coordinator.
   */
  private readonly local: WorkItem[] = [];
  private outbox: { pull: number; done: DoneItem[]; retry: RetryItem[] } = { pull: 0, done: [], retry: [] };
  /** `--concurrency auto`; undefined for a fixed limit. */
  private readonly adaptive: AdaptiveLimit | undefined;
  /** In-flight limit now: the fixed concurrency, or the adaptive limit. */
  private limit: number;
  /** Pulls to skip after the limit came down: the coordinator is owed fewer slots. */
  private pullDebt = 0;
  /** The newest rate-limit state seen, by budget kind, until the next flush. */
  private quota = new Map<string, QuotaObservation>();
  private flushScheduled = false;
  /** Error text is written to events and results: credentials a server echoes back are removed. */
  private readonly redact: (text: string) => string;
  /** The endpoint-down pause: while the endpoint is down only probes go out. */
  private readonly gate: ProbeGate;
  /** This server's own rpm/tpm (a config file's endpoint entry), if it has one. */
  private readonly own: OwnBudget | undefined;
  private budgetTimer: NodeJS.Timeout | undefined;
  private pausedCount = 0;
  private readonly keepAlive = new KeepAliveLearner();

  constructor(
    private readonly config: ShardConfig,
    private readonly send: (msg: FromShard) => void,
    private readonly clock: Clock,
    private readonly postprocessor: Postprocessor | undefined,
    /** CPU use already counted elsewhere (a process that hosts run after run). @default none */
    private readonly cpuSince?: NodeJS.CpuUsage,
  ) {
    this.events = new EventWriter({
      path: config.eventsPath,
      run: config.runId,
      shard: config.shard,
      now: clock,
      // Nothing this shard finishes from here on can be recorded: the run must stop (the
      // coordinator drains the shards; no result is written without its request_end on disk).
      onError: (err) => this.send({ t: 'fatal', message: err.message }),
    });
    this.transport = new ShardTransport(config, clock, (connectMs, who) =>
      this.events.write('conn_open', { connect_ms: round3(connectMs), id: who.id, attempt: who.attempt }),
    );
    this.gate = new ProbeGate(config.endpointDownMaxMs, () => this.startMore(), config.upstream.of > 1);
    this.own = config.upstream.budget ? ownBudget(config.upstream.budget, clock()) : undefined;
    this.timeouts = { ttftMs: config.timeoutTtftMs, idleMs: config.timeoutIdleMs, totalMs: config.timeoutTotalMs };
    this.retry = {
      maxAttempts: config.maxAttempts,
      backoffBaseMs: config.backoffBaseMs,
      backoffCapMs: config.backoffCapMs,
      retryAfterMaxMs: config.retryAfterMaxMs,
      budget: new RetryBudget(config.retryBudget, config.retryBudgetWindowMs, config.retryBudgetMinRetries),
      random: config.seed >= 0 ? createRng(config.seed * 7919 + config.shard) : Math.random,
      fixed: config.retryMode === 'fixed',
    };
    this.loopLag = new LoopLagSampler(this.clock);
    this.adaptive = config.adaptive ? new AdaptiveLimit(config.adaptive, this.clock()) : undefined;
    this.limit = this.adaptive?.limit ?? config.concurrency;
    this.redact = createRedactor(headerSecrets(config.headers));
    this.gaugeTimer = setInterval(() => this.gauge(), config.gaugeIntervalMs);
  }

  start(): void {
    this.events.write('shard_start', {
      pid: process.pid,
      host: hostname(),
      concurrency: this.limit,
      upstream: this.config.upstream.url,
      upstream_index: this.config.upstream.index,
      upstreams: this.config.upstream.of,
      ...(this.config.replaces !== undefined ? { replaces: this.config.replaces } : {}),
    });
    if (!this.config.keepAlive) this.events.write('keepalive_disabled', {});
    this.send({ t: 'ready', pid: process.pid });
    this.outbox.pull += this.limit + this.config.prefetch;
    this.scheduleFlush();
  }

  onWork(items: WorkItem[]): void {
    for (const item of items) this.local.push(item);
    // Sent before the coordinator heard this endpoint is down: the other endpoints take them.
    if (this.gate.health.down && this.config.upstream.of > 1) this.release(this.local.splice(1));
    this.startMore();
  }

  /**
   * Start prefetched work while slots are free; while the endpoint is down, only a due probe. With a
   * budget of this server's own, each attempt waits for room in it (a probe goes unpaced).
   */
  private startMore(): void {
    while (
      this.local.length > 0 &&
      this.inFlight < this.limit &&
      !this.stopping &&
      (this.gate.health.down || this.budgetAllows(this.local[0]!)) &&
      this.gate.admit(this.local[0]!.id)
    ) {
      void this.execute(this.local.shift()!);
    }
  }

  /** Whether this server's own budget has room for `item` now (charging it); if not, look again when it will. */
  private budgetAllows(item: WorkItem): boolean {
    if (!this.own) return true;
    const waitMs = this.own.budget.tryTake(chargedTokens(item.charge), this.clock());
    if (waitMs === 0) return true;
    this.budgetTimer ??= setTimeout(() => {
      this.budgetTimer = undefined;
      this.startMore();
    }, waitMs);
    return false;
  }

  /** Return up to `n` prefetched items that have not started, newest first, for another shard. */
  giveBack(n: number): void {
    // Their pull credits go back too: the coordinator counts them as demand again.
    this.release(this.local.splice(Math.max(0, this.local.length - n)));
  }

  /** Hand items back to the coordinator, with their attempt numbers where they moved on here. */
  private release(items: WorkItem[]): void {
    if (items.length === 0) return;
    const msg: Extract<FromShard, { t: 'release' }> = { t: 'release', ids: items.map((w) => w.id) };
    if (items.some((w) => w.free)) {
      msg.attempts = items.map((w) => w.attempt);
      msg.free = items.map((w) => w.free ?? 0);
    }
    this.send(msg);
  }

  /** Stop pulling work; `drain` finishes in-flight attempts, `abandon` drops them. */
  stop(mode: 'drain' | 'abandon'): Promise<void> {
    if (this.stopped) {
      // Asked again while draining: abandon what is left (ends the drain wait below).
      if (mode === 'abandon') this.stopping = 'abandon';
      return this.stopped;
    }
    this.stopping = mode;
    this.stopped = this.finishStop();
    return this.stopped;
  }

  private async finishStop(): Promise<void> {
    // Prefetched work never started: hand it back so it is not counted as in flight.
    this.release(this.local.splice(0));
    this.gate.stop();
    clearTimeout(this.budgetTimer);
    this.own?.close();
    while (this.stopping === 'drain' && (this.inFlight > 0 || this.postPending > 0))
      await new Promise((r) => setTimeout(r, 5));
    // Attempts that failed into a pause while draining: unfinished, back to the coordinator.
    this.release(this.local.splice(0));
    this.flushOutbox();
    clearInterval(this.gaugeTimer);
    this.gaugeLoad.close();
    this.loopLag.stop();
    const cpu = process.cpuUsage(this.cpuSince);
    const end: EventPayloads['shard_end'] = {
      requests: this.requests,
      cpu_user_ms: cpu.user / 1000,
      cpu_system_ms: cpu.system / 1000,
    };
    const reads = this.transport.socketReads;
    if (reads !== undefined) end.socket_reads = reads;
    this.events.write('shard_end', end);
    this.events.close();
    await this.transport.close(this.stopping === 'drain');
    await this.postprocessor?.close();
    this.send({ t: 'stopped' });
  }

  private async execute(item: WorkItem): Promise<void> {
    const { id, attempt } = item;
    this.inFlight++;
    this.adaptive?.noteStart(this.inFlight);
    const startTs = this.clock();
    this.events.write('attempt_start', { id, attempt }, startTs);
    this.retry.budget.recordAttempt(startTs);
    const who: ConnAttribution = { id, attempt, stream: item.stream };
    let outcome = await this.sendOnce(item, who, false);
    // A reused keep-alive connection the server had closed: nothing reached it, so the request
    // goes again at once on a fresh connection, as the same attempt (once: a server that resets
    // fresh connections too ends in a real failure).
    if (
      outcome.outcome === 'error' &&
      outcome.status === undefined &&
      outcome.cause === 'conn_reset' &&
      who.reused &&
      !this.stopping
    ) {
      this.noteStale(item, who, outcome.message);
      outcome = await this.sendOnce(item, who, true);
    }
    // The slot is held until attempt_end is written, so the log never shows more than
    // `concurrency` attempts open on this shard.
    const tokens = outcome.outcome === 'ok' ? await countTokens(item, outcome) : undefined;
    const endTs = this.clock();
    // llama-server's own timings against what this client saw: for the event and the adaptive limit.
    const queueMs =
      outcome.outcome === 'ok'
        ? serverQueueMs(outcome.completion, item.stream, {
            startTs,
            firstTokenTs: outcome.firstTokenTs,
            lastTokenTs: outcome.lastTokenTs,
            connectMs: who.connectMs ?? 0,
          })
        : undefined;
    this.events.write(
      'attempt_end',
      attemptEndPayload(item, outcome, tokens, who.connectMs, queueMs, this.redact),
      endTs,
    );
    this.inFlight--;
    this.gate.ended(id);
    if (this.stopping === 'abandon') return;
    if (outcome.outcome === 'error' && this.pause(item, outcome, endTs)) return;
    if (this.adaptive) this.adapt(outcome, startTs, endTs, queueMs);
    if (!this.stopping) {
      this.startMore();
      if (this.pullDebt > 0) this.pullDebt--;
      else this.outbox.pull++;
      this.scheduleFlush();
    }
    if (outcome.outcome === 'ok') {
      await this.succeed(item, outcome, tokens!, startTs, endTs);
    } else this.failAttempt(item, outcome, startTs, endTs);
  }

  /** One try of an attempt: on the pool, or (`fresh`) on a connection opened for it. */
  private sendOnce(item: WorkItem, who: ConnAttribution, fresh: boolean): Promise<AttemptOutcome> {
    const { id, attempt } = item;
    who.reused = undefined;
    who.afterStream = undefined;
    const close = fresh || (item.stream && this.keepAlive.noReuseAfterStream);
    return runChatAttempt(
      this.transport.dispatcher(fresh),
      this.transport.targetFor(item, close),
      item.body,
      item.stream,
      this.timeouts,
      this.clock,
      {
        onRequestStart: () => this.transport.tracker.mark(who),
        onHeaders: (status, ts, headers) => {
          this.events.write('response_headers', { id, attempt, status }, ts);
          if (this.gate.noteStatus(status)) this.endpointUp(false);
          if (this.config.reportQuota) this.noteQuota(headers, ts);
          // This server's own budget obeys what it says of itself.
          if (this.own) for (const q of quotaFromHeaders(headers, ts)) this.own.budget.observe(q);
        },
        onFirstToken: (ts) => this.events.write('first_token', { id, attempt }, ts),
      },
      item.endpoint,
    );
  }

  /** Record a stale connection; after two following streamed answers, stop reusing those. */
  private noteStale(item: WorkItem, who: ConnAttribution, message: string): void {
    const p: EventPayloads['stale_connection'] = {
      id: item.id,
      attempt: item.attempt,
      error: this.redact(message).slice(0, 200),
    };
    if (who.afterStream) p.after_stream = true;
    this.events.write('stale_connection', p);
    if (this.keepAlive.noteStale(who.afterStream === true))
      this.events.write('keepalive_off', { after: 'stream', stale: this.keepAlive.staleAfterStreams });
  }

  /**
   * Feed a failed attempt to the endpoint-down breaker. Returns true when the request waits for
   * the endpoint here (its attempt used up nothing) instead of taking the retry policy's course.
   */
  private pause(item: WorkItem, o: Extract<AttemptOutcome, { outcome: 'error' }>, ts: number): boolean {
    const verdict = this.gate.noteFailure(o.cause, o.status, ts);
    if (verdict === 'gave_up') this.endpointUp(true);
    if (verdict !== 'opened' && verdict !== 'held') return false;
    if (verdict === 'opened') {
      const p: EventPayloads['endpoint_down'] = { cause: o.cause, error: this.redact(o.message).slice(0, 200) };
      if (o.status !== undefined) p.status = o.status;
      this.events.write('endpoint_down', p, ts);
      this.send({ t: 'health', down: true, sinceTs: ts });
    }
    this.events.write('paused', { id: item.id, attempt: item.attempt, cause: o.cause }, ts);
    this.pausedCount++;
    // The next attempt is a new one in the log, but it is not charged: the item stays assigned
    // here (no pull credit), first in line for the next probe.
    item.attempt++;
    item.free = (item.free ?? 0) + 1;
    // With other endpoints to take it, it goes back at once (and what waits here with it): the
    // coordinator hands this shard one item at a time to probe with while it is down.
    if (this.stopping || this.config.upstream.of > 1) this.release([item, ...this.local.splice(0)]);
    else this.local.unshift(item);
    return true;
  }

  /** The endpoint answered again (or the pause gave up): dispatch resumes at full rate. */
  private endpointUp(gaveUp: boolean): void {
    const probes = this.gate.health.probes;
    this.events.write('endpoint_up', gaveUp ? { probes, gave_up: true } : { probes });
    this.send({ t: 'health', down: false, sinceTs: this.clock() });
    if (!this.stopping) setImmediate(() => this.startMore());
  }

  private async succeed(
    item: WorkItem,
    o: Extract<AttemptOutcome, { outcome: 'ok' }>,
    tokens: TokenCounts,
    startTs: number,
    endTs: number,
  ): Promise<void> {
    const { id } = item;
    // As the coordinator corrects the run's budget.
    if (this.own && item.charge)
      this.own.budget.adjust(
        chargeCorrection(item.charge, { promptTokens: tokens.prompt, completionTokens: tokens.completion }),
      );
    let resultLine = successResultLine(this.config.runId, item, o);
    let cause: DoneItem['cause'];
    if (this.postprocessor) {
      this.postPending++;
      this.events.write('postprocess_start', { id });
      const r = await this.postprocessor.run(resultLine);
      this.postPending--;
      if (r.ok) {
        resultLine = r.line;
        this.events.write('postprocess_end', { id });
      } else {
        cause = 'postprocess_error';
        resultLine = errorResultLine(this.config.runId, item, 'postprocess_error', this.redact(r.error), o.status);
        this.events.write('postprocess_end', { id, error: this.redact(r.error) });
      }
    }
    const { end, done } = answeredEnd(item, o, tokens, resultLine, cause, startTs, endTs);
    this.events.write('request_end', end);
    this.requests++;
    this.outbox.done.push(done);
    this.scheduleFlush();
  }

  private failAttempt(
    item: WorkItem,
    o: Extract<AttemptOutcome, { outcome: 'error' }>,
    startTs: number,
    now: number,
  ): void {
    // Attempts that failed while the endpoint was down are not charged (see pause()).
    const charged = item.attempt - (item.free ?? 0);
    const decision = decideRetry(
      { attempt: charged, cause: o.cause, status: o.status, retryAfterMs: o.retryAfterMs, nowMs: now },
      this.retry,
    );
    if (decision.retry) {
      const backoffTs = this.clock();
      const { backoff, retry } = retryOf(item, o, decision, backoffTs, now - startTs);
      this.events.write('backoff', backoff, backoffTs);
      this.outbox.retry.push(retry);
    } else {
      const tooLong = decision.retryAfterTooLongMs;
      const message =
        this.redact(o.message) +
        (tooLong === undefined
          ? ''
          : ` (not retried: the server asked to wait ${round3(tooLong / 1000)} s, over --retry-after-max-s ` +
            `${this.retry.retryAfterMaxMs! / 1000})`);
      const line = errorResultLine(this.config.runId, item, o.cause, message, o.status);
      const { end, done } = failedEnd(item, o, message, line, tooLong, now - startTs);
      this.events.write('request_end', end);
      this.requests++;
      this.outbox.done.push(done);
    }
    this.scheduleFlush();
  }

  private gauge(): void {
    const lagMs = this.loopLag.take();
    const cpu = process.cpuUsage(this.cpuMark);
    this.cpuMark = process.cpuUsage();
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const load = this.gaugeLoad.take();
    const p: EventPayloads['gauge'] = {
      // Prefetched items not started yet: this shard holds them, so they are its backlog.
      backlog: this.local.length,
      in_flight: this.inFlight,
      limit: this.limit,
      loop_lag_ms: round3(lagMs),
      conns_open: this.transport.tracker.open,
      cpu_ms: round3(cpuMs),
      loop_busy: round3(load.loopBusy),
      host_busy: round3(load.hostBusy),
      rss_mb: rssMb(),
    };
    if (load.cpuWait !== null) p.cpu_wait = round3(load.cpuWait);
    this.events.write('gauge', p);
    this.send({
      t: 'beat',
      inFlight: this.inFlight,
      limit: this.limit,
      loopLagMs: lagMs,
      connsOpen: this.transport.tracker.open,
      connsOpened: this.transport.tracker.opened,
      stale: this.keepAlive.stale,
      paused: this.pausedCount,
      loopBusy: load.loopBusy,
      cpuWait: load.cpuWait,
    });
  }

  // Batch IPC: at most one message of each kind per turn of the event loop.
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flushOutbox());
  }

  /** Feed the adaptive limit one finished attempt; apply and record a change. */
  private adapt(outcome: AttemptOutcome, startTs: number, endTs: number, queueMs: number | undefined): void {
    const ok = outcome.outcome === 'ok' ? outcome : undefined;
    const ttftMs = ok ? ok.firstTokenTs - startTs : undefined;
    const tokens = ok
      ? (ok.completion.usage?.completion_tokens ?? ok.completion.usage?.output_tokens ?? ok.contentChunks)
      : 0;
    const tpotMs = ok && tokens > 1 ? (ok.lastTokenTs - ok.firstTokenTs) / (tokens - 1) : undefined;
    const change = this.adaptive!.noteEnd(
      startTs,
      ttftMs,
      outcome.outcome === 'error' ? outcome.cause : undefined,
      endTs,
      tpotMs,
      queueMs,
    );
    if (!change) return;
    this.limit = change.new;
    this.events.write(
      'limit',
      { old: change.old, new: change.new, reason: change.reason, concurrency: change.new },
      endTs,
    );
    const delta = change.new - change.old;
    if (delta > 0) {
      // Owed pulls first absorb the rise; the rest asks the coordinator for more.
      const fromDebt = Math.min(this.pullDebt, delta);
      this.pullDebt -= fromDebt;
      this.outbox.pull += delta - fromDebt;
    } else this.pullDebt -= delta;
  }

  private noteQuota(headers: Record<string, string | string[] | undefined>, ts: number): void {
    for (const q of quotaFromHeaders(headers, ts)) this.quota.set(q.kind, q);
    if (this.quota.size > 0) this.scheduleFlush();
  }

  private flushOutbox(): void {
    this.flushScheduled = false;
    if (this.quota.size > 0) {
      this.send({ t: 'quota', items: [...this.quota.values()] });
      this.quota.clear();
    }
    const { pull, done, retry } = this.outbox;
    this.outbox = { pull: 0, done: [], retry: [] };
    // Each request_end reaches the kernel before the coordinator can write its result line, so a
    // kill -9 at any moment never leaves a result the event log does not count (docs/run.md); if
    // the events cannot be written, neither are the results: a resume runs those requests again.
    if (done.length && this.events.flush()) this.send({ t: 'done', items: done });
    if (retry.length) this.send({ t: 'retry', items: retry });
    if (pull && !this.stopping) this.send({ t: 'pull', n: pull, running: this.inFlight, local: this.local.length });
  }
}
