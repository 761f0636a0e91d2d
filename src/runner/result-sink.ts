import type { RejectedLine } from '../input/request-line.js';

/**
 * Where results go. The local implementation appends to results.jsonl / rejects.jsonl in the output
 * directory; `doneIds` tells a resumed run what to skip.
 */
export interface ResultSink {
  /** ids that already have a result (from an earlier, interrupted run). */
  doneIds(): Promise<Set<string>>;
  writeResult(id: string, line: string): void;
  writeReject(reject: RejectedLine): void;
  flush(): void;
  close(): Promise<void>;
}
