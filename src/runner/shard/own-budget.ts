import { createRequire } from 'node:module';
import type * as IORedis from 'ioredis';
import type { ShardConfig } from '../ipc-messages.js';
import { RateBudget, type Budget } from '../pacing/rate-budget.js';
import { SharedBudget } from '../distributed/shared-budget.js';

/** A shard's budget for its server's own rpm/tpm, and how to let go of what it holds. */
export interface OwnBudget {
  budget: Budget;
  close(): void;
}

/**
 * The budget of a shard's server, from its config entry's `rpm`/`tpm`: a local bucket of this shard's part,
 * or, in a distributed run, the one bucket in Redis every worker's shards sending to that server take from
 * (so N workers send what the deployment's quota allows, not N times it). ioredis is required only then:
 * loading it would cost every other shard's start.
 */
export function ownBudget(own: NonNullable<ShardConfig['upstream']['budget']>, nowMs: number): OwnBudget {
  if (!own.shared) return { budget: new RateBudget({ rpm: own.rpm, tpm: own.tpm }, nowMs), close: () => {} };
  const { Redis } = createRequire(import.meta.url)('ioredis') as typeof IORedis;
  // The budget asks again after an error (see SharedBudget): a Redis restart only pauses this server's sends.
  const redis = new Redis(own.shared.redis, { maxRetriesPerRequest: null });
  redis.on('error', () => {});
  return {
    budget: new SharedBudget(redis, own.shared.key, { rpm: own.rpm, tpm: own.tpm }),
    close: () => redis.disconnect(),
  };
}
