import type { DoneItem, FromShard, ShardConfig, ToShard, WorkItem } from '../../src/runner/ipc-messages.js';
import type { ShardLauncher, ShardLinkEvents } from '../../src/runner/shard/shard-link.js';

/**
 * A shard that speaks the IPC protocol without a process or a server, driven by the test: it holds
 * `concurrency` running items and `prefetch` local ones, as a ShardRuntime does, and finishes, retries
 * or crashes when told (or finishes every item on the next turn with `autoFinish`). Messages go
 * through microtasks, as the in-process shard's do, so neither side re-enters the other.
 */
export class FakeShard {
  config!: ShardConfig;
  /** Every item received, in order. */
  readonly received: WorkItem[] = [];
  readonly running: WorkItem[] = [];
  readonly local: WorkItem[] = [];
  /** The most items held at once (running + local) and the most running. */
  maxHeld = 0;
  maxRunning = 0;
  exited = false;
  /** Set by the launcher: the coordinator's side of the link. */
  readonly ev: ShardLinkEvents;
  private readonly autoFinish: boolean;

  constructor(
    events: ShardLinkEvents,
    autoFinish: boolean,
    /** Exit on init without saying ready (a process that cannot start). */
    private readonly failStart = false,
  ) {
    this.ev = events;
    this.autoFinish = autoFinish;
  }

  get held(): number {
    return this.running.length + this.local.length;
  }

  /** Messages from the coordinator. */
  handle(msg: ToShard): void {
    if (this.exited) return;
    switch (msg.t) {
      case 'init':
        this.config = msg.config;
        if (this.failStart) return this.end(1, null);
        this.emit({ t: 'ready', pid: 1000 + msg.config.shard });
        this.emit({ t: 'pull', n: msg.config.concurrency + msg.config.prefetch, running: 0, local: 0 });
        return;
      case 'work':
        for (const item of msg.items) {
          this.received.push(item);
          if (this.running.length < this.config.concurrency) this.running.push(item);
          else this.local.push(item);
        }
        this.maxHeld = Math.max(this.maxHeld, this.held);
        this.maxRunning = Math.max(this.maxRunning, this.running.length);
        if (this.autoFinish) queueMicrotask(() => this.finishAll());
        return;
      case 'steal': {
        const given = this.local.splice(Math.max(0, this.local.length - msg.n));
        this.emit({ t: 'release', ids: given.map((i) => i.id) });
        return;
      }
      case 'stop':
        this.end(0, null);
        return;
    }
  }

  /** Finish the running item `id` (the oldest when absent); a local item takes its slot; pull one more. */
  finish(id?: string, outcome: Partial<DoneItem> = {}): DoneItem {
    const item = this.take(id);
    const done: DoneItem = {
      id: item.id,
      resultLine: JSON.stringify({ custom_id: item.id, attempt: item.attempt }),
      outcome: 'succeeded',
      attempts: item.attempt,
      completionTokens: 10,
      promptTokens: 5,
      attemptMs: 1,
      ...outcome,
    };
    this.emit({ t: 'done', items: [done] });
    this.refill();
    return done;
  }

  /** The running item `id` failed and is due again at `dueTs` (event clock). */
  retry(id: string, dueTs: number): void {
    const item = this.take(id);
    this.emit({
      t: 'retry',
      items: [{ id, attempt: item.attempt + 1, delayMs: 0, dueTs, cause: 'http_5xx', attemptMs: 1 }],
    });
    this.refill();
  }

  finishAll(): void {
    while (!this.exited && this.running.length > 0) this.finish();
  }

  /** Tell the coordinator the endpoint is down (or back). */
  health(down: boolean, sinceTs: number): void {
    this.emit({ t: 'health', down, sinceTs });
  }

  /** Die as `kill -9` would: no goodbye, items unfinished. */
  crash(): void {
    this.end(null, 'SIGKILL');
  }

  /** Send a message as if from the shard (also after a crash: a late answer). */
  emit(msg: FromShard, evenIfExited = false): void {
    if (this.exited && !evenIfExited) return;
    queueMicrotask(() => this.ev.onMessage(msg));
  }

  private take(id: string | undefined): WorkItem {
    const at = id === undefined ? 0 : this.running.findIndex((i) => i.id === id);
    if (at < 0 || this.running.length === 0) throw new Error(`fake shard ${this.config.shard}: ${id} is not running`);
    return this.running.splice(at, 1)[0]!;
  }

  private refill(): void {
    const next = this.local.shift();
    if (next) this.running.push(next);
    this.emit({ t: 'pull', n: 1, running: this.running.length, local: this.local.length });
  }

  private end(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.exited) return;
    this.exited = true;
    queueMicrotask(() => this.ev.onExit(code, signal));
  }
}

/** A launcher of fake shards; `shards` lists every one started, replacements included. */
export function fakeShards(opts: { autoFinish?: boolean; isolated?: boolean; failStart?: boolean } = {}): {
  launch: ShardLauncher;
  shards: FakeShard[];
} {
  const shards: FakeShard[] = [];
  const launch: ShardLauncher = (events) => {
    const shard = new FakeShard(events, opts.autoFinish ?? false, opts.failStart ?? false);
    shards.push(shard);
    return {
      pid: 1000 + shards.length,
      get connected() {
        return !shard.exited;
      },
      // Isolated: the watchdog may kill it alone, as it does a child process.
      isolated: opts.isolated ?? false,
      send: (msg) => queueMicrotask(() => shard.handle(msg)),
      kill: () => shard.crash(),
    };
  };
  return { launch, shards };
}
