import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotableRequests } from '../src/diagnose/notable-requests.js';
import { B, FIRST_ENQUEUE, RequestTable, SERVER_TTFT } from '../src/diagnose/request-table.js';
import { GlobalLease } from '../src/runner/distributed/global-lease.js';
import { RunChannel } from '../src/runner/distributed/run-channel.js';
import { startRedis, type TestRedis } from './helpers/redis.js';

// The Redis pieces of a distributed run on their own, against a real redis-server: the run channel
// (what runs, results in order, trimming, the end) and the global in-flight lease; and the report's
// per-request table and notable lists.

let redis: TestRedis | undefined;
beforeAll(async () => {
  redis = await startRedis();
}, 30_000);
afterAll(async () => {
  await redis?.stop();
});

describe('the run channel', () => {
  it('publishes the current run, numbers shards run-wide, and passes results in order until trimmed', async () => {
    const channel = new RunChannel(redis!.url);
    try {
      expect(await channel.currentRunId()).toBeNull();
      await channel.publish({ runId: 'r1', options: { concurrency: 8 } });
      expect(await channel.currentRunId()).toBe('r1');
      expect(await channel.current()).toMatchObject({ runId: 'r1', options: { concurrency: 8 } });
      // Two workers asking for shards get disjoint, run-wide numbers.
      expect(await channel.allocShards('r1', 2)).toBe(0);
      expect(await channel.allocShards('r1', 3)).toBe(2);
      await channel.sendResults('r1', [
        { id: 'a', line: '{"custom_id":"a"}' },
        { id: 'b', line: '{"custom_id":"b"}', facts: undefined },
      ]);
      const facts = { outcome: 'succeeded' as const, attempts: 2, promptTokens: 5, completionTokens: 7, ttftMs: 12.5 };
      await channel.sendResults('r1', [{ id: 'c', line: '{"custom_id":"c","é":"漢"}', facts }]);
      const read = await channel.readResults('r1', '0', 100);
      expect(read.map((r) => r.id)).toEqual(['a', 'b', 'c']);
      // Lines come back as the bytes sent, to be written to results.jsonl as they are.
      expect(read.map((r) => Buffer.from(r.line).toString())).toEqual([
        '{"custom_id":"a"}',
        '{"custom_id":"b"}',
        '{"custom_id":"c","é":"漢"}',
      ]);
      expect(read.map((r) => r.facts)).toEqual([undefined, undefined, expect.objectContaining(facts)]);
      // Nothing newer: the read waits out its block and comes back empty.
      expect(await channel.readResults('r1', read[2]!.streamId, 20)).toEqual([]);
      const after = await channel.readResults('r1', read[1]!.streamId, 100);
      expect(after.map((r) => r.id)).toEqual(['c']);
      await channel.trimResults('r1', read[1]!.streamId);
      expect((await channel.readResults('r1', '0', 100)).map((r) => r.id)).toEqual(['c']);
      expect(await channel.isFinished('r1')).toBe(false);
      await channel.finish('r1');
      expect(await channel.isFinished('r1')).toBe(true);
    } finally {
      await channel.close();
    }
  });
});

describe('the global lease', () => {
  it('never grants more than the bound across workers, and gives a stopped worker’s share to others', async () => {
    const client = new Redis(redis!.url);
    let rose = 0;
    const a = new GlobalLease(
      client,
      'lease-run',
      'a',
      10,
      () => 8,
      () => rose++,
    );
    const b = new GlobalLease(
      client,
      'lease-run',
      'b',
      10,
      () => 8,
      () => rose++,
    );
    try {
      await a.start();
      await b.start();
      expect(a.lease).toBe(8);
      expect(b.lease).toBe(2);
      expect(a.lease + b.lease).toBeLessThanOrEqual(10);
      await a.stop();
      expect(a.lease).toBe(0);
      // b renews every 200 ms: within a few ticks it has what a gave back, up to what it wants.
      for (let i = 0; i < 50 && b.lease < 8; i++) await new Promise((r) => setTimeout(r, 50));
      expect(b.lease).toBe(8);
      expect(rose).toBeGreaterThanOrEqual(3);
    } finally {
      await b.stop();
      client.disconnect();
    }
  });
});

describe('the report’s request table', () => {
  it('opens a row per request, reuses closed rows, and grows past its first size', () => {
    const t = new RequestTable();
    expect(t.slot(5)).toBe(-1);
    const a = t.open(5, 100);
    expect(t.open(5, 999)).toBe(a);
    expect(t.get(a, FIRST_ENQUEUE)).toBe(100);
    t.add(a, B.decode, 40);
    t.add(a, B.decode, 2);
    t.set(a, SERVER_TTFT, 30);
    expect([t.get(a, B.decode), t.get(a, SERVER_TTFT)]).toEqual([42, 30]);
    t.close(5);
    expect(t.slot(5)).toBe(-1);
    // The row is reused, reset to its start values.
    const b = t.open(9, 200);
    expect(b).toBe(a);
    expect([t.get(b, B.decode), t.get(b, FIRST_ENQUEUE)]).toEqual([0, 200]);
    for (let rid = 10; rid < 5000; rid++) t.open(rid, rid);
    expect(t.get(t.slot(4999), FIRST_ENQUEUE)).toBe(4999);
    expect(t.get(t.slot(9), FIRST_ENQUEUE)).toBe(200);
  });
});

describe('notable requests', () => {
  it('keeps the 10 slowest (ties in arrival order) and the last 10 failed attempts, named at the end', () => {
    const n = new NotableRequests();
    for (let rid = 0; rid < 30; rid++) n.noteFinished(rid, (rid % 15) * 100, 1, 'succeeded');
    expect(n.slowest.map((s) => s.e2e_ms)).toEqual([1400, 1400, 1300, 1300, 1200, 1200, 1100, 1100, 1000, 1000]);
    expect(n.slowest.slice(0, 2).map((s) => s.rid)).toEqual([14, 29]);
    for (let i = 0; i < 12; i++)
      n.noteFailedAttempt({ rid: 100 + i, attempt: 1, cause: 'http_5xx', status: 503, error: `e${i}` });
    expect(n.recentErrors.map((e) => e.error)).toEqual(['e2', 'e3', 'e4', 'e5', 'e6', 'e7', 'e8', 'e9', 'e10', 'e11']);
    const names = new Map(n.rids().map((rid) => [rid, `req-${rid}`]));
    const named = n.named(names);
    expect(named.slowest[0]).toEqual({ id: 'req-14', e2e_ms: 1400, attempts: 1, outcome: 'succeeded' });
    expect(named.recentErrors[9]).toMatchObject({ id: 'req-111', cause: 'http_5xx', status: 503 });
  });
});
