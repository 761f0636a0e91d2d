import { parentPort, workerData } from 'node:worker_threads';
import type { EventFile, ReadStats } from './event-reader.js';
import { SlotViews, type SharedSlots } from './shared-slots.js';
import { EventFileCursor, Step } from './flat-event-reader.js';
import { C_STRINGS, ROW_WIDTH } from './flat-event.js';

/** What the reader thread is started with. */
export interface DecodeWorkerData {
  files: EventFile[];
  slots: SharedSlots;
}

/** Asks for the next events of `file` in `slot`. */
export interface FillRequest {
  file: number;
  slot: number;
}

export type DecodeWorkerMessage =
  | {
      type: 'filled';
      file: number;
      slot: number;
      count: number;
      strings: string[];
      done: boolean;
      badLines: number;
      bytes: number;
    }
  | { type: 'error'; message: string; idTooLong?: boolean };

// Entry of the reader thread: decode files into the slots the consumer asks to have filled, one
// request at a time, in the order asked.
const data = workerData as DecodeWorkerData;
const port = parentPort!;
const views = new SlotViews(data.slots);
const cursors: (EventFileCursor | undefined)[] = [];
/** A decoded event that did not fit its slot (ids full), to open the file's next slot. */
const carried: boolean[] = [];
const finished: boolean[] = [];
const queue: FillRequest[] = [];
let busy = false;

port.on('message', (req: FillRequest) => {
  queue.push(req);
  if (!busy) void drain();
});

async function drain(): Promise<void> {
  busy = true;
  try {
    for (let req = queue.shift(); req !== undefined; req = queue.shift()) port.postMessage(await fill(req));
  } catch (err) {
    port.postMessage({
      type: 'error',
      message: err instanceof Error ? err.message : String(err),
    } satisfies DecodeWorkerMessage);
  }
  busy = false;
}

async function fill({ file, slot }: FillRequest): Promise<DecodeWorkerMessage> {
  const stats: ReadStats = { events: 0, badLines: 0, bytes: 0 };
  if (finished[file]) return { type: 'filled', file, slot, count: 0, strings: [], done: true, badLines: 0, bytes: 0 };
  const cur = (cursors[file] ??= await EventFileCursor.open(data.files[file]!.path));
  const ev = cur.ev;
  const strings: string[] = [];
  let count = 0;
  let idLen = 0;
  let done = false;
  if (carried[file]) {
    // The event decoded last time, whose id did not fit that slot, opens this one.
    carried[file] = false;
    const to = views.rowBase(slot, 0);
    for (let c = 0; c < ROW_WIDTH; c++) views.rows[to + c] = views.rows[ev.base + c]!;
    const at = views.rows[to + C_STRINGS]!;
    if (at >= 0) {
      views.rows[to + C_STRINGS] = 0;
      strings.push(ev.strings[at]!, ev.strings[at + 1]!, ev.strings[at + 2]!);
    }
    ev.base = to;
    idLen = views.moveId(ev, slot, 0);
    if (idLen < 0) {
      return {
        type: 'error',
        idTooLong: true,
        message: `an id in ${data.files[file]!.rel} is longer than a slot's ${data.slots.idBytes} bytes for ids`,
      };
    }
    count = 1;
  }
  ev.rows = views.rows;
  ev.strings = strings;
  while (count < data.slots.slotEvents) {
    ev.base = views.rowBase(slot, count);
    let step = cur.step(stats);
    while (step === Step.NeedBytes) {
      await cur.refill(stats);
      step = cur.step(stats);
    }
    if (step === Step.Done) {
      done = finished[file] = true;
      await cur.close();
      break;
    }
    const moved = views.moveId(ev, slot, idLen);
    if (moved < 0) {
      carried[file] = true;
      break;
    }
    idLen = moved;
    count++;
  }
  return { type: 'filled', file, slot, count, strings, done, badLines: stats.badLines, bytes: stats.bytes };
}
