import { describe, expect, it } from 'vitest';
import type { AttemptOutcome } from '../src/client/chat-attempt.js';
import { ShardLimit } from '../src/runner/shard/shard-limit.js';

const refused: AttemptOutcome = {
  outcome: 'error',
  status: 429,
  cause: 'http_429',
  message: 'slow down',
  retryAfterMs: undefined,
};
const answered = (startTs: number): AttemptOutcome => ({
  outcome: 'ok',
  status: 200,
  completion: { usage: { completion_tokens: 8 } },
  requestId: undefined,
  firstTokenTs: startTs + 5,
  lastTokenTs: startTs + 12,
  contentChunks: 8,
});

describe('a shard’s limit and the pulls it owes', () => {
  it('with a fixed concurrency, never moves and asks for a new item at each freed slot', () => {
    const l = new ShardLimit(8, undefined, 0);
    expect(l.limit).toBe(8);
    expect(l.noteEnd(refused, 0, 200, undefined)).toBeUndefined();
    expect(l.slotFreed()).toBe(true);
    expect(l.limit).toBe(8);
  });

  it('skips a pull per slot it came down by, and lets owed pulls absorb a later rise', () => {
    const l = new ShardLimit(16, { min: 1, max: 64, start: 16 }, 0);
    // A round of 429s: the adaptive limit comes down at once.
    let down: ReturnType<ShardLimit['noteEnd']>;
    for (let i = 0; i < 16 && !down; i++) {
      l.noteStart(16);
      down = l.noteEnd(refused, 1, 150, undefined);
    }
    expect(down).toBeDefined();
    const owed = down!.change.old - down!.change.new;
    expect(owed).toBeGreaterThan(0);
    expect(down!.pulls).toBe(0);
    expect(l.limit).toBe(down!.change.new);
    // Pay part of the debt: those freed slots ask for nothing.
    const paid = Math.floor(owed / 2);
    for (let i = 0; i < paid; i++) expect(l.slotFreed()).toBe(false);
    // Clean, fast rounds with every slot used until the limit rises again.
    let t = 200;
    let up: ReturnType<ShardLimit['noteEnd']>;
    for (let round = 0; round < 200 && !up; round++) {
      const start = t;
      t += 150;
      for (let i = 0; i < l.limit && !up; i++) {
        l.noteStart(l.limit);
        up = l.noteEnd(answered(start), start, t, undefined);
      }
    }
    expect(up).toBeDefined();
    const rise = up!.change.new - up!.change.old;
    expect(rise).toBeGreaterThan(0);
    const left = owed - paid;
    // What was still owed is taken out of the rise before any new pull is asked for.
    expect(up!.pulls).toBe(Math.max(0, rise - left));
    for (let i = 0; i < Math.max(0, left - rise); i++) expect(l.slotFreed()).toBe(false);
    expect(l.slotFreed()).toBe(true);
  });
});
