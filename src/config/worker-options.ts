import { z } from 'zod';
import { ConfigError } from './errors.js';
import { redisUrlSchema } from './redis-url.js';
import { runOptionsSchema } from './run-options.js';
import { formatZodIssues } from './zod-issues.js';

const run = runOptionsSchema.shape;

/** `shardline worker` options; anything not given comes from the run's coordinator through Redis. */
export const workerOptionsSchema = z
  .object({
    redis: redisUrlSchema,
    out: z
      .string()
      .min(1)
      .describe(
        "Directory for this worker's event files: the run directory on a shared volume, or one to gather from.",
      ),
    // Without their defaults: a flag not given must leave the run's value, not put back run's default.
    shards: run.shards.unwrap().optional(),
    concurrency: run.concurrency.unwrap().optional(),
    endpoint: run.endpoint.optional(),
    transport: run.transport.unwrap().optional(),
    headers: run.headers.optional(),
    metricsPort: run.metricsPort,
    once: z.boolean().default(false).describe('Serve one run, then exit. @default false'),
  })
  .strict();
export type WorkerCliOptions = z.output<typeof workerOptionsSchema>;

const FLAGS: Record<string, string> = {
  redis: '--redis',
  out: '--out',
  shards: '--shards',
  concurrency: '--concurrency',
  endpoint: '--endpoint',
  transport: '--transport',
  headers: '--header',
  metricsPort: '--metrics-port',
  once: '--once',
};

/** Validate raw CLI values; errors name the flag (exit 2). */
export function parseWorkerOptions(raw: Record<string, unknown>): WorkerCliOptions {
  const result = workerOptionsSchema.safeParse(raw);
  if (!result.success)
    throw new ConfigError(formatZodIssues(result.error, raw, (p) => FLAGS[String(p[0])] ?? `--${String(p[0])}`));
  return result.data;
}
