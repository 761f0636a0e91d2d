import { Worker } from 'node:worker_threads';
import { distFile } from '../util/dist-file.js';
import type { DecodeWorkerData, DecodeWorkerMessage, FillRequest } from './decode-worker.js';
import type { EventFile, ReadStats } from './event-reader.js';
import { SlotViews, newSharedSlots } from './shared-slots.js';
import { FlatEvent, ROW_WIDTH } from './flat-event.js';
import { mergeInOrder } from './merge-order.js';

export interface WorkerReadOptions {
  /** Events per shared slot. @default 4096, less with many files (rows for ~64k events in all) */
  slotEvents?: number;
  /** Slots per file: the one being read plus those the reader thread fills ahead. @default 3 */
  slotsPerFile?: number;
  /** Room for ids per slot. @default 64 bytes a slot event */
  idBytes?: number;
}

/** An id longer than a slot's room for ids: read such a log in-process (readFlatEvents). */
export class IdTooLongError extends Error {
  override name = 'IdTooLongError';
}

interface Filled {
  slot: number;
  count: number;
  strings: string[];
}

/** One file as this thread merges it: filled slots in order, and the event at the head. */
interface FileState {
  file: number;
  queue: Filled[];
  at: number;
  asked: number;
  done: boolean;
  ev: FlatEvent;
}

/**
 * readFlatEvents with the decoding on a second thread, so a report uses two cores: the reader
 * thread decodes each file into shared slots this thread asks it to fill (a few ahead per file),
 * and this thread merges the files by time from those slots. Same events in the same order; ids
 * are left as bytes for the consumer to intern; `onEvent`'s event is valid only during the call.
 */
export async function readFlatEventsInWorker(
  files: readonly EventFile[],
  onEvent: (e: FlatEvent) => void,
  options: WorkerReadOptions = {},
): Promise<ReadStats> {
  const stats: ReadStats = { events: 0, badLines: 0, bytes: 0 };
  if (files.length === 0) return stats;
  const perFile = options.slotsPerFile ?? 3;
  // Rows cost 184 bytes an event: with many files, smaller slots keep the total near 12 MB.
  const slotEvents = options.slotEvents ?? Math.max(64, Math.min(4096, Math.floor(65536 / files.length)));
  const shared = newSharedSlots(files.length * perFile, slotEvents, options.idBytes);
  const views = new SlotViews(shared);
  const free = Array.from({ length: shared.slots }, (_, i) => i);
  const workerData: DecodeWorkerData = { files: [...files], slots: shared };
  const worker = new Worker(distFile('events/decode-worker.js'), { workerData });
  const states: FileState[] = files.map((_, file) => ({
    file,
    queue: [],
    at: 0,
    asked: 0,
    done: false,
    ev: new FlatEvent(),
  }));
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  worker.on('message', (m: DecodeWorkerMessage) => {
    if (m.type === 'error') failure ??= m.idTooLong ? new IdTooLongError(m.message) : new Error(m.message);
    else {
      const st = states[m.file]!;
      st.asked--;
      st.done ||= m.done;
      stats.badLines += m.badLines;
      stats.bytes += m.bytes;
      if (m.count > 0) st.queue.push({ slot: m.slot, count: m.count, strings: m.strings });
      else free.push(m.slot);
    }
    notify();
  });
  worker.on('error', (err) => {
    failure ??= err;
    notify();
  });
  worker.on('exit', (code) => {
    failure ??= new Error(`the event reader thread exited (code ${code}) before it finished`);
    notify();
  });

  const ask = (st: FileState) => {
    while (!st.done && st.asked + st.queue.length < perFile) {
      st.asked++;
      worker.postMessage({ file: st.file, slot: free.pop()! } satisfies FillRequest);
    }
  };
  /** Point the file's event at its head, waiting for a slot if needed; false when the file is finished. */
  const head = async (st: FileState): Promise<boolean> => {
    for (;;) {
      if (failure) throw failure;
      const first = st.queue[0];
      if (first) {
        views.view(st.ev, first.slot, st.at, first.strings);
        return true;
      }
      if (st.done && st.asked === 0) return false;
      ask(st);
      await new Promise<void>((resolve) => (wake = resolve));
    }
  };

  try {
    for (const st of states) ask(st);
    const live: FileState[] = [];
    for (const st of states) if (await head(st)) live.push(st);
    await mergeInOrder(
      live,
      (st) => {
        onEvent(st.ev);
        stats.events++;
      },
      (st) => {
        if (++st.at < st.queue[0]!.count) {
          st.ev.base += ROW_WIDTH;
          return true;
        }
        // The slot is read: give it back and ask for the file's next one.
        free.push(st.queue.shift()!.slot);
        st.at = 0;
        ask(st);
        return undefined;
      },
      head,
    );
    if (failure) throw failure;
    return stats;
  } finally {
    await worker.terminate();
  }
}
