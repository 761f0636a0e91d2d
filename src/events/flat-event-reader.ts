import { open, type FileHandle } from 'node:fs/promises';
import type { EventFile, ReadStats } from './event-reader.js';
import { FlatEvent, fillFromObject } from './flat-event.js';
import { decodeFlatLine } from './flat-line-decoder.js';

const NEWLINE = 0x0a;

/** One file being read: a window of its bytes and the event decoded from its next line. */
interface Cursor {
  fh: FileHandle;
  buf: Buffer;
  /** Start of the next undecoded line in buf. */
  pos: number;
  /** End of the valid bytes in buf. */
  end: number;
  eof: boolean;
  ev: FlatEvent;
}

const enum Step {
  Ready,
  NeedBytes,
  Done,
}

/**
 * Stream every event of `files` in timestamp order into `onEvent`: the report's reader. Same order
 * as readEvents (each file is sorted; files are k-way merged, a file drained while its next event
 * is not later than any other file's), but
 * lines are decoded from bytes into one reused FlatEvent per file, so `onEvent` must copy what it
 * keeps before returning. Ids are left as bytes (`idBuf`, `idStart`, `idEnd`): the consumer
 * interns them (see IdInterner), on whichever thread aggregates. Malformed lines are counted in `badLines` and skipped. Memory: one
 * window per file (`windowBytes`, default 1 MiB; doubled while a single line is longer).
 */
export async function readFlatEvents(
  files: readonly EventFile[],
  onEvent: (e: FlatEvent) => void,
  windowBytes = 1 << 20,
): Promise<ReadStats> {
  const stats: ReadStats = { events: 0, badLines: 0, bytes: 0 };
  const opened: Cursor[] = [];
  try {
    const live: Cursor[] = [];
    for (const file of files) {
      const cur: Cursor = { fh: await open(file.path, 'r'), buf: Buffer.allocUnsafe(windowBytes), pos: 0, end: 0, eof: false, ev: new FlatEvent() };
      opened.push(cur);
      if (await fill(cur, stats)) live.push(cur);
    }
    while (live.length > 0) {
      let best = 0;
      let bestTs = live[0]!.ev.ts;
      for (let c = 1; c < live.length; c++) {
        const ts = live[c]!.ev.ts;
        if (ts < bestTs) {
          best = c;
          bestTs = ts;
        }
      }
      // Drain this file while it stays the earliest, without rescanning the others each time.
      let limit = Infinity;
      for (let c = 0; c < live.length; c++) if (c !== best && live[c]!.ev.ts < limit) limit = live[c]!.ev.ts;
      const cur = live[best]!;
      for (;;) {
        onEvent(cur.ev);
        stats.events++;
        const step = next(cur, stats);
        const more = step === Step.Ready || (step === Step.NeedBytes && (await fill(cur, stats)));
        if (!more) live.splice(best, 1);
        if (!more || cur.ev.ts > limit) break;
      }
    }
    return stats;
  } finally {
    await Promise.all(opened.map((c) => c.fh.close()));
  }
}

/** Decode the next event, reading more of the file as needed; false at its end. */
async function fill(cur: Cursor, stats: ReadStats): Promise<boolean> {
  for (;;) {
    const step = next(cur, stats);
    if (step === Step.Ready) return true;
    if (step === Step.Done) return false;
    if (cur.pos > 0) {
      cur.buf.copyWithin(0, cur.pos, cur.end);
      cur.end -= cur.pos;
      cur.pos = 0;
    }
    if (cur.end === cur.buf.length) {
      const bigger = Buffer.allocUnsafe(cur.buf.length * 2);
      cur.buf.copy(bigger, 0, 0, cur.end);
      cur.buf = bigger;
    }
    const { bytesRead } = await cur.fh.read(cur.buf, cur.end, cur.buf.length - cur.end, null);
    if (bytesRead === 0) cur.eof = true;
    cur.end += bytesRead;
    stats.bytes += bytesRead;
  }
}

/** Decode the next non-empty line in the window, skipping (and counting) malformed ones. */
function next(cur: Cursor, stats: ReadStats): Step {
  const buf = cur.buf;
  for (;;) {
    const start = cur.pos;
    if (start >= cur.end) return cur.eof ? Step.Done : Step.NeedBytes;
    // The decoder finds where the object closes, so the usual line needs no separate newline scan.
    const after = decodeFlatLine(buf, start, cur.end, cur.ev);
    if (after >= 0 && after < cur.end && buf[after] === NEWLINE) {
      cur.pos = after + 1;
      return Step.Ready;
    }
    if (after === cur.end && cur.eof) {
      cur.pos = after;
      return Step.Ready;
    }
    let nl = buf.indexOf(NEWLINE, start);
    if (nl === -1 || nl >= cur.end) {
      if (!cur.eof) return Step.NeedBytes;
      // A last line without a newline (a crash can tear it; JSON.parse then rejects it).
      nl = cur.end;
    }
    cur.pos = nl + 1;
    if (nl === start) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(buf.toString('utf8', start, nl));
    } catch {
      parsed = undefined;
    }
    if (fillFromObject(parsed, cur.ev)) return Step.Ready;
    stats.badLines++;
  }
}
