import { monotonicEpochMs } from '../events/clock.js';
import type { FromShard, ToShard } from './ipc-messages.js';
import { createPostprocessor } from './postprocessor.js';
import { ShardRuntime } from './shard-runtime.js';
import type { ShardLauncher } from './shard-link.js';

/**
 * A shard runtime in the coordinator's own process, for a distributed worker with one shard: the
 * worker process is then the unit that fails (its chunks go to another worker when it dies), so a
 * child process would only add an IPC hop — both ways, every request — for isolation the queue
 * already gives. `node bench/distributed.mjs` measures the difference (BENCHMARKS.md, "Distributed").
 * Messages go through microtasks, never synchronously, so neither side re-enters the other.
 */
export const inProcessShard: ShardLauncher = (events) => {
  let runtime: ShardRuntime | undefined;
  let ended = false;
  const end = (code: number | null, signal: NodeJS.Signals | null) => {
    if (ended) return;
    ended = true;
    queueMicrotask(() => events.onExit(code, signal));
  };
  const fromShard = (msg: FromShard) => {
    if (!ended) queueMicrotask(() => !ended && events.onMessage(msg));
  };
  const handle = (msg: ToShard) => {
    if (ended) return;
    switch (msg.t) {
      case 'init': {
        const post = msg.config.postprocess ? createPostprocessor(msg.config.postprocess) : undefined;
        // CPU counted from here: a worker process serves run after run.
        runtime = new ShardRuntime(msg.config, fromShard, monotonicEpochMs, post, process.cpuUsage());
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
        void (runtime?.stop(msg.mode) ?? Promise.resolve()).then(() => end(0, null));
        break;
    }
  };
  return {
    pid: process.pid,
    get connected() {
      return !ended;
    },
    isolated: false,
    send(msg) {
      queueMicrotask(() => handle(msg));
    },
    kill() {
      // Past its drain timeout: drop what is in flight (the chunks' locks hand it to another worker).
      void runtime?.stop('abandon');
      end(null, 'SIGKILL');
    },
  };
};
