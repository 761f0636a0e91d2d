import { z } from 'zod';
import { parseOptions, reuse, withoutDefault, type OptionSpec, type TableOutput } from './option-table.js';
import { redisUrlSchema } from './redis-url.js';
import { RUN_OPTIONS } from './run-option-table.js';

const run = RUN_OPTIONS;

/**
 * `shardline worker` options. The run's own options keep their checks here but lose their defaults:
 * a flag not given must leave the value the run's coordinator sends through Redis.
 */
export const WORKER_OPTIONS = {
  redis: {
    flag: '--redis <url>',
    schema: redisUrlSchema,
    help: 'the Redis the coordinator uses, e.g. redis://10.0.0.5:6379',
    required: true,
  },
  redisWaitS: reuse(run.redisWaitS, {
    help: 'at start, how long to keep trying a Redis that cannot be reached (a restart, a failover)',
  }),
  out: {
    flag: '--out <dir>',
    schema: z.string().min(1),
    help: "where this worker's event files go: the run directory on a shared volume, or a local one to gather later",
    required: true,
  },
  shards: withoutDefault(run.shards, {
    env: [],
    help: 'shards in this worker (default 1: run in this process; prefer one worker per core to several shards)',
  }),
  concurrency: withoutDefault(run.concurrency, {
    env: [],
    help: "in-flight requests per shard, or auto (default: the run's)",
  }),
  endpoint: withoutDefault(run.endpoint, { help: "API base URL as seen from this machine (default: the run's)" }),
  transport: withoutDefault(run.transport, { help: "undici or raw (default: the run's)" }),
  headers: reuse(run.headers, {
    help: 'extra request header "Name: value" (repeatable; headers are never sent through Redis)',
  }),
  metricsPort: reuse(run.metricsPort, {
    help: "serve this worker's Prometheus /metrics on 127.0.0.1 while it runs a run; 0 picks a port",
  }),
  once: {
    flag: '--once',
    schema: z.boolean().default(false),
    help: 'serve one run, then exit (default: serve runs until SIGINT/SIGTERM)',
    defaultText: '',
  },
} satisfies Record<string, OptionSpec>;

export type WorkerCliOptions = TableOutput<typeof WORKER_OPTIONS>;

/** Validate raw values keyed by option name; errors name the flag (exit 2). */
export function parseWorkerOptions(raw: Record<string, unknown>): WorkerCliOptions {
  return parseOptions(WORKER_OPTIONS, raw);
}
