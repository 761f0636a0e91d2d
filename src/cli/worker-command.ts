import { Option, type Command } from 'commander';
import { parseWorkerOptions } from '../config/worker-options.js';

/** `shardline worker`: take a distributed run's chunks from Redis and run them here. */
export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description(
      "Serve distributed runs: take chunks of a `run --redis` coordinator's requests from Redis and run them on this machine",
    )
    .requiredOption('--redis <url>', 'the Redis the coordinator uses, e.g. redis://10.0.0.5:6379')
    .requiredOption(
      '--out <dir>',
      "where this worker's event files go: the run directory on a shared volume, or a local one to gather later",
    )
    .option(
      '--shards <n>',
      'shards in this worker (default 1: run in this process; prefer one worker per core to several shards)',
    )
    .option('--concurrency <n>', "in-flight requests per shard, or auto (default: the run's)")
    .option('--endpoint <url>', "API base URL as seen from this machine (default: the run's)")
    .addOption(new Option('--transport <client>', "undici or raw (default: the run's)").choices(['undici', 'raw']))
    .option(
      '--header <h>',
      'extra request header "Name: value" (repeatable; headers are never sent through Redis)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option(
      '--metrics-port <port>',
      "serve this worker's Prometheus /metrics on 127.0.0.1 while it runs a run; 0 picks a port",
    )
    .option('--once', 'serve one run, then exit (default: serve runs until SIGINT/SIGTERM)')
    .action(async (raw: Record<string, unknown>) => {
      const o = parseWorkerOptions({
        redis: raw.redis,
        out: raw.out,
        shards: raw.shards,
        concurrency: raw.concurrency,
        endpoint: raw.endpoint,
        transport: raw.transport,
        headers: raw.header,
        metricsPort: raw.metricsPort,
        once: raw.once === true,
      });
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        // The API key is read here, on each machine; it never goes through Redis.
        const apiKey = process.env.SHARDLINE_API_KEY ?? process.env.OPENAI_API_KEY;
        // Loaded here, not at startup: every other command would pay for loading BullMQ.
        const { runWorker } = await import('../runner/redis/run-worker.js');
        await runWorker({ ...o, apiKey }, stop.signal);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
