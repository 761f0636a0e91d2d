import type { Redis } from 'ioredis';

/**
 * Set this worker's lease to what it wants, within what the others leave of the global bound, after
 * dropping the leases of workers that stopped renewing (dead or wedged). Atomic in Redis, so the
 * leases never sum past the bound; a worker only ever lowers its own, so work already running under
 * a lease is never oversubscribed by another worker's grant.
 * Time is Redis's own (TIME), so machines' clocks need not agree.
 * KEYS: leases hash, alive zset. ARGV: worker, want, bound, ttlMs.
 */
const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, w in ipairs(expired) do
  redis.call('HDEL', KEYS[1], w)
  redis.call('ZREM', KEYS[2], w)
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[1])
local others = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if all[i] ~= ARGV[1] then others = others + tonumber(all[i + 1]) end
end
local lease = math.min(tonumber(ARGV[2]), tonumber(ARGV[3]) - others)
if lease < 0 then lease = 0 end
redis.call('HSET', KEYS[1], ARGV[1], lease)
return lease
`;

/** Renew period; a lease unrenewed for 3 s (a dead or wedged worker) is given back to the others. */
const TICK_MS = 200;
const TTL_MS = 3000;

/**
 * `--global-concurrency`: this worker's share of a bound on in-flight requests across all workers,
 * as a lease in Redis renewed every 200 ms. The worker's coordinator assigns no more than `lease`
 * requests to its shards at once.
 */
export class GlobalLease {
  lease = 0;
  private timer: NodeJS.Timeout | undefined;
  private inFlightTick: Promise<void> = Promise.resolve();

  constructor(
    private readonly redis: Redis,
    private readonly runId: string,
    private readonly workerId: string,
    private readonly bound: number,
    /**
     * What this worker can use now: its shards' slots, but no more than the work it holds. Asking
     * for idle slots would keep the bound from a worker holding chunks it cannot start, and the run
     * would never finish; asking for what it holds, a worker gives its lease back as its work runs out.
     */
    private readonly want: () => number,
    private readonly onRise: () => void,
  ) {}

  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(() => {
      this.inFlightTick = this.inFlightTick.then(() => this.tick()).catch(() => undefined);
    }, TICK_MS);
  }

  private async tick(): Promise<void> {
    const keys = [`shardline:run:${this.runId}:leases`, `shardline:run:${this.runId}:alive`];
    const lease = Number(await this.redis.eval(ACQUIRE, 2, ...keys, this.workerId, this.want(), this.bound, TTL_MS));
    const rose = lease > this.lease;
    this.lease = lease;
    if (rose) this.onRise();
  }

  /** Give the lease back (the worker is done with the run). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.inFlightTick;
    this.lease = 0;
    await this.redis.hdel(`shardline:run:${this.runId}:leases`, this.workerId);
    await this.redis.zrem(`shardline:run:${this.runId}:alive`, this.workerId);
  }
}
