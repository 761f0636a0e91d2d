import { z } from 'zod';

/** A `--redis` value: redis:// or rediss:// (TLS), optionally with user, password and db. */
export const redisUrlSchema = z
  .string()
  .refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'redis:' || u.protocol === 'rediss:') && u.hostname !== '';
    } catch {
      return false;
    }
  }, 'a redis:// or rediss:// URL such as redis://127.0.0.1:6379')
  .describe('Redis for a distributed run, e.g. redis://127.0.0.1:6379 (rediss:// for TLS).');

/** The URL without its password, for messages and logs. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}
