import type { RejectedLine } from '../../input/request-line.js';
import type { DoneItem } from '../ipc-messages.js';

/** A results.jsonl line without its newline: text, or its UTF-8 bytes (as forked shards send it). */
export type ResultLine = string | Uint8Array;

/**
 * Where results go. The local implementation appends to results.jsonl / rejects.jsonl in the output
 * directory; `doneIds` tells a resumed run what to skip.
 */
export interface ResultSink {
  /** ids that already have a result (from an earlier, interrupted run). */
  doneIds(): Promise<Set<string>>;
  /** `done` is what the shard reported of the request, for a sink that passes it on (a distributed worker's). */
  writeResult(id: string, line: ResultLine, done?: DoneItem): void;
  writeReject(reject: RejectedLine): void;
  flush(): void;
  close(): Promise<void>;
}
