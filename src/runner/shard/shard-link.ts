import { fork } from 'node:child_process';
import type { Readable } from 'node:stream';
import { distFile } from '../../util/dist-file.js';
import type { FromShard, ToShard } from '../ipc-messages.js';
import { FrameReader, SHARD_DATA_FD } from './shard-frames.js';

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
 * `kill -9` takes down one shard, not the run. The coordinator's messages cross the IPC channel; the
 * shard's come back as frames on a pipe (shard-frames.ts), result lines as raw bytes.
 */
export const forkShard: ShardLauncher = (events) => {
  const stdio: ('ignore' | 'inherit' | 'ipc' | 'pipe')[] = ['ignore', 'inherit', 'inherit', 'ipc'];
  while (stdio.length < SHARD_DATA_FD) stdio.push('ignore');
  stdio[SHARD_DATA_FD] = 'pipe';
  const child = fork(distFile('runner/shard/shard-main.js'), [], {
    stdio,
    // A shard must not inherit a debugger or test-runner loader meant for the coordinator;
    // SHARDLINE_SHARD_NODE_OPTIONS (e.g. `--cpu-prof`) is for profiling shards on purpose.
    execArgv: (process.env.SHARDLINE_SHARD_NODE_OPTIONS ?? '').split(' ').filter(Boolean),
  });
  // The shard's last messages can still be in the pipe when its exit is seen: the exit is told
  // once both have ended, so nothing it sent before dying is lost (or counted after its end).
  let exit: [number | null, NodeJS.Signals | null] | undefined;
  let dataEnded = false;
  const maybeEnd = () => {
    if (exit && dataEnded) events.onExit(...exit);
  };
  const reader = new FrameReader((msg) => events.onMessage(msg));
  const data = child.stdio[SHARD_DATA_FD] as Readable | null;
  if (!data) dataEnded = true; // the process could not be spawned at all: 'exit' alone tells it
  data?.on('data', (chunk: Buffer) => reader.push(chunk));
  data?.on('error', () => {});
  data?.on('close', () => {
    dataEnded = true;
    maybeEnd();
  });
  child.on('exit', (code, signal) => {
    exit = [code, signal];
    maybeEnd();
  });
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
