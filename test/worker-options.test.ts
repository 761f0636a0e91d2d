import { describe, expect, it } from 'vitest';
import { ConfigError } from '../src/errors.js';
import { parseWorkerOptions } from '../src/config/worker-options.js';

const base = { redis: 'redis://127.0.0.1:6379', out: '/tmp/x' };

describe('shardline worker options', () => {
  it('leaves flags not given unset, so the run coordinator’s values apply (not the run defaults)', () => {
    const o = parseWorkerOptions(base);
    expect(o.concurrency).toBeUndefined();
    expect(o.shards).toBeUndefined();
    expect(o.transport).toBeUndefined();
    expect(o.endpoint).toBeUndefined();
  });

  it('parses the flags given, with the run options’ own checks', () => {
    const o = parseWorkerOptions({ ...base, concurrency: '12', shards: '3', transport: 'raw', once: true });
    expect([o.concurrency, o.shards, o.transport, o.once]).toEqual([12, 3, 'raw', true]);
    expect(parseWorkerOptions({ ...base, concurrency: 'auto:2-40' }).concurrency).toBe('auto:2-40');
  });

  it('names the flag and what it expects when a value is bad', () => {
    expect(() => parseWorkerOptions({ ...base, concurrency: 'lots' })).toThrow(ConfigError);
    expect(() => parseWorkerOptions({ ...base, concurrency: 'lots' })).toThrow(/--concurrency.*auto.*got `lots`/);
    expect(() => parseWorkerOptions({ ...base, shards: '0' })).toThrow(/--shards/);
  });
});
