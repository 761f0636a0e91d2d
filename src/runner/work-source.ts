import type { RejectedLine, RequestSpec } from '../input/request-line.js';

/**
 * Where requests come from. The local implementation streams a JSONL file; a distributed one pulls
 * from a shared queue. `next()` resolves null when the source is exhausted.
 */
export interface WorkSource {
  next(): Promise<RequestSpec | RejectedLine | null>;
  close(): Promise<void>;
}
