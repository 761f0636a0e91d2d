/**
 * Entry point of a shard child process (forked by the coordinator with an IPC channel). It ignores
 * terminal signals: the coordinator decides whether to drain or abandon, and kills it if it wedges.
 */
import type { FromShard, ToShard } from '../ipc-messages.js';
import { shardInbox } from './shard-inbox.js';

const send = (msg: FromShard): void => {
  if (process.connected) process.send!(msg);
};

const inbox = shardInbox(send, () => process.disconnect());

process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.on('disconnect', () => process.exit(0));
process.on('message', (msg: ToShard) => inbox.handle(msg));
