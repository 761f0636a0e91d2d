import { Redis } from 'ioredis';
import { ConfigError, RedisError } from '../../errors.js';
import { redactRedisUrl, redisUrlSchema } from '../../config/redis-url.js';

/** Oldest Redis BullMQ 5 supports fully (it warns below 6.2 and some commands fail before 6.0). */
export const MIN_REDIS_VERSION = '6.2.0';

/** `redis_version` from an `INFO server` reply. */
export function redisVersionOf(info: string): string | undefined {
  return /^redis_version:([\d.]+)\s*$/m.exec(info)?.[1];
}

/** Whether dotted version `v` is at least `min` (numeric, part by part). */
export function versionAtLeast(v: string, min: string): boolean {
  const a = v.split('.').map(Number);
  const b = min.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

/**
 * Connect once, without retrying, and check the server before a run or a worker starts: a bad URL
 * is a ConfigError (exit 2); Redis down or too old is a RedisError (exit 1) naming the URL (its
 * password hidden). Resolves with the server's version.
 */
export async function checkRedis(url: string, { timeoutMs = 5000 }: { timeoutMs?: number } = {}): Promise<string> {
  const parsed = redisUrlSchema.safeParse(url);
  if (!parsed.success)
    throw new ConfigError(
      `Expected \`--redis\` to be a redis:// or rediss:// URL such as redis://127.0.0.1:6379, got ` +
        `\`${redactRedisUrl(url)}\``,
    );
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  // ioredis reports connection errors as events too; the awaited connect() below carries them.
  client.on('error', () => undefined);
  try {
    await client.connect();
    const version = redisVersionOf(await client.info('server'));
    if (version === undefined)
      throw new RedisError(`Redis at ${redactRedisUrl(url)} did not report its version (INFO server)`);
    if (!versionAtLeast(version, MIN_REDIS_VERSION))
      throw new RedisError(
        `Redis at ${redactRedisUrl(url)} is version ${version}; shardline needs ${MIN_REDIS_VERSION} or newer (BullMQ)`,
      );
    const policy = await maxmemoryPolicy(client);
    if (policy !== undefined && policy !== 'noeviction') {
      throw new RedisError(
        `Redis at ${redactRedisUrl(url)} has maxmemory-policy ${policy}; a queue needs noeviction, or Redis may ` +
          `drop queued work (CONFIG SET maxmemory-policy noeviction)`,
      );
    }
    return version;
  } catch (err) {
    if (err instanceof RedisError) throw err;
    throw new RedisUnreachable(
      `Cannot reach Redis at ${redactRedisUrl(url)}: ${(err as Error).message}. Is redis-server running there? ` +
        `(--redis)`,
      { cause: err },
    );
  } finally {
    client.disconnect();
  }
}

/** Redis did not answer at all (as opposed to answering with something wrong): worth trying again. */
class RedisUnreachable extends RedisError {}

/**
 * `checkRedis`, riding through a Redis that cannot be reached at start (a restart, a failover): tries
 * again every 0.5 s (doubling to 2 s) for up to `waitS`, saying so once on `log`, and once more when it
 * answers. Anything else wrong with it (its URL, version or eviction policy) fails at once, as does the
 * last try. @default waitS 30
 */
export async function waitForRedis(
  url: string,
  { waitS = 30, log, sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) }: WaitOptions = {},
): Promise<string> {
  const startMs = Date.now();
  let delayMs = 500;
  let said = false;
  for (;;) {
    try {
      const version = await checkRedis(url);
      if (said)
        log?.(`Redis at ${redactRedisUrl(url)} answers again after ${((Date.now() - startMs) / 1000).toFixed(1)} s`);
      return version;
    } catch (err) {
      const waitedMs = Date.now() - startMs;
      if (!(err instanceof RedisUnreachable) || waitedMs + delayMs > waitS * 1000) {
        if (said && err instanceof RedisUnreachable)
          throw new RedisError(
            `${err.message} (tried for ${(waitedMs / 1000).toFixed(1)} s, --redis-wait-s ${waitS})`,
            {
              cause: err,
            },
          );
        throw err;
      }
      if (!said) {
        said = true;
        log?.(
          `Redis at ${redactRedisUrl(url)} cannot be reached (${(err.cause as Error)?.message ?? err.message}); ` +
            `trying again for up to ${waitS} s (--redis-wait-s)`,
        );
      }
      await sleep(delayMs);
      delayMs = Math.min(2000, delayMs * 2);
    }
  }
}

interface WaitOptions {
  waitS?: number;
  log?: (line: string) => void;
  sleep?: (ms: number) => Promise<void>;
}

async function maxmemoryPolicy(client: Redis): Promise<string | undefined> {
  try {
    return ((await client.config('GET', 'maxmemory-policy')) as string[])[1];
  } catch {
    // Managed Redis services often disable CONFIG; BullMQ warns on its own there.
    return undefined;
  }
}
