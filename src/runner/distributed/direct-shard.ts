import type { ResolvedRunOptions } from '../../config/resolved-run-options.js';
import type { EventWriter } from '../../events/event-writer.js';
import type { Clock } from '../../util/clock.js';
import { Deque } from '../../util/deque.js';
import type { DoneItem, FromShard, RetryItem, ShardConfig, WorkItem } from '../ipc-messages.js';
import { writeCoordinatorGauge } from '../live/coordinator-gauge.js';
import { LiveMetrics } from '../live/live-metrics.js';
import { LoopLagSampler } from '../live/loop-lag.js';
import { noteBeat, type BeatSeen } from '../live/note-beat.js';
import { atTime, costsTokens, whenBudgetAllows } from '../pacing/budget-gate.js';
import { RateBudget, tokenCharge, type Budget } from '../pacing/rate-budget.js';
import { newRunTotals, type RunTotals } from '../run-totals.js';
import { shardInbox, type ShardInbox } from '../shard/shard-inbox.js';
import { RunEnd, type RunStatus } from '../run-end.js';
import { bookDone, bookRetry, enqueuePayload, workItemOf, type Books } from '../work-item.js';
import type { RedisWorkSource } from './redis-work-source.js';

export interface DirectShardDeps {
  /** The run's options as this worker resolved them (one shard). */
  options: ResolvedRunOptions;
  config: ShardConfig;
  source: RedisWorkSource;
  /** The worker's own event file: `enqueue` and its gauges. */
  events: EventWriter;
  clock: Clock;
  /** --rpm/--tpm, shared by every worker. @default none */
  budget?: Budget;
  /** Most requests handed to the shard at once: this worker's share of --global-concurrency. @default no cap */
  assignedCap?: () => number;
}

/**
 * A one-shard worker without a coordinator between its chunks and its shard (issue #25): the shard
 * runtime runs in this process and takes requests straight from the chunks the worker holds, and its
 * results go straight to the run's Redis stream. A local run needs its coordinator — it reads the
 * input and shares it among shards — but a one-shard worker's only other party is Redis, and the
 * coordinator's per-request hops (a promise per read, a message per hand-off, a dispatch over one
 * shard) cost more than all of Redis: with them a worker per core spent 17% more client CPU per
 * request than a local shard per core and ran at 84% of its rate (`bench/distributed.mjs --set
 * per-core`, BENCHMARKS.md). What a coordinator owns besides stays, the same way: `enqueue` events and
 * gauges in the worker's file, retries waiting out their backoff here, the run's shared budget, this
 * worker's share of --global-concurrency, live metrics and the worker's totals.
 */
export class DirectShard {
  readonly totals: RunTotals = newRunTotals();
  readonly live: LiveMetrics;
  private readonly o: ResolvedRunOptions;
  /** Taken in and not yet handed to the shard (retries due and items given back go first). */
  private readonly queued = new Deque<WorkItem>(1024);
  /** Handed to the shard, running or waiting there, by id. */
  private readonly assigned = new Map<string, WorkItem>();
  /** Items for the next hand-off: one a turn, however many pulls came in it. */
  private handoff: WorkItem[] = [];
  private readonly seen: BeatSeen;
  private readonly budget: Budget;
  private readonly chargesTokens: boolean;
  private readonly books: Books;
  private inbox: ShardInbox | undefined;
  private loopLag!: LoopLagSampler;
  /** Free slots and prefetch places the shard has asked work for. */
  private credit = 0;
  /** Items waiting in the shard's own prefetch, as of its last pull. */
  private local = 0;
  /** Retries waiting out their backoff here. */
  private delayed = 0;
  private inputDone = false;
  private readonly end = new RunEnd();
  private onShardStopped: (() => void) | undefined;
  private startedMs = 0;

  constructor(private readonly deps: DirectShardDeps) {
    this.o = deps.options;
    const { config } = deps;
    this.seen = {
      inFlight: 0,
      limit: config.adaptive?.start ?? config.concurrency,
      connsOpen: 0,
      connsOpened: 0,
      stale: 0,
      paused: 0,
    };
    this.live = new LiveMetrics(
      {
        backlog: () => this.waiting(),
        inBackoff: () => this.delayed,
        inFlight: () => this.inFlight(),
        limit: () => this.seen.limit,
      },
      deps.clock,
      () => this.startedMs,
    );
    this.budget = deps.budget ?? new RateBudget({ rpm: this.o.rpm, tpm: this.o.tpm }, deps.clock());
    this.chargesTokens = costsTokens(this.budget, this.o.upstreams);
    this.books = { budget: this.budget, sink: deps.source, live: this.live, totals: this.totals, now: deps.clock };
  }

  /** Serve the run until it is over for this worker (or interrupted); resolves with how it ended. */
  async run(): Promise<{ status: RunStatus; error?: Error }> {
    const { clock, config } = this.deps;
    this.startedMs = clock();
    this.loopLag = new LoopLagSampler(clock);
    // CPU counted from here: a worker process serves run after run.
    const cpuSince = process.cpuUsage();
    const inbox = shardInbox(
      (msg) => this.onMessage(msg),
      () => this.onShardStopped?.(),
      () => cpuSince,
    );
    this.inbox = inbox;
    inbox.handle({ t: 'init', config });
    const gauge = setInterval(() => this.gauge(), this.o.gaugeIntervalMs);
    void this.intake().catch((err: unknown) => this.fail(err as Error));
    const status = await this.end.ended;
    clearInterval(gauge);
    this.loopLag.stop();
    await this.stopShard(status === 'finished' ? 'drain' : this.o.onInterrupt, this.o.drainTimeoutS * 1000);
    this.deps.source.flush();
    const failure = this.end.failure;
    return failure ? { status, error: failure } : { status };
  }

  /** Stop taking work. `drain` lets in-flight attempts finish (bounded by drainTimeoutS). */
  interrupt(mode: 'drain' | 'abandon' = this.o.onInterrupt): void {
    if (mode === 'abandon') this.inbox?.handle({ t: 'stop', mode: 'abandon' });
    this.end.interrupt(mode, () => this.assigned.size === 0, this.o.drainTimeoutS * 1000);
  }

  /** Requests this worker could run now: taken in (waiting here or on the shard). */
  demand(): number {
    return this.queued.length + this.assigned.size;
  }

  /** Hand out again: this worker's share of --global-concurrency has risen. */
  kick(): void {
    this.feed();
  }

  /** Take requests from the chunks held, as the shard's prefetch has room, writing each one's `enqueue`. */
  private async intake(): Promise<void> {
    const { source, events, clock } = this.deps;
    while (!this.stopping) {
      if (this.queued.length >= this.o.readAheadItems) {
        await this.end.waitForRoom();
        continue;
      }
      // What the chunks already hold is taken without a promise per request (the hot path).
      const next = source.take() ?? (await source.next());
      if (next === null) break;
      // The run's coordinator rejects malformed lines before they are chunked.
      if ('reason' in next) continue;
      this.totals.requests++;
      const item = workItemOf(next);
      if (this.chargesTokens) item.charge = await tokenCharge(item.body, item.endpoint);
      if (this.budget.active) {
        // Waiting for the budget happens before the enqueue event: it is pacing, not queueing.
        await new Promise<void>((go) => whenBudgetAllows(this.budget, item, clock, () => this.stopping, go));
        if (this.stopping) break;
      }
      events.write('enqueue', enqueuePayload(item));
      this.queued.push(item);
      this.feed();
    }
    this.inputDone = true;
    this.maybeFinish();
  }

  /** Move queued items to the shard while it has asked for them (within the cap); sent once this turn ends. */
  private feed(): void {
    if (this.stopping) return;
    const cap = this.deps.assignedCap?.() ?? Infinity;
    const before = this.handoff.length;
    while (this.credit > 0 && this.queued.length > 0 && this.assigned.size < cap) {
      const item = this.queued.shift()!;
      this.assigned.set(item.id, item);
      this.credit--;
      this.handoff.push(item);
    }
    // Never re-entering the shard from its own callbacks: the hand-off waits for this turn to end.
    if (before === 0 && this.handoff.length > 0) queueMicrotask(() => this.handOff());
    if (this.queued.length < this.o.readAheadItems) this.end.roomFreed();
  }

  private handOff(): void {
    const items = this.handoff;
    this.handoff = [];
    if (items.length > 0) this.inbox?.handle({ t: 'work', items });
  }

  private onMessage(msg: FromShard): void {
    switch (msg.t) {
      case 'pull':
        this.credit += msg.n;
        this.local = msg.local;
        return this.feed();
      case 'done':
        return this.onDone(msg.items);
      case 'retry':
        return this.onRetry(msg.items);
      case 'beat':
        return noteBeat(this.live, this.seen, this.deps.config.shard, msg);
      case 'release':
        return this.onRelease(msg.ids, msg.attempts, msg.free);
      case 'health':
        return this.live.recordEndpointDown(this.deps.config.shard, msg.down);
      case 'fatal':
        return this.fail(new Error(msg.message));
      case 'quota':
        for (const quota of msg.items) this.budget.observe(quota);
        return;
      case 'ready':
      case 'stopped':
        return;
    }
  }

  private onDone(items: DoneItem[]): void {
    for (const done of items) {
      const item = this.assigned.get(done.id);
      if (!item) continue;
      this.assigned.delete(done.id);
      bookDone(this.books, item, done);
    }
    this.maybeFinish();
  }

  private onRetry(items: RetryItem[]): void {
    for (const retry of items) {
      const item = this.assigned.get(retry.id);
      if (!item) continue;
      this.assigned.delete(retry.id);
      if (this.stopping) continue; // unfinished: its chunk goes to another worker, or a resume runs it
      bookRetry(this.books, item, retry);
      this.delayed++;
      atTime(retry.dueTs, this.deps.clock, () =>
        whenBudgetAllows(
          this.budget,
          item,
          this.deps.clock,
          () => this.stopping,
          () => this.requeue(item),
        ),
      );
    }
    this.maybeFinish();
  }

  /** A retry whose backoff is over: first in line, as a new `enqueue` of its attempt. */
  private requeue(item: WorkItem): void {
    this.delayed--;
    if (this.stopping) return this.maybeFinish();
    this.deps.events.write('enqueue', { id: item.id, line: item.lineNo, attempt: item.attempt });
    this.queued.unshift(item);
    this.feed();
  }

  /** Items the shard gave back unstarted (it is stopping): unfinished unless still wanted. */
  private onRelease(ids: string[], attempts: number[] | undefined, free: number[] | undefined): void {
    ids.forEach((id, i) => {
      const item = this.assigned.get(id);
      this.assigned.delete(id);
      if (!item) return;
      if (attempts) {
        item.attempt = attempts[i]!;
        item.free = free?.[i] ?? 0;
      }
      if (this.stopping) return;
      this.queued.unshift(item);
      this.credit++;
    });
    this.feed();
    this.maybeFinish();
  }

  private stopShard(mode: 'drain' | 'abandon', timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      // Past its drain timeout: drop what is in flight (the chunks' locks hand it to another worker).
      const timer = setTimeout(() => this.inbox?.handle({ t: 'stop', mode: 'abandon' }), timeoutMs);
      this.onShardStopped = () => {
        clearTimeout(timer);
        resolve();
      };
      this.inbox?.handle({ t: 'stop', mode });
    });
  }

  /** Attempts running, from the shard's latest heartbeat, bounded by what it holds and has not prefetched. */
  private inFlight(): number {
    return Math.min(this.seen.inFlight, Math.max(0, this.assigned.size - this.local));
  }

  private waiting(): number {
    return this.queued.length + this.delayed + this.local;
  }

  private gauge(): void {
    writeCoordinatorGauge(this.deps.events, this.live, this.loopLag, {
      backlog: this.queued.length + this.delayed,
      backoff: this.delayed,
      inFlight: this.inFlight(),
      limit: this.seen.limit,
      connsOpen: this.seen.connsOpen,
    });
  }

  private fail(err: Error): void {
    this.end.fail(err);
  }

  private get stopping(): boolean {
    return this.end.stopping;
  }

  private maybeFinish(): void {
    if (!this.inputDone || this.queued.length > 0 || this.delayed > 0 || this.assigned.size > 0) return;
    this.end.finish('finished');
  }
}
