import type { ResolvedRunOptions } from '../config/resolved-run-options.js';
import type { Clock } from '../util/clock.js';
import type { EventWriter } from '../events/event-writer.js';
import { createRng } from '../util/rng.js';
import { writeCoordinatorGauge } from './live/coordinator-gauge.js';
import { noteBeat } from './live/note-beat.js';
import { LoopLagSampler } from './live/loop-lag.js';
import { Deque } from '../util/deque.js';
import type { FromShard, ShardConfig, WorkItem } from './ipc-messages.js';

import type { ResultSink } from './output/result-sink.js';
import { LiveMetrics } from './live/live-metrics.js';
import { misconfiguredHalt, newRunTotals, type RunTotals } from './run-totals.js';
import { ShardHandle } from './shard/shard-handle.js';
import type { ShardLauncher } from './shard/shard-link.js';
import { RateBudget, tokenCharge, type Budget } from './pacing/rate-budget.js';
import type { WorkSource } from './work-source.js';
import { assignWork } from './assign-work.js';
import { RunEnd } from './run-end.js';
import { atTime, costsTokens, whenBudgetAllows } from './pacing/budget-gate.js';
import { bookDone, bookRetry, enqueuePayload, workItemOf, type Books } from './work-item.js';

/** The message of type `T` a shard sends. */
type ShardMessage<T extends FromShard['t']> = Extract<FromShard, { t: T }>;

/** What the progress line shows, once a second. */
export interface ProgressSnapshot {
  done: number;
  total: number | undefined;
  tpm: number;
  inFlight: number;
  limit: number;
  backlog: number;
  /** Retries waiting out their backoff: part of the backlog, but not ready to run. */
  inBackoff: number;
  retries: number;
  failed: number;
  ttftP95Ms: number | undefined;
  elapsedMs: number;
  /** Every running shard has paused dispatch because the endpoint is down, since then (epoch ms), for this long. */
  endpointDownSinceMs?: number;
  endpointDownS?: number;
}

export interface CoordinatorDeps {
  options: ResolvedRunOptions;
  source: WorkSource;
  sink: ResultSink;
  events: EventWriter;
  doneIds: Set<string>;
  /** Lines in the input (from the hashing pass): the progress total until the input is read. */
  inputLines?: number;
  shardConfig: (index: number, replaces?: number) => ShardConfig;
  /** Number of the first shard (a distributed worker's shards are numbered run-wide). @default 0 */
  firstShard?: number;
  /**
   * Most requests assigned to shards at once (running or prefetched), read at each dispatch: a
   * distributed worker's share of `--global-concurrency`. Call `kick()` when it rises. @default no cap
   */
  assignedCap?: () => number;
  /** Paces enqueues under --rpm/--tpm. @default a RateBudget of the options (a distributed worker's is shared) */
  budget?: Budget;
  /** How shards start. @default forkShard: a child process each */
  launchShard?: ShardLauncher;
  clock: Clock;
  onProgress?: (p: ProgressSnapshot) => void;
}

const MAX_SHARD_RESTARTS = 20;
/**
 * Shard processes in a row that exit before saying `ready`: they cannot start at all (a bad
 * NODE_OPTIONS, a broken install), so replacing them again would only loop.
 */
const MAX_FAILED_STARTS = 3;

/**
 * Owns input reading, the backlog, dispatch and results. Dispatch is pull-based and
 * work-conserving: a shard asks for work for each free slot, and the coordinator hands the next
 * backlog item to the shard with the most free slots, so no shard idles while work waits.
 * Retries come back here and wait out their backoff off the shards, then re-enter the backlog first.
 */
export class Coordinator {
  readonly totals: RunTotals = newRunTotals();
  private readonly o: ResolvedRunOptions;
  private readonly backlog = new Deque<WorkItem>(1024);
  private readonly shards: ShardHandle[] = [];
  /** Aggregate live figures: served on /metrics and shown by the progress line. */
  readonly live: LiveMetrics;
  private readonly readAhead: number;
  private loopLag!: LoopLagSampler;
  private delayed = 0;
  private inputDone = false;
  private readonly end = new RunEnd();
  private readonly timers: NodeJS.Timeout[] = [];
  private startedMs = 0;
  /** Shard processes in a row that exited before `ready` (reset by any shard that starts). */
  private failedStarts = 0;
  /** --rpm/--tpm: a request is enqueued only once the budget has room for it. */
  private readonly budget: Budget;
  /** Requests are costed in tokens: the run or one of its servers has a token budget (read per request). */
  private readonly chargesTokens: boolean;
  private readonly books: Books;
  /** The in-flight limit while shards ran: the progress line after they stop still says it. */
  private lastLimit = 0;

  constructor(private readonly deps: CoordinatorDeps) {
    this.o = deps.options;
    this.readAhead = this.o.readAheadItems;
    this.live = new LiveMetrics(
      {
        backlog: () => this.waiting(),
        inBackoff: () => this.delayed,
        inFlight: () => this.inFlight(),
        limit: () => this.limit(),
      },
      deps.clock,
      () => this.startedMs,
    );
    this.budget = deps.budget ?? new RateBudget({ rpm: this.o.rpm, tpm: this.o.tpm }, deps.clock());
    this.chargesTokens = costsTokens(this.budget, this.o.upstreams);
    this.books = { budget: this.budget, sink: deps.sink, live: this.live, totals: this.totals, now: deps.clock };
  }

  /** Run to the end (or interruption); resolves with how it ended. */
  async run(): Promise<{ status: 'finished' | 'interrupted' | 'failed'; error?: Error }> {
    this.startedMs = this.deps.clock();
    this.loopLag = new LoopLagSampler(this.deps.clock);
    for (let i = 0; i < this.o.shards; i++) this.shards.push(this.spawn((this.deps.firstShard ?? 0) + i));
    this.timers.push(setInterval(() => this.gauge(), this.o.gaugeIntervalMs));
    this.timers.push(setInterval(() => this.watchdog(), 500));
    if (this.deps.onProgress) this.timers.push(setInterval(() => this.deps.onProgress!(this.snapshot()), 1000));
    void this.readLoop().catch((err: unknown) => this.fail(err as Error));
    const status = await this.end.ended;
    this.lastLimit = this.limit() || this.lastLimit;
    for (const t of this.timers) clearInterval(t);
    this.loopLag.stop();
    await Promise.all(
      this.shards.map((s) => s.stop(status === 'finished' ? 'drain' : this.o.onInterrupt, this.o.drainTimeoutS * 1000)),
    );
    this.deps.sink.flush();
    this.deps.onProgress?.(this.snapshot());
    const failure = this.end.failure;
    return failure ? { status, error: failure } : { status };
  }

  /** Stop the run as failed with `err` (an output file cannot be written, say): `run()` resolves with it. */
  stopFor(err: Error): void {
    this.fail(err);
  }

  /** Stop taking work. `drain` lets in-flight attempts finish (bounded by drainTimeoutS). */
  interrupt(mode: 'drain' | 'abandon' = this.o.onInterrupt): void {
    if (mode === 'abandon') for (const s of this.shards) void s.stop('abandon', 1000);
    this.end.interrupt(mode, () => this.shards.every((s) => s.assigned.size === 0), this.o.drainTimeoutS * 1000);
  }

  snapshot(): ProgressSnapshot {
    const now = this.deps.clock();
    const limit = this.limit();
    if (limit > 0) this.lastLimit = limit;
    let downSince: number | undefined;
    for (const s of this.shards) {
      if (s.exited) continue;
      if (!s.down) {
        downSince = undefined;
        break;
      }
      downSince = Math.min(downSince ?? Infinity, s.downSinceTs);
    }
    return {
      ...(downSince !== undefined ? { endpointDownSinceMs: downSince, endpointDownS: (now - downSince) / 1000 } : {}),
      done: this.totals.succeeded + this.totals.failed,
      // Exact once the input is read; before that, its line count less what a resume skips.
      total: this.inputDone
        ? this.totals.requests - this.totals.skipped
        : this.deps.inputLines !== undefined
          ? Math.max(0, this.deps.inputLines - this.deps.doneIds.size)
          : undefined,
      tpm: this.live.stats.tokensPerMinute(now, this.startedMs),
      inFlight: this.inFlight(),
      limit: limit || this.lastLimit,
      backlog: this.waiting(),
      inBackoff: this.delayed,
      retries: this.totals.retries,
      failed: this.totals.failed,
      ttftP95Ms: this.live.stats.ttftP95(),
      elapsedMs: now - this.startedMs,
    };
  }

  /**
   * Attempts running on the shards, from their latest heartbeats (at most a gauge interval old),
   * bounded by what is still assigned to them and not prefetched: a beat sent just before its
   * attempts failed into backoff must not count them in flight. (Assigned alone also counts
   * prefetched work that has not started, so it can exceed the limit.)
   */
  private inFlight(): number {
    let n = 0;
    for (const s of this.shards) if (!s.exited) n += Math.min(s.inFlight, Math.max(0, s.assigned.size - s.local));
    return n;
  }

  /** In-flight limit across shards: each shard's concurrency, or its adaptive limit from its latest heartbeat. */
  private limit(): number {
    let n = 0;
    for (const s of this.shards) if (!s.exited) n += s.limit;
    return n;
  }

  /** Requests waiting anywhere: the backlog, retries in backoff, and items prefetched by shards but not started. */
  private waiting(): number {
    let n = this.backlog.length + this.delayed;
    for (const s of this.shards) if (!s.exited) n += s.local;
    return n;
  }

  private spawn(index: number, replaces?: number): ShardHandle {
    return new ShardHandle(
      this.deps.shardConfig(index, replaces),
      { onMessage: (h, m) => this.onMessage(h, m), onExit: (h, code, signal) => this.onShardExit(h, code, signal) },
      this.deps.clock(),
      this.deps.launchShard,
    );
  }

  private async readLoop(): Promise<void> {
    const { source, sink, doneIds, events, clock } = this.deps;
    const rng = this.o.seed !== undefined ? createRng(this.o.seed) : Math.random;
    let arrivalAt = clock();
    while (!this.stopping) {
      if (this.o.rate === undefined && this.backlog.length >= this.readAhead) {
        await this.end.waitForRoom();
        continue;
      }
      const next = await source.next();
      if (next === null) break;
      if ('reason' in next) {
        this.totals.rejected++;
        sink.writeReject(next);
        continue;
      }
      this.totals.requests++;
      if (doneIds.has(next.id)) {
        this.totals.skipped++;
        continue;
      }
      if (this.o.rate !== undefined) {
        // Open loop: Poisson arrivals, exponential gaps with mean 1/rate.
        arrivalAt += (-Math.log(1 - rng()) / this.o.rate) * 1000;
        const wait = arrivalAt - clock();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        if (this.stopping) break;
      }
      const item = workItemOf(next);
      // A token budget (the run's, or a server's own) costs each request before it goes.
      if (this.chargesTokens) item.charge = await tokenCharge(item.body, item.endpoint);
      if (this.budget.active) {
        // Waiting for the budget happens before the enqueue event: it is pacing, not queueing.
        await new Promise<void>((go) => this.whenBudgetAllows(item, go));
        if (this.stopping) break;
      }
      // Open loop: the request arrived when the schedule said, even if this loop woke up late; the
      // lateness is then client-side waiting, visible in queue_wait, not a shift of the arrivals.
      const enqueue = enqueuePayload(item);
      if (this.o.rate !== undefined) events.write('enqueue', enqueue, arrivalAt);
      else events.write('enqueue', enqueue);
      this.backlog.push(item);
      this.dispatch();
    }
    this.inputDone = true;
    this.maybeFinish();
  }

  /** Requests this coordinator could run now: assigned to shards (running or prefetched) plus the backlog. */
  demand(): number {
    let n = this.backlog.length;
    for (const s of this.shards) if (!s.exited) n += s.assigned.size;
    return n;
  }

  /** Dispatch again: a cap on assigned work (`assignedCap`) has risen. */
  kick(): void {
    this.dispatch();
  }

  private dispatch(): void {
    if (this.stopping) return;
    if (this.backlog.length > 0) {
      const batches = assignWork(this.backlog, this.shards, this.deps.assignedCap?.() ?? Infinity);
      for (const [shard, items] of batches) shard.dispatch(items);
      if (this.backlog.length < this.readAhead) this.end.roomFreed();
    }
    if (this.backlog.length === 0) this.stealForIdleSlots();
  }

  /**
   * Work conservation at the tail of the input: when nothing is left to hand out but a shard has a
   * free slot, ask shards holding prefetched, unstarted work to give it back; it then goes to the
   * free slot (dispatch prefers free slots), not back into a prefetch queue.
   */
  private stealForIdleSlots(): void {
    if (this.stopping) return;
    let idle = 0;
    for (const s of this.shards) if (!s.exited && !s.down) idle += Math.min(s.demand, s.freeSlots);
    if (idle === 0) return;
    for (const s of this.shards) {
      if (s.exited || s.stealPending || s.local === 0) continue;
      s.stealPending = true;
      s.send({ t: 'steal', n: Math.min(idle, s.local) });
    }
  }

  /** One handler per message; every message counts as a sign of life. */
  private onMessage(shard: ShardHandle, msg: FromShard): void {
    shard.lastBeatMs = this.deps.clock();
    switch (msg.t) {
      case 'pull':
        return this.onPull(shard, msg);
      case 'done':
        return this.onDone(shard, msg);
      case 'retry':
        return this.onRetry(shard, msg);
      case 'beat':
        return noteBeat(this.live, shard, shard.index, msg);
      case 'release':
        return this.onRelease(shard, msg);
      case 'health':
        return this.onHealth(shard, msg);
      case 'fatal':
        return this.stopFor(new Error(msg.message));
      case 'quota':
        for (const quota of msg.items) this.budget.observe(quota);
        return;
      case 'ready':
        shard.started = true;
        this.failedStarts = 0;
        return;
      case 'stopped':
        return;
    }
  }

  private onPull(shard: ShardHandle, msg: ShardMessage<'pull'>): void {
    shard.demand += msg.n;
    shard.running = msg.running;
    shard.local = msg.local;
    this.dispatch();
  }

  private onDone(shard: ShardHandle, msg: ShardMessage<'done'>): void {
    for (const done of msg.items) {
      // Only the shard a request is assigned to may finish it: a late answer from a shard that
      // was declared dead must not produce a second result.
      const item = shard.assigned.get(done.id);
      if (!item) continue;
      shard.assigned.delete(done.id);
      bookDone(this.books, item, done);
    }
    if (!this.stopping) {
      const halt = misconfiguredHalt(this.totals, this.o.failFast);
      if (halt) return this.fail(new Error(halt));
    }
    this.maybeFinish();
  }

  private onRetry(shard: ShardHandle, msg: ShardMessage<'retry'>): void {
    for (const retry of msg.items) {
      const item = shard.assigned.get(retry.id);
      if (!item) continue;
      shard.assigned.delete(retry.id);
      if (this.stopping) continue; // unfinished: a resume runs it again
      bookRetry(this.books, item, retry);
      this.delayed++;
      this.requeueAt(item, retry.dueTs);
    }
    this.maybeFinish();
  }

  /**
   * Put a retry back at the front of the backlog at its due time, once the budget allows. Waits until
   * the due time on the event clock, not for a delay from now: Node's timers count from the loop's
   * cached time and can fire a millisecond or more early.
   */
  private requeueAt(item: WorkItem, dueTs: number): void {
    atTime(dueTs, this.deps.clock, () =>
      this.whenBudgetAllows(item, () => {
        this.delayed--;
        if (this.stopping) return this.maybeFinish();
        this.deps.events.write('enqueue', { id: item.id, line: item.lineNo, attempt: item.attempt });
        this.backlog.unshift(item);
        this.dispatch();
      }),
    );
  }

  private onRelease(shard: ShardHandle, msg: ShardMessage<'release'>): void {
    shard.stealPending = false;
    shard.local = Math.max(0, shard.local - msg.ids.length);
    msg.ids.forEach((id, i) => {
      const item = shard.assigned.get(id);
      shard.assigned.delete(id);
      if (item && msg.attempts) {
        item.attempt = msg.attempts[i]!;
        item.free = msg.free?.[i] ?? 0;
      }
      // Stopping: unfinished, so a resume runs it. Otherwise it was stolen for an idle shard:
      // back to the front of the backlog (it never left it, as far as events tell: no new enqueue).
      if (item && !this.stopping) {
        this.backlog.unshift(item);
        shard.demand++;
      }
    });
    this.dispatch();
    this.maybeFinish();
  }

  private onHealth(shard: ShardHandle, msg: ShardMessage<'health'>): void {
    shard.down = msg.down;
    shard.downSinceTs = msg.sinceTs;
    this.live.recordEndpointDown(shard.index, msg.down);
    this.dispatch();
  }

  private onShardExit(shard: ShardHandle, code: number | null, signal: NodeJS.Signals | null): void {
    const idx = this.shards.indexOf(shard);
    const requeued = [...shard.assigned.values()];
    shard.assigned.clear();
    for (const item of requeued.reverse()) {
      item.attempt++;
      this.deps.events.write('enqueue', { id: item.id, line: item.lineNo, attempt: item.attempt });
      this.backlog.unshift(item);
    }
    const reason = shard.wedged ? 'wedged' : shard.started ? 'crashed' : 'failed_start';
    const how = signal ?? `exit ${code}`;
    this.deps.events.write('shard_exit', { pid: shard.pid, code, signal, reason, requeued: requeued.length });
    this.totals.shardRestarts++;
    if (reason === 'failed_start' && ++this.failedStarts >= MAX_FAILED_STARTS) {
      return this.fail(
        new Error(
          `shard processes exit before they start (${this.failedStarts} in a row, last: ${how}); ` +
            'check NODE_OPTIONS and SHARDLINE_SHARD_NODE_OPTIONS, and that shardline is built ' +
            '(dist/runner/shard/shard-main.js)',
        ),
      );
    }
    const what = reason === 'failed_start' ? 'exited before it started' : reason;
    process.stderr.write(
      `shardline: shard ${shard.index} (pid ${shard.pid}) ${what} (${how}); ${requeued.length} in-flight request(s) ` +
        `re-queued, starting a replacement\n`,
    );
    if (this.totals.shardRestarts > MAX_SHARD_RESTARTS) {
      return this.fail(
        new Error(`shards crashed ${this.totals.shardRestarts} times; giving up (last: ${reason}, ${how})`),
      );
    }
    if (idx >= 0 && !this.stopping) this.shards[idx] = this.spawn(shard.index, shard.pid);
    this.dispatch();
    this.maybeFinish();
  }

  private watchdog(): void {
    const now = this.deps.clock();
    for (const s of this.shards) {
      if (s.isolated && !s.exited && !s.expectedExit && now - s.lastBeatMs > this.o.wedgeTimeoutS * 1000) {
        s.wedged = true;
        s.kill();
      }
    }
  }

  private gauge(): void {
    let conns = 0;
    for (const s of this.shards) conns += s.connsOpen;
    writeCoordinatorGauge(this.deps.events, this.live, this.loopLag, {
      backlog: this.backlog.length + this.delayed,
      backoff: this.delayed,
      inFlight: this.inFlight(),
      limit: this.limit(),
      connsOpen: conns,
    });
  }

  /** Call `go` once the run's budget has room for the item (at once without budgets, or when stopping). */
  private whenBudgetAllows(item: WorkItem, go: () => void): void {
    whenBudgetAllows(this.budget, item, this.deps.clock, () => this.stopping, go);
  }

  private fail(err: Error): void {
    this.end.fail(err);
  }

  private get stopping(): boolean {
    return this.end.stopping;
  }

  private maybeFinish(): void {
    if (!this.inputDone || this.backlog.length > 0 || this.delayed > 0) return;
    if (this.shards.some((s) => s.assigned.size > 0)) return;
    this.end.finish('finished');
  }
}
