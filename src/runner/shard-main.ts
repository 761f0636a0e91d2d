/**
 * Entry point of a shard child process (forked by the coordinator with an IPC channel). It ignores
 * terminal signals: the coordinator decides whether to drain or abandon, and kills it if it wedges.
 */
import { monotonicEpochMs } from '../events/clock.js';
import type { FromShard, ToShard } from './ipc-messages.js';
import { createPostprocessor } from './postprocessor.js';
import { ShardRuntime } from './shard-runtime.js';

let runtime: ShardRuntime | undefined;

const send = (msg: FromShard): void => {
  if (process.connected) process.send!(msg);
};

process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.on('disconnect', () => process.exit(0));

process.on('message', (msg: ToShard) => {
  switch (msg.t) {
    case 'init': {
      const post = msg.config.postprocess ? createPostprocessor(msg.config.postprocess) : undefined;
      runtime = new ShardRuntime(msg.config, send, monotonicEpochMs, post);
      runtime.start();
      break;
    }
    case 'work':
      runtime?.onWork(msg.items);
      break;
    case 'steal':
      runtime?.giveBack(msg.n);
      break;
    case 'stop':
      void (runtime?.stop(msg.mode) ?? Promise.resolve()).then(() => {
        process.disconnect();
      });
      break;
  }
});
