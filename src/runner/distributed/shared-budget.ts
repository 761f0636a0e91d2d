import type { Redis } from 'ioredis';
import type { Budget, QuotaObservation } from '../pacing/rate-budget.js';

/**
 * One token bucket per budget for the whole run, in Redis, refilled continuously at its per-minute rate,
 * holding at most one second of it and starting empty (as RateBudget's), plus the provider's view from
 * the newest x-ratelimit-* headers any worker saw, charged with everything granted since. A grant goes
 * out only when both have room, all budgets at once; otherwise the script says how long to wait.
 * Times are Redis's own (TIME), so workers on machines with skewed clocks share one timeline.
 *
 * KEYS: bucket:requests, bucket:tokens, provider:requests, provider:tokens
 * ARGV: per kind (requests, tokens) perMs, capacity, want; then per kind an observation: remaining (-1:
 * none), perMs (0: unknown), resetMs (-1: unknown).
 * Returns {granted requests, granted tokens, wait ms} as strings (Lua numbers would be truncated).
 */
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
for k = 1, 2 do
  local rem = tonumber(ARGV[6 + (k - 1) * 3 + 1])
  if rem >= 0 then
    redis.call('HSET', KEYS[k + 2], 'remaining', rem, 'at', now, 'perMs', ARGV[6 + (k - 1) * 3 + 2],
      'resetMs', ARGV[6 + (k - 1) * 3 + 3], 'since', 0)
    redis.call('PEXPIRE', KEYS[k + 2], 86400000)
  end
end
local wait = 0
for k = 1, 2 do
  local perMs = tonumber(ARGV[(k - 1) * 3 + 1])
  local cap = tonumber(ARGV[(k - 1) * 3 + 2])
  local want = tonumber(ARGV[(k - 1) * 3 + 3])
  if perMs > 0 and want > 0 then
    local h = redis.call('HMGET', KEYS[k], 'level', 'last')
    local level = tonumber(h[1]) or 0
    local last = tonumber(h[2]) or now
    level = math.min(cap, level + (now - last) * perMs)
    redis.call('HSET', KEYS[k], 'level', level, 'last', now)
    redis.call('PEXPIRE', KEYS[k], 86400000)
    if level <= 0 then wait = math.max(wait, (-level + 0.001) / perMs) end
    local p = redis.call('HMGET', KEYS[k + 2], 'remaining', 'at', 'perMs', 'resetMs', 'since')
    if p[1] then
      local pPer = tonumber(p[3]) or 0
      local pReset = tonumber(p[4]) or -1
      local age = now - tonumber(p[2])
      local avail
      if pPer > 0 then avail = tonumber(p[1]) + age * pPer - tonumber(p[5])
      elseif pReset >= 0 and age >= pReset then avail = math.huge
      else avail = tonumber(p[1]) - tonumber(p[5]) end
      if avail < want then
        if pPer > 0 then wait = math.max(wait, (want - avail) / pPer)
        else wait = math.max(wait, math.max(1, (pReset >= 0 and pReset or 1000) - age)) end
      end
    end
  end
end
if wait > 0 then return {'0', '0', tostring(math.min(1000, wait))} end
local granted = {'0', '0'}
for k = 1, 2 do
  local perMs = tonumber(ARGV[(k - 1) * 3 + 1])
  local want = tonumber(ARGV[(k - 1) * 3 + 3])
  if perMs > 0 and want > 0 then
    redis.call('HINCRBYFLOAT', KEYS[k], 'level', -want)
    if redis.call('EXISTS', KEYS[k + 2]) == 1 then redis.call('HINCRBYFLOAT', KEYS[k + 2], 'since', want) end
    granted[k] = tostring(want)
  end
end
return {granted[1], granted[2], '0'}
`;

/** Budget a worker holds beyond what it needs now: this long of the run's rate (a grant per round trip). */
const GRANT_MS = 50;
/** How soon to look again while a grant is on its way. */
const PENDING_WAIT_MS = 2;

type Kind = 'requests' | 'tokens';

/**
 * `--rpm`/`--tpm` of a distributed run: one budget shared by every worker through Redis (see TAKE),
 * so N workers send what one run may, not N times it. A worker takes grants of 50 ms of the rate at a
 * time and spends them locally, so Redis sees one round trip per grant rather than one per request;
 * usage corrections stay in the worker's own grant. Each worker's x-ratelimit-* observations go to
 * Redis with its next grant and count for all.
 */
export class SharedBudget implements Budget {
  private readonly perMin: Partial<Record<Kind, number>>;
  /** Granted and not yet spent (tokens may go below 0 after a correction: a debt the next grant pays). */
  private readonly pool: Record<Kind, number> = { requests: 0, tokens: 0 };
  private readonly pendingObs: Partial<Record<Kind, QuotaObservation>> = {};
  private pending = false;
  private waitUntilMs = 0;
  /** A Redis error on the last grant: the run goes on asking (BullMQ's reconnects cover a restart). */
  lastError: Error | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
    options: { rpm?: number | undefined; tpm?: number | undefined },
  ) {
    this.perMin = { requests: options.rpm, tokens: options.tpm };
  }

  get active(): boolean {
    return this.perMin.requests !== undefined || this.perMin.tokens !== undefined;
  }

  get countsTokens(): boolean {
    return this.perMin.tokens !== undefined;
  }

  tryTake(tokens: number, nowMs: number): number {
    if (!this.active) return 0;
    const needReq = this.perMin.requests !== undefined ? 1 : 0;
    const needTok = this.perMin.tokens !== undefined ? tokens : 0;
    if (this.pool.requests >= needReq && (needTok === 0 || this.pool.tokens >= needTok)) {
      this.pool.requests -= needReq;
      this.pool.tokens -= needTok;
      return 0;
    }
    if (nowMs < this.waitUntilMs) return Math.max(1, this.waitUntilMs - nowMs);
    if (!this.pending) void this.grant(needReq - this.pool.requests, needTok - this.pool.tokens, nowMs);
    return PENDING_WAIT_MS;
  }

  adjust(deltaTokens: number): void {
    this.pool.tokens -= deltaTokens;
  }

  observe(q: QuotaObservation): void {
    const was = this.pendingObs[q.kind];
    if (!was || was.ts <= q.ts) this.pendingObs[q.kind] = q;
  }

  private async grant(shortReq: number, shortTok: number, nowMs: number): Promise<void> {
    this.pending = true;
    const args: (string | number)[] = [];
    for (const [kind, short] of [
      ['requests', shortReq],
      ['tokens', shortTok],
    ] as const) {
      const perMin = this.perMin[kind];
      if (perMin === undefined) args.push(0, 0, 0);
      else
        args.push(
          perMin / 60_000,
          perMin / 60,
          Math.max(short, (perMin / 60_000) * GRANT_MS, kind === 'requests' ? 1 : 0),
        );
    }
    for (const kind of ['requests', 'tokens'] as const) {
      const q = this.pendingObs[kind];
      delete this.pendingObs[kind];
      if (!q) args.push(-1, 0, -1);
      else args.push(q.remaining, q.limit !== undefined ? q.limit / 60_000 : 0, q.resetMs ?? -1);
    }
    const k = (name: string) => `${this.keyPrefix}:${name}`;
    try {
      const [req, tok, wait] = (await this.redis.eval(
        TAKE,
        4,
        k('bucket:requests'),
        k('bucket:tokens'),
        k('provider:requests'),
        k('provider:tokens'),
        ...args,
      )) as [string, string, string];
      this.pool.requests += Number(req);
      this.pool.tokens += Number(tok);
      const waitMs = Number(wait);
      if (waitMs > 0) this.waitUntilMs = nowMs + waitMs;
      this.lastError = undefined;
    } catch (err) {
      this.lastError = err as Error;
      this.waitUntilMs = nowMs + 250;
    } finally {
      this.pending = false;
    }
  }
}
