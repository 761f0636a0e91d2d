import type { FromShard } from '../ipc-messages.js';
import { shardInbox } from './shard-inbox.js';
import type { ShardLauncher } from './shard-link.js';

/**
 * A shard runtime in the coordinator's own process, for a distributed worker with one shard: the
 * worker process is then the unit that fails (its chunks go to another worker when it dies), so a
 * child process would only add an IPC hop — both ways, every request — for isolation the queue
 * already gives. `node bench/distributed.mjs` measures the difference (BENCHMARKS.md, "Distributed").
 * Messages go through microtasks, never synchronously, so neither side re-enters the other.
 */
export const inProcessShard: ShardLauncher = (events) => {
  let ended = false;
  const end = (code: number | null, signal: NodeJS.Signals | null) => {
    if (ended) return;
    ended = true;
    queueMicrotask(() => events.onExit(code, signal));
  };
  const fromShard = (msg: FromShard) => {
    if (!ended) queueMicrotask(() => !ended && events.onMessage(msg));
  };
  // CPU counted from init: a worker process serves run after run.
  const inbox = shardInbox(
    fromShard,
    () => end(0, null),
    () => process.cpuUsage(),
  );
  return {
    pid: process.pid,
    get connected() {
      return !ended;
    },
    isolated: false,
    send(msg) {
      queueMicrotask(() => !ended && inbox.handle(msg));
    },
    kill() {
      // Past its drain timeout: drop what is in flight (the chunks' locks hand it to another worker).
      void inbox.runtime?.stop('abandon');
      end(null, 'SIGKILL');
    },
  };
};
