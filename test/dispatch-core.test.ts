import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRunOptions } from '../src/config/resolved-run-options.js';
import { EventWriter } from '../src/events/event-writer.js';
import type { RejectedLine, RequestSpec } from '../src/input/request-line.js';
import { assignWork, type ShardSlots } from '../src/runner/assign-work.js';
import { Coordinator } from '../src/runner/coordinator.js';
import type { DoneItem, WorkItem } from '../src/runner/ipc-messages.js';
import type { ResultSink } from '../src/runner/output/result-sink.js';
import { shardConfig } from '../src/runner/shard/shard-config.js';
import type { WorkSource } from '../src/runner/work-source.js';
import { Deque } from '../src/util/deque.js';
import { fakeShards, type FakeShard } from './helpers/fake-shard.js';
import { loadEvents, ofType, tempDir } from './helpers/run-dir.js';

// The coordinator's dispatch through its own seams: fake shards (no process, no server), an array
// work source, a recording sink and a clock the test moves. Nothing here forks or listens.

class ArraySource implements WorkSource {
  private i = 0;
  constructor(private readonly lines: (RequestSpec | RejectedLine)[]) {}
  next(): Promise<RequestSpec | RejectedLine | null> {
    return Promise.resolve(this.lines[this.i++] ?? null);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

class RecordingSink implements ResultSink {
  readonly results: { id: string; line: string; done: DoneItem | undefined }[] = [];
  readonly rejects: RejectedLine[] = [];
  doneIds(): Promise<Set<string>> {
    return Promise.resolve(new Set());
  }
  writeResult(id: string, line: string, done?: DoneItem): void {
    this.results.push({ id, line, done });
  }
  writeReject(reject: RejectedLine): void {
    this.rejects.push(reject);
  }
  flush(): void {}
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const spec = (i: number): RequestSpec => ({ id: `r${i}`, lineNo: i, body: '{}', stream: true });
const specs = (n: number) => Array.from({ length: n }, (_, i) => spec(i + 1));

/** Wait (on real microtasks and timers) until `cond` holds; the fakes answer on microtasks. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 1));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

function setup(opts: {
  lines: (RequestSpec | RejectedLine)[];
  options?: Record<string, unknown>;
  autoFinish?: boolean;
  doneIds?: Set<string>;
  assignedCap?: () => number;
  shardOpts?: { isolated?: boolean; failStart?: boolean };
}) {
  const dir = tempDir();
  const out = join(dir, 'out');
  const o = parseRunOptions({
    input: 'unused.jsonl',
    endpoint: 'http://127.0.0.1:9/v1',
    out,
    progress: 'off',
    ...opts.options,
  });
  let now = 1_000_000;
  const clock = () => now;
  const events = new EventWriter({ path: join(out, 'events', 'coordinator.jsonl'), run: 'r', shard: -1, now: clock });
  const sink = new RecordingSink();
  const fakes = fakeShards({ autoFinish: opts.autoFinish ?? false, ...opts.shardOpts });
  const coordinator = new Coordinator({
    options: o,
    source: new ArraySource(opts.lines),
    sink,
    events,
    doneIds: opts.doneIds ?? new Set(),
    clock,
    shardConfig: (index, replaces) => shardConfig(o, 'r', out, index, replaces),
    launchShard: fakes.launch,
    ...(opts.assignedCap ? { assignedCap: opts.assignedCap } : {}),
  });
  const finished = coordinator.run().then((r) => {
    events.close();
    return r;
  });
  return {
    coordinator,
    sink,
    shards: fakes.shards,
    finished,
    out,
    advance: (ms: number) => (now += ms),
    now: () => now,
  };
}

const ids = (items: { id: string }[]) => items.map((i) => i.id).sort();
const live = (shards: FakeShard[]) => shards.filter((s) => !s.exited);

describe('dispatch core, with fake shards and a fake clock', () => {
  it('conserves work: every request dispatched once and one result each, within each shard’s slots', async () => {
    const t = setup({ lines: specs(200), options: { shards: 3, concurrency: 4, prefetch: 2 }, autoFinish: true });
    expect((await t.finished).status).toBe('finished');
    expect(t.sink.results.map((r) => r.id).sort()).toEqual(ids(specs(200)));
    const received = t.shards.flatMap((s) => s.received);
    expect(ids(received)).toEqual(ids(specs(200)));
    for (const s of t.shards) {
      // A shard never holds more than it asked for: concurrency running plus prefetch waiting.
      expect(s.maxRunning).toBeLessThanOrEqual(4);
      expect(s.maxHeld).toBeLessThanOrEqual(4 + 2);
      expect(s.received.length).toBeGreaterThan(0);
    }
    expect(t.coordinator.totals).toMatchObject({ requests: 200, succeeded: 200, failed: 0, retries: 0 });
  });

  it('hands prefetched work back to an idle shard at the tail of the input', async () => {
    const t = setup({ lines: specs(5), options: { shards: 2, concurrency: 1, prefetch: 4 } });
    await until(() => t.shards.reduce((n, s) => n + s.received.length, 0) === 5, 'all five dispatched');
    const [a, b] = t.shards as [FakeShard, FakeShard];
    // Each asked for 5 (1 slot + 4 prefetch): each runs one, and the other three wait in prefetch, a first.
    expect([a.running.length, a.local.length, b.running.length, b.local.length]).toEqual([1, 2, 1, 1]);
    b.finish();
    b.finish();
    // b's slot is free, its prefetch empty and nothing is left to read: a gives back a prefetched item.
    await until(() => b.received.length === 3, 'b to get a stolen item');
    expect(a.local.length).toBe(1);
    expect(a.received.map((i) => i.id)).toContain(b.received[2]!.id);
    expect(b.received[2]!.attempt).toBe(1);
    for (let i = 0; i < 20 && t.sink.results.length < 5; i++) {
      for (const s of live(t.shards)) s.finishAll();
      await new Promise((r) => setTimeout(r, 1));
    }
    expect((await t.finished).status).toBe('finished');
    expect(t.sink.results.map((r) => r.id).sort()).toEqual(ids(specs(5)));
  });

  it('re-queues a dead shard’s work to its replacement and ignores a late answer from the dead one', async () => {
    const t = setup({ lines: specs(6), options: { shards: 1, concurrency: 3, prefetch: 3 } });
    await until(() => t.shards[0]?.received.length === 6, 'the first shard to hold all six');
    const first = t.shards[0]!;
    first.finish('r1');
    await until(() => t.sink.results.length === 1, 'r1’s result');
    const orphan = first.running[0]!;
    first.crash();
    await until(() => t.shards.length === 2 && t.shards[1]!.received.length === 5, 'a replacement with five items');
    const replacement = t.shards[1]!;
    // Re-sent as a new attempt, r1 not again.
    expect(ids(replacement.received)).toEqual(['r2', 'r3', 'r4', 'r5', 'r6']);
    expect(replacement.received.every((i) => i.attempt === 2)).toBe(true);
    // The dead shard's late answer for an item now assigned elsewhere must not make a second result.
    const late: DoneItem = {
      id: orphan.id,
      resultLine: '{"late":true}',
      outcome: 'succeeded',
      attempts: 1,
      completionTokens: 1,
      promptTokens: 1,
      attemptMs: 1,
    };
    first.emit({ t: 'done', items: [late] }, true);
    replacement.finishAll();
    await until(() => t.sink.results.length >= 6, 'six results');
    for (const s of live(t.shards)) s.finishAll();
    expect((await t.finished).status).toBe('finished');
    expect(t.sink.results.map((r) => r.id).sort()).toEqual(ids(specs(6)));
    expect(t.sink.results.some((r) => r.line.includes('late'))).toBe(false);
    expect(t.coordinator.totals.shardRestarts).toBe(1);
    const exits = ofType(loadEvents(t.out), 'shard_exit');
    expect(exits).toHaveLength(1);
    expect(exits[0]).toMatchObject({ reason: 'crashed', requeued: 5 });
  });

  it('holds a cap on assigned work across shards (a worker’s share of --global-concurrency)', async () => {
    let cap = 2;
    const t = setup({
      lines: specs(12),
      options: { shards: 2, concurrency: 4, prefetch: 4 },
      assignedCap: () => cap,
    });
    await until(() => t.shards.reduce((n, s) => n + s.received.length, 0) === 2, 'two dispatched');
    await new Promise((r) => setTimeout(r, 20));
    expect(t.shards.reduce((n, s) => n + s.held, 0)).toBe(2);
    cap = 5;
    t.coordinator.kick();
    await until(() => t.shards.reduce((n, s) => n + s.held, 0) === 5, 'five held after the cap rose');
    for (let i = 0; i < 100 && t.sink.results.length < 12; i++) {
      for (const s of live(t.shards)) if (s.running.length > 0) s.finish();
      expect(t.shards.reduce((n, s) => n + s.held, 0)).toBeLessThanOrEqual(5);
      await new Promise((r) => setTimeout(r, 1));
    }
    expect((await t.finished).status).toBe('finished');
    expect(t.sink.results).toHaveLength(12);
  });

  it('skips what a resumed run already has, and passes rejected lines to the sink', async () => {
    const reject: RejectedLine = { lineNo: 99, reason: 'not JSON', excerpt: '{' };
    const t = setup({
      lines: [...specs(10), reject],
      options: { concurrency: 2 },
      autoFinish: true,
      doneIds: new Set(['r1', 'r2', 'r3', 'r9']),
    });
    expect((await t.finished).status).toBe('finished');
    expect(ids(t.shards.flatMap((s) => s.received))).toEqual(['r10', 'r4', 'r5', 'r6', 'r7', 'r8']);
    expect(t.sink.rejects).toEqual([reject]);
    expect(t.coordinator.totals).toMatchObject({ requests: 10, skipped: 4, rejected: 1, succeeded: 6 });
  });

  it('puts a retry back at the front of the backlog when it is due on the event clock', async () => {
    const t = setup({ lines: specs(3), options: { concurrency: 1, prefetch: 0 } });
    await until(() => t.shards[0]?.running.length === 1, 'r1 running');
    const s = t.shards[0]!;
    // Due 50 ms later on the event clock: the coordinator's timer polls real time until the clock says so.
    s.retry('r1', t.now() + 50);
    // Not due yet: the next item goes out instead.
    await until(() => s.running[0]?.id === 'r2', 'r2 to run while r1 waits');
    s.finish('r2');
    await until(() => s.running[0]?.id === 'r3', 'r3 next');
    s.finish('r3');
    await new Promise((r) => setTimeout(r, 120));
    // Still not due: the event clock has not moved, however long the wait on the wall.
    expect(s.running).toHaveLength(0);
    t.advance(50);
    await until(() => s.running[0]?.id === 'r1', 'r1 again once due');
    expect(s.running[0]!.attempt).toBe(2);
    s.finish('r1');
    expect((await t.finished).status).toBe('finished');
    expect(t.coordinator.totals).toMatchObject({ retries: 1, succeeded: 3 });
    const enqueues = ofType(loadEvents(t.out), 'enqueue').filter((e) => e.id === 'r1');
    expect(enqueues.map((e) => e.attempt ?? 1)).toEqual([1, 2]);
  });

  it('gives a shard whose endpoint is down one item to probe with, and the rest to the others', async () => {
    const t = setup({ lines: specs(8), options: { shards: 2, concurrency: 4, prefetch: 0 } });
    await until(() => t.shards.length === 2 && t.shards.every((s) => s.config !== undefined), 'two shards');
    const [a, b] = t.shards as [FakeShard, FakeShard];
    await until(() => a.received.length + b.received.length === 8, 'all eight dispatched');
    a.health(true, t.now());
    // a fails its items back as retries due now; while down it may hold one (its probe).
    for (const item of [...a.running]) a.retry(item.id, t.now());
    b.finishAll();
    await new Promise((r) => setTimeout(r, 20));
    expect(a.held).toBeLessThanOrEqual(1);
    for (let i = 0; i < 200 && t.sink.results.length < 8; i++) {
      b.finishAll();
      await new Promise((r) => setTimeout(r, 1));
      expect(a.held).toBeLessThanOrEqual(1);
    }
    a.health(false, t.now());
    a.finishAll();
    expect((await t.finished).status).toBe('finished');
    expect(t.sink.results.map((r) => r.id).sort()).toEqual(ids(specs(8)));
  });

  it('stops the run when the first requests all fail with 401 (--fail-fast)', async () => {
    const t = setup({ lines: specs(50), options: { concurrency: 5, failFast: 3 } });
    await until(() => t.shards[0]?.running.length === 5, 'five running');
    const s = t.shards[0]!;
    for (const id of ['r1', 'r2', 'r3'])
      s.finish(id, { outcome: 'failed', status: 401, cause: 'http_4xx', error: 'bad key' });
    const r = await t.finished;
    expect(r.status).toBe('failed');
    expect(r.error?.message).toMatch(/401/);
    expect(t.sink.results.length).toBeLessThan(50);
  });
});

describe('dispatch core: stopping', () => {
  it('drains on interrupt: running work finishes, nothing new starts, unfinished work has no result', async () => {
    const t = setup({ lines: specs(20), options: { concurrency: 3, prefetch: 0 } });
    await until(() => t.shards[0]?.running.length === 3, 'three running');
    const s = t.shards[0]!;
    t.coordinator.interrupt('drain');
    s.finish('r1');
    s.finish('r2');
    await new Promise((r) => setTimeout(r, 20));
    // Stopping: the freed slots take nothing more.
    expect(s.received).toHaveLength(3);
    s.finish('r3');
    expect((await t.finished).status).toBe('interrupted');
    expect(t.sink.results.map((r) => r.id).sort()).toEqual(['r1', 'r2', 'r3']);
  });

  it('abandons at once, and stops as failed with the error given to stopFor', async () => {
    const a = setup({ lines: specs(20), options: { concurrency: 3 } });
    await until(() => a.shards[0]?.running.length === 3, 'three running');
    a.coordinator.interrupt('abandon');
    expect((await a.finished).status).toBe('interrupted');
    expect(a.sink.results).toHaveLength(0);
    const b = setup({ lines: specs(20), options: { concurrency: 3 } });
    await until(() => b.shards[0]?.running.length === 3, 'three running');
    b.coordinator.stopFor(new Error('cannot write results.jsonl'));
    const r = await b.finished;
    expect(r.status).toBe('failed');
    expect(r.error?.message).toBe('cannot write results.jsonl');
  });

  it('kills a shard silent past --wedge-timeout-s and runs its work on a replacement', async () => {
    const t = setup({
      lines: specs(4),
      options: { concurrency: 4, wedgeTimeoutS: 1 },
      shardOpts: { isolated: true },
    });
    await until(() => t.shards[0]?.running.length === 4, 'four running');
    // No message for longer than the timeout on the event clock: the watchdog (every 500 ms) kills it.
    t.advance(1500);
    await until(() => t.shards.length === 2 && t.shards[1]!.received.length === 4, 'a replacement with the work');
    t.shards[1]!.finishAll();
    expect((await t.finished).status).toBe('finished');
    expect(ofType(loadEvents(t.out), 'shard_exit')[0]).toMatchObject({ reason: 'wedged', requeued: 4 });
    expect(t.sink.results).toHaveLength(4);
  });

  it('gives up when shard processes keep exiting before they start, saying what to check', async () => {
    const t = setup({ lines: specs(4), shardOpts: { failStart: true } });
    const r = await t.finished;
    expect(r.status).toBe('failed');
    expect(r.error?.message).toMatch(/shard processes exit before they start \(3 in a row/);
    expect(r.error?.message).toMatch(/NODE_OPTIONS/);
    expect(ofType(loadEvents(t.out), 'shard_exit').map((e) => e.reason)).toEqual([
      'failed_start',
      'failed_start',
      'failed_start',
    ]);
  });

  it('reports progress: done, total, in flight, limit and backlog', async () => {
    const t = setup({ lines: specs(10), options: { concurrency: 2, prefetch: 0, readAhead: 100 } });
    await until(() => t.shards[0]?.running.length === 2, 'two running');
    t.shards[0]!.finish('r1');
    await until(() => t.sink.results.length === 1 && t.shards[0]!.running.length === 2, 'r1 done, r3 running');
    const p = t.coordinator.snapshot();
    expect(p).toMatchObject({ done: 1, total: 10, limit: 2, backlog: 7, retries: 0, failed: 0 });
    for (let i = 0; i < 50 && t.sink.results.length < 10; i++) {
      t.shards[0]!.finishAll();
      await new Promise((r) => setTimeout(r, 1));
    }
    expect((await t.finished).status).toBe('finished');
    expect(t.coordinator.snapshot()).toMatchObject({ done: 10, total: 10, backlog: 0 });
  });
});

describe('assignWork', () => {
  const shard = (freeSlots: number, demand: number, extra: Partial<ShardSlots> = {}): ShardSlots => {
    const s = {
      exited: false,
      down: false,
      demand,
      running: 0,
      local: 0,
      limit: freeSlots,
      assigned: new Map<string, WorkItem>(),
      get freeSlots(): number {
        return Math.max(0, this.limit - this.running - this.local);
      },
      ...extra,
    };
    return s;
  };
  const backlog = (n: number) => {
    const d = new Deque<WorkItem>(16);
    for (let i = 1; i <= n; i++) d.push({ id: `r${i}`, lineNo: i, body: '{}', stream: true, attempt: 1 });
    return d;
  };

  it('fills free slots first, most free first, then prefetch places by demand', () => {
    const a = shard(1, 3);
    const b = shard(2, 2);
    const batches = assignWork(backlog(5), [a, b]);
    // b (2 free) takes r1, then a and b tie at 1 free and a asks more: r2 to a, r3 to b; then prefetch.
    expect(batches.get(b)!.map((i) => i.id)).toEqual(['r1', 'r3']);
    expect(batches.get(a)!.map((i) => i.id)).toEqual(['r2', 'r4', 'r5']);
    expect([a.running, a.local, b.running, b.local]).toEqual([1, 2, 2, 0]);
  });

  it('leaves work in the backlog when no shard asks, past the cap, or for an exited or down shard', () => {
    const q = backlog(4);
    expect(assignWork(q, [shard(4, 0)]).size).toBe(0);
    expect(assignWork(q, [shard(4, 4, { exited: true })]).size).toBe(0);
    expect(
      assignWork(q, [shard(4, 4)], 2)
        .values()
        .next().value,
    ).toHaveLength(2);
    expect(q.length).toBe(2);
    // A down shard takes one item to probe with, however many it asks for.
    const down = shard(4, 4, { down: true });
    expect(assignWork(q, [down]).get(down)).toHaveLength(1);
  });
});
