import { monotonicEpochMs } from '../../util/clock.js';
import type { FromShard, ToShard } from '../ipc-messages.js';
import { createPostprocessor } from '../output/postprocessor.js';
import { ShardRuntime } from './shard-runtime.js';

/** What a shard does with each coordinator message, wherever it runs. */
export interface ShardInbox {
  handle(msg: ToShard): void;
  /** The runtime once `init` has arrived. */
  readonly runtime: ShardRuntime | undefined;
}

/**
 * The shard's side of the coordinator protocol, shared by the forked child (`shard-main`) and the
 * one shard of a one-shard worker (DirectShard): `init` builds the runtime, `work` and `steal` feed it,
 * `stop` drains or abandons it and then calls `onStopped`. `cpuSince` is the CPU baseline for the
 * shard's gauges (a worker process serves run after run; a child counts from its start).
 */
export function shardInbox(
  send: (msg: FromShard) => void,
  onStopped: () => void,
  cpuSince?: () => NodeJS.CpuUsage,
): ShardInbox {
  let runtime: ShardRuntime | undefined;
  return {
    get runtime() {
      return runtime;
    },
    handle(msg) {
      switch (msg.t) {
        case 'init': {
          const post = msg.config.postprocess ? createPostprocessor(msg.config.postprocess) : undefined;
          runtime = new ShardRuntime(msg.config, send, monotonicEpochMs, post, cpuSince?.());
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
          void (runtime?.stop(msg.mode) ?? Promise.resolve()).then(onStopped);
          break;
      }
    },
  };
}
