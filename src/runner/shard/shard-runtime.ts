import { hostname } from 'node:os';
import { runChatAttempt, type AttemptOutcome, type PhaseTimeouts } from '../../client/chat-attempt.js';
import type { ConnAttribution } from '../../client/conn-tracker.js';
import { KeepAliveLearner } from '../../client/keepalive-learner.js';
import { serverQueueMs } from '../../client/server-timings.js';
import { createRedactor, headerSecrets } from '../../client/redact.js';
import { decideRetry, type RetryPolicyOptions } from '../../client/retry-policy.js';
import type { Clock } from '../../util/clock.js';
import { EventWriter } from '../../events/event-writer.js';
import type { EventPayloads } from '../../events/event-types.js';
import { round3 } from '../../metrics/percentiles.js';
import type { DoneItem, FromShard, ShardConfig, WorkItem } from '../ipc-messages.js';
import { errorResultLine, successResultLine } from '../output/result-line.js';
import type { Postprocessor } from '../output/postprocessor.js';
import { quotaFromHeaders } from '../pacing/rate-budget.js';
import { ownBudget, type OwnBudget } from './own-budget.js';
import { chargeCorrection, chargedTokens } from '../pacing/budget-gate.js';
import { attemptEndPayload, countTokens, type TokenCounts } from './attempt-record.js';
import { ProbeGate } from './probe-gate.js';
import { ShardTransport } from './shard-transport.js';
import { answeredEnd, failedEnd, retryOf, retryPolicy } from './request-end.js';
import { ShardGauge, shardEnd } from './shard-gauge.js';
import { ShardLimit } from './shard-limit.js';
import { ShardOutbox } from './shard-outbox.js';

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
  private readonly gaugeTimer: NodeJS.Timeout;
  private readonly gauges: ShardGauge;
  private stopping: 'drain' | 'abandon' | undefined;
  private stopped: Promise<void> | undefined;
  /**
   * Prefetched work: up to `prefetch` items beyond the free slots, so a slot that frees starts its
   * next request at once instead of after an IPC round trip to the coordinator.
   */
  private readonly local: WorkItem[] = [];
  private readonly outbox: ShardOutbox;
  /** In-flight limit now (fixed, or `--concurrency auto`) and the pulls it owes after coming down. */
  private readonly slots: ShardLimit;
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
    this.retry = retryPolicy(config);
    this.gauges = new ShardGauge(this.clock);
    this.outbox = new ShardOutbox(send, this.events, () =>
      this.stopping ? undefined : { running: this.inFlight, local: this.local.length },
    );
    this.slots = new ShardLimit(config.concurrency, config.adaptive, this.clock());
    this.redact = createRedactor(headerSecrets(config.headers));
    this.gaugeTimer = setInterval(() => this.gauge(), config.gaugeIntervalMs);
  }

  start(): void {
    this.events.write('shard_start', {
      pid: process.pid,
      host: hostname(),
      concurrency: this.slots.limit,
      upstream: this.config.upstream.url,
      upstream_index: this.config.upstream.index,
      upstreams: this.config.upstream.of,
      ...(this.config.replaces !== undefined ? { replaces: this.config.replaces } : {}),
    });
    if (!this.config.keepAlive) this.events.write('keepalive_disabled', {});
    this.send({ t: 'ready', pid: process.pid });
    this.outbox.pull(this.slots.limit + this.config.prefetch);
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
      this.inFlight < this.slots.limit &&
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
    this.outbox.flush();
    clearInterval(this.gaugeTimer);
    this.gauges.close();
    this.events.write('shard_end', shardEnd(this.requests, this.cpuSince, this.transport.socketReads));
    this.events.close();
    await this.transport.close(this.stopping === 'drain');
    await this.postprocessor?.close();
    this.send({ t: 'stopped' });
  }

  private async execute(item: WorkItem): Promise<void> {
    const { id, attempt } = item;
    this.inFlight++;
    this.slots.noteStart(this.inFlight);
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
    const moved = this.slots.noteEnd(outcome, startTs, endTs, queueMs);
    if (moved) {
      const { change, pulls } = moved;
      const { old, reason } = change;
      this.events.write('limit', { old, new: change.new, reason, concurrency: change.new }, endTs);
      if (pulls > 0) this.outbox.pull(pulls);
    }
    if (!this.stopping) {
      this.startMore();
      if (this.slots.slotFreed()) this.outbox.pull();
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
          if (this.config.reportQuota) this.outbox.quotaSeen(quotaFromHeaders(headers, ts));
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
    this.outbox.finished(done);
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
      this.outbox.retry(retry);
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
      this.outbox.finished(done);
    }
  }

  private gauge(): void {
    const { gauge, beat } = this.gauges.take({
      backlog: this.local.length,
      inFlight: this.inFlight,
      limit: this.slots.limit,
      connsOpen: this.transport.tracker.open,
      connsOpened: this.transport.tracker.opened,
      stale: this.keepAlive.stale,
      paused: this.pausedCount,
    });
    this.events.write('gauge', gauge);
    this.send(beat);
  }
}
