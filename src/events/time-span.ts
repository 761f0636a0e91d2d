import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { EventFile } from './event-reader.js';

const EDGE_BYTES = 8192;
const TS = /"ts":(\d+(?:\.\d+)?)/g;

/**
 * The earliest and latest event timestamps across `files`, from each file's first and last few
 * KiB only (events are appended in time order per file), without reading the files through.
 * What a report's progress is measured against, since the merged read advances in time order.
 * undefined when no timestamp is found.
 */
export function eventTimeSpan(files: readonly EventFile[]): { startMs: number; endMs: number } | undefined {
  let startMs = Infinity;
  let endMs = -Infinity;
  const buf = Buffer.alloc(EDGE_BYTES);
  for (const f of files) {
    const fd = openSync(f.path, 'r');
    try {
      const size = fstatSync(fd).size;
      const head = buf.toString('latin1', 0, readSync(fd, buf, 0, EDGE_BYTES, 0));
      const first = TS.exec(head);
      TS.lastIndex = 0;
      if (first) startMs = Math.min(startMs, Number(first[1]));
      const tail = buf.toString('latin1', 0, readSync(fd, buf, 0, EDGE_BYTES, Math.max(0, size - EDGE_BYTES)));
      for (const m of tail.matchAll(TS)) endMs = Math.max(endMs, Number(m[1]));
    } finally {
      closeSync(fd);
    }
  }
  return Number.isFinite(startMs) && Number.isFinite(endMs) && endMs >= startMs ? { startMs, endMs } : undefined;
}
