import { parentPort, workerData } from 'node:worker_threads';
import type { EventFile, ReadStats } from './event-reader.js';
import { BatchWriter, type SharedBatches } from './flat-event-batch.js';
import { readFlatEvents } from './flat-event-reader.js';

/** What the reader thread is started with. */
export interface DecodeWorkerData {
  files: EventFile[];
  batches: SharedBatches;
}

export type DecodeWorkerMessage =
  | { type: 'batch'; slot: number; count: number; strings: string[] }
  | { type: 'end'; stats: ReadStats }
  | { type: 'error'; message: string };

// Entry of the reader thread: decode and merge the files (readFlatEvents) into shared slots and
// say each time one is full.
const data = workerData as DecodeWorkerData;
const port = parentPort!;
const out = new BatchWriter(data.batches);

function send(): void {
  if (out.count === 0) return;
  port.postMessage({ type: 'batch', ...out.seal() } satisfies DecodeWorkerMessage);
  // Blocks this thread (never the consumer's) while every slot is in use: memory stays bounded
  // however large the log is.
  out.waitFree();
}

try {
  const stats = await readFlatEvents(data.files, (ev) => {
    if (!out.fits(ev)) send();
    out.add(ev);
  });
  send();
  port.postMessage({ type: 'end', stats } satisfies DecodeWorkerMessage);
} catch (err) {
  port.postMessage({ type: 'error', message: err instanceof Error ? err.message : String(err) } satisfies DecodeWorkerMessage);
}
