import { open, type FileHandle } from 'node:fs/promises';
import type { EventFile, ReadStats } from './event-reader.js';
import { FlatEvent, fillFromObject } from './flat-event.js';
import { decodeFlatLine } from './flat-line-decoder.js';
import { mergeInOrder } from './merge-order.js';

const NEWLINE = 0x0a;

export const enum Step {
  Ready,
  NeedBytes,
  Done,
}

/**
 * Reads one event file a window at a time and decodes its lines, one per `step()`, into `ev` —
 * its own row, or any row the caller points `ev` at (`ev.rows`, `ev.base`). Malformed lines are
 * counted in `stats.badLines` and skipped; a torn last line (a crash) is one of them.
 */
export class EventFileCursor {
  readonly ev = new FlatEvent();
  private buf: Buffer;
  /** Start of the next undecoded line in buf. */
  private pos = 0;
  /** End of the valid bytes in buf. */
  private end = 0;
  private eof = false;

  private constructor(
    private readonly fh: FileHandle,
    windowBytes: number,
  ) {
    this.buf = Buffer.allocUnsafe(windowBytes);
  }

  /** Open `path` with a read window of `windowBytes` (default 1 MiB; doubled while a line is longer). */
  static async open(path: string, windowBytes = 1 << 20): Promise<EventFileCursor> {
    return new EventFileCursor(await open(path, 'r'), windowBytes);
  }

  /** Decode the next line in the window into `ev`, or say that more bytes (refill) or none are left. */
  step(stats: ReadStats): Step {
    const buf = this.buf;
    for (;;) {
      let nl = buf.indexOf(NEWLINE, this.pos);
      if (nl === -1 || nl >= this.end) {
        if (!this.eof) return Step.NeedBytes;
        // A last line without a newline (a crash can tear it; JSON.parse then rejects it).
        if (this.pos >= this.end) return Step.Done;
        nl = this.end;
      }
      const start = this.pos;
      this.pos = nl + 1;
      if (nl === start) continue;
      if (decodeFlatLine(buf, start, nl, this.ev) === nl) return Step.Ready;
      let parsed: unknown;
      try {
        parsed = JSON.parse(buf.toString('utf8', start, nl));
      } catch {
        parsed = undefined;
      }
      if (fillFromObject(parsed, this.ev)) return Step.Ready;
      stats.badLines++;
    }
  }

  /** Read more of the file into the window (keeping the unfinished line). */
  async refill(stats: ReadStats): Promise<void> {
    if (this.pos > 0) {
      this.buf.copyWithin(0, this.pos, this.end);
      this.end -= this.pos;
      this.pos = 0;
    }
    if (this.end === this.buf.length) {
      const bigger = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf.copy(bigger, 0, 0, this.end);
      this.buf = bigger;
    }
    const { bytesRead } = await this.fh.read(this.buf, this.end, this.buf.length - this.end, null);
    if (bytesRead === 0) this.eof = true;
    this.end += bytesRead;
    stats.bytes += bytesRead;
  }

  /** Decode the next event into `ev`, reading as needed; false at the end of the file. */
  async next(stats: ReadStats): Promise<boolean> {
    for (;;) {
      const step = this.step(stats);
      if (step !== Step.NeedBytes) return step === Step.Ready;
      await this.refill(stats);
    }
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

/**
 * Stream every event of `files` in timestamp order into `onEvent`: the report's reader. Same order
 * as readEvents (each file is sorted; files are k-way merged, a file drained while its next event
 * is not later than any other file's). Lines are decoded from bytes into one reused FlatEvent per
 * file, so `onEvent` must copy what it keeps before returning; ids are left as bytes (`idBuf`,
 * `idStart`, `idEnd`) for the consumer to intern. Memory: one window per file.
 */
export async function readFlatEvents(
  files: readonly EventFile[],
  onEvent: (e: FlatEvent) => void,
  windowBytes = 1 << 20,
): Promise<ReadStats> {
  const stats: ReadStats = { events: 0, badLines: 0, bytes: 0 };
  const opened: EventFileCursor[] = [];
  try {
    const live: EventFileCursor[] = [];
    for (const file of files) {
      const cur = await EventFileCursor.open(file.path, windowBytes);
      opened.push(cur);
      if (await cur.next(stats)) live.push(cur);
    }
    await mergeInOrder(
      live,
      (cur) => {
        onEvent(cur.ev);
        stats.events++;
        // Strings of the event just handed over are no longer needed.
        if (cur.ev.strings.length > 0) cur.ev.strings.length = 0;
      },
      (cur) => {
        const step = cur.step(stats);
        return step === Step.NeedBytes ? undefined : step === Step.Ready;
      },
      (cur) => cur.next(stats),
    );
    return stats;
  } finally {
    await Promise.all(opened.map((c) => c.close()));
  }
}
