import type { Command } from 'commander';
import { addOptions, flagValues } from '../config/option-table.js';
import { parseWorkerOptions, WORKER_OPTIONS } from '../config/worker-options.js';

/** `shardline worker`: take a distributed run's chunks from Redis and run them here. */
export function registerWorkerCommand(program: Command): void {
  const command = program
    .command('worker')
    .description(
      "Serve distributed runs: take chunks of a `run --redis` coordinator's requests from Redis and run them on " +
        'this machine',
    );
  addOptions(command, WORKER_OPTIONS);
  command.action(async (_raw: unknown, cmd: Command) => {
    const o = parseWorkerOptions(flagValues(cmd, WORKER_OPTIONS));
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      // The API key is read here, on each machine; it never goes through Redis.
      const apiKey = process.env.SHARDLINE_API_KEY ?? process.env.OPENAI_API_KEY;
      // Loaded here, not at startup: every other command would pay for loading BullMQ.
      const { runWorker } = await import('../runner/distributed/run-worker.js');
      await runWorker({ ...o, apiKey }, stop.signal);
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  });
}
