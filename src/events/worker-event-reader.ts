import { Worker } from 'node:worker_threads';
import { distFile } from '../util/dist-file.js';
import type { DecodeWorkerData, DecodeWorkerMessage } from './decode-worker.js';
import type { EventFile, ReadStats } from './event-reader.js';
import { BatchReader, newSharedBatches } from './flat-event-batch.js';
import { FlatEvent } from './flat-event.js';

export interface WorkerReadOptions {
  /** Events per shared slot. @default 4096 */
  slotEvents?: number;
  /** Slots: how far the reader thread may run ahead. @default 8 */
  slots?: number;
}

/**
 * readFlatEvents on a second thread: it decodes and merges the files while this thread consumes,
 * so a report uses two cores. Same events in the same order, ids left as bytes for the consumer
 * to intern; `onEvent`'s event is valid only during the call.
 */
export function readFlatEventsInWorker(files: readonly EventFile[], onEvent: (e: FlatEvent) => void, options: WorkerReadOptions = {}): Promise<ReadStats> {
  const batches = newSharedBatches(options.slots ?? 8, options.slotEvents ?? 4096);
  const workerData: DecodeWorkerData = { files: [...files], batches };
  const worker = new Worker(distFile('events/decode-worker.js'), { workerData });
  const reader = new BatchReader(batches);
  const ev = new FlatEvent();
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (err: Error | undefined, stats?: ReadStats) => {
      if (settled) return;
      settled = true;
      void worker.terminate();
      if (err) reject(err);
      else resolve(stats!);
    };
    worker.on('message', (m: DecodeWorkerMessage) => {
      try {
        if (m.type === 'batch') {
          for (let i = 0; i < m.count; i++) {
            reader.view(m.slot, i, m.strings, ev);
            onEvent(ev);
          }
          reader.free(m.slot);
        } else if (m.type === 'end') settle(undefined, m.stats);
        else settle(new Error(m.message));
      } catch (err) {
        settle(err instanceof Error ? err : new Error(String(err)));
      }
    });
    worker.on('error', (err) => settle(err));
    worker.on('exit', (code) => settle(new Error(`the event reader thread exited (code ${code}) before it finished`)));
  });
}
