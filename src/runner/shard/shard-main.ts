/**
 * Entry point of a shard child process (forked by the coordinator with an IPC channel for its
 * messages and a pipe for the shard's, see shard-frames.ts). It ignores terminal signals: the
 * coordinator decides whether to drain or abandon, and kills it if it wedges.
 */
import { Socket } from 'node:net';
import type { FromShard, ToShard } from '../ipc-messages.js';
import { encodeFrame, SHARD_DATA_FD } from './shard-frames.js';
import { shardInbox } from './shard-inbox.js';

const data = new Socket({ fd: SHARD_DATA_FD, readable: false, writable: true });
// The coordinator gone mid-write: nobody reads the results any more; 'disconnect' ends the process.
data.on('error', () => {});

const send = (msg: FromShard): void => {
  if (process.connected && data.writable) data.write(encodeFrame(msg));
};

// Everything written reaches the coordinator before the shard lets go of the channel.
const inbox = shardInbox(send, () => data.end(() => process.connected && process.disconnect()));

process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.on('disconnect', () => process.exit(0));
process.on('message', (msg: ToShard) => inbox.handle(msg));
