import { fork } from 'node:child_process';
import { distFile } from '../../util/dist-file.js';
import type { FromShard, ToShard } from '../ipc-messages.js';

/** What a shard link reports to the coordinator's handle. */
export interface ShardLinkEvents {
  onMessage(msg: FromShard): void;
  /** The shard ended: exited (a child process) or was stopped or dropped (in process). */
  onExit(code: number | null, signal: NodeJS.Signals | null): void;
}

/** The coordinator's line to one shard runtime, wherever it runs. */
export interface ShardLink {
  readonly pid: number;
  /** Messages can still be sent. */
  readonly connected: boolean;
  /** Can be killed on its own: a wedged in-process shard would have wedged the coordinator too. */
  readonly isolated: boolean;
  send(msg: ToShard): void;
  kill(): void;
}

export type ShardLauncher = (events: ShardLinkEvents) => ShardLink;

/**
 * A shard in its own child process (the default): its own heap and event loop, and a crash or
 * `kill -9` takes down one shard, not the run. Messages cross an IPC channel.
 */
export const forkShard: ShardLauncher = (events) => {
  const child = fork(distFile('runner/shard/shard-main.js'), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // A shard must not inherit a debugger or test-runner loader meant for the coordinator;
    // SHARDLINE_SHARD_NODE_OPTIONS (e.g. `--cpu-prof`) is for profiling shards on purpose.
    execArgv: (process.env.SHARDLINE_SHARD_NODE_OPTIONS ?? '').split(' ').filter(Boolean),
  });
  child.on('message', (msg: FromShard) => events.onMessage(msg));
  child.on('exit', (code, signal) => events.onExit(code, signal));
  child.on('error', () => {
    // 'exit' follows; a send on a dead channel is reported here and handled there.
  });
  return {
    get pid() {
      return child.pid ?? -1;
    },
    get connected() {
      return child.connected;
    },
    isolated: true,
    send(msg) {
      if (child.connected) child.send(msg);
    },
    kill() {
      child.kill('SIGKILL');
    },
  };
};
