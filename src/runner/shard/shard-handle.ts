import type { FromShard, ShardConfig, ToShard, WorkItem } from '../ipc-messages.js';
import { forkShard, type ShardLauncher, type ShardLink } from './shard-link.js';

/** Work items per IPC message. */
const MAX_ITEMS_PER_MESSAGE = 256;

export interface ShardHandleEvents {
  onMessage(handle: ShardHandle, msg: FromShard): void;
  /** The process ended without being asked to (crash, kill -9, or killed as wedged). */
  onExit(handle: ShardHandle, code: number | null, signal: NodeJS.Signals | null): void;
}

/**
 * The coordinator's view of one shard: its pull credits, the requests assigned to it, and a
 * heartbeat for wedge detection. Shards are child processes by default (see `forkShard`) rather
 * than worker threads so each has its own heap and event loop, and a crash (or `kill -9`) takes
 * down one shard, not the run.
 */
export class ShardHandle {
  private link!: ShardLink;
  /** Free slots the shard has asked work for. */
  demand = 0;
  readonly assigned = new Map<string, WorkItem>();
  lastBeatMs: number;
  inFlight = 0;
  connsOpen = 0;
  connsOpened = 0;
  /** The shard's stale-connection re-sends and paused attempts, from its heartbeats. */
  stale = 0;
  paused = 0;
  expectedExit = false;
  /** Killed by the watchdog for missing heartbeats (reported as `wedged`, not `crashed`). */
  wedged = false;
  /** The process said `ready`: it loaded and took its config (until then an exit is a failed start). */
  started = false;
  /** The shard paused dispatch: its endpoint is down (since `downSinceTs`, event clock). */
  down = false;
  downSinceTs = 0;
  /** A steal request is out and not yet answered. */
  stealPending = false;
  /** Attempts running and prefetched items waiting, as of the last pull (plus dispatches since). */
  running = 0;
  local = 0;

  /** The shard's in-flight limit, from its heartbeats (its concurrency, or its adaptive limit). */
  limit: number;

  /** Slots that would start an item at once. */
  get freeSlots(): number {
    return Math.max(0, this.limit - this.running - this.local);
  }
  exited = false;
  private readonly exitPromise: Promise<void>;

  constructor(
    readonly config: ShardConfig,
    events: ShardHandleEvents,
    nowMs: number,
    launch: ShardLauncher = forkShard,
  ) {
    this.lastBeatMs = nowMs;
    this.limit = config.adaptive?.start ?? config.concurrency;
    this.exitPromise = new Promise((resolve) => {
      this.link = launch({
        onMessage: (msg) => events.onMessage(this, msg),
        onExit: (code, signal) => {
          this.exited = true;
          resolve();
          if (!this.expectedExit) events.onExit(this, code, signal);
        },
      });
    });
    this.send({ t: 'init', config });
  }

  get pid(): number {
    return this.link.pid;
  }

  /** In its own process: the watchdog can kill it alone when it stops beating. */
  get isolated(): boolean {
    return this.link.isolated;
  }

  get index(): number {
    return this.config.shard;
  }

  send(msg: ToShard): void {
    this.link.send(msg);
  }

  dispatch(items: WorkItem[]): void {
    for (const item of items) this.assigned.set(item.id, item);
    // Bounded messages: a run with a huge concurrency must not serialize its read-ahead as one.
    for (let i = 0; i < items.length; i += MAX_ITEMS_PER_MESSAGE)
      this.send({ t: 'work', items: items.slice(i, i + MAX_ITEMS_PER_MESSAGE) });
  }

  /** Ask the shard to stop and wait for it to exit (killing it after `timeoutMs`). */
  async stop(mode: 'drain' | 'abandon', timeoutMs: number): Promise<void> {
    this.expectedExit = true;
    if (this.exited) return;
    if (mode === 'abandon' && !this.link.connected) this.link.kill();
    this.send({ t: 'stop', mode });
    const timer = setTimeout(() => this.link.kill(), timeoutMs);
    await this.exitPromise;
    clearTimeout(timer);
  }

  kill(): void {
    this.link.kill();
  }
}
