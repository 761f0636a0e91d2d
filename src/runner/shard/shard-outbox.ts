import type { EventWriter } from '../../events/event-writer.js';
import type { QuotaObservation } from '../pacing/rate-budget.js';
import type { DoneItem, FromShard, RetryItem } from '../ipc-messages.js';

/** What a `pull` message says of the shard besides the credits it asks for; undefined while it stops. */
export type PullState = () => { running: number; local: number } | undefined;

/**
 * A shard's messages to its coordinator, batched: at most one of each kind a turn of the event loop
 * (pull credits, finished requests, retries, the newest rate-limit state), sent once the turn ends.
 */
export class ShardOutbox {
  private pulls = 0;
  private done: DoneItem[] = [];
  private retries: RetryItem[] = [];
  /** The newest rate-limit state seen, by budget kind, until the next flush. */
  private readonly quota = new Map<string, QuotaObservation>();
  private scheduled = false;

  constructor(
    private readonly send: (msg: FromShard) => void,
    private readonly events: EventWriter,
    private readonly pullState: PullState,
  ) {}

  pull(n = 1): void {
    this.pulls += n;
    this.schedule();
  }

  finished(done: DoneItem): void {
    this.done.push(done);
    this.schedule();
  }

  retry(retry: RetryItem): void {
    this.retries.push(retry);
    this.schedule();
  }

  quotaSeen(observations: readonly QuotaObservation[]): void {
    for (const q of observations) this.quota.set(q.kind, q);
    if (this.quota.size > 0) this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Send what is batched now. */
  flush(): void {
    this.scheduled = false;
    if (this.quota.size > 0) {
      this.send({ t: 'quota', items: [...this.quota.values()] });
      this.quota.clear();
    }
    const { pulls, done, retries } = this;
    this.pulls = 0;
    this.done = [];
    this.retries = [];
    // Each request_end reaches the kernel before the coordinator can write its result line, so a
    // kill -9 at any moment never leaves a result the event log does not count (docs/run.md); if
    // the events cannot be written, neither are the results: a resume runs those requests again.
    if (done.length && this.events.flush()) this.send({ t: 'done', items: done });
    if (retries.length) this.send({ t: 'retry', items: retries });
    const state = pulls ? this.pullState() : undefined;
    if (state) this.send({ t: 'pull', n: pulls, ...state });
  }
}
