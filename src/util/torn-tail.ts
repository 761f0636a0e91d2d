import { fstatSync, ftruncateSync, readSync } from 'node:fs';

/**
 * Drop a torn last line from a JSONL file opened for appending: a `kill -9` during a large write can
 * leave a line without its newline, and the next run's first append would be glued onto it (one
 * malformed line where a whole record should be). Only the unterminated fragment is removed.
 */
export function dropTornTail(fd: number): void {
  const size = fstatSync(fd).size;
  if (size === 0) return;
  const window = Math.min(size, 1 << 20);
  const buf = Buffer.alloc(window);
  readSync(fd, buf, 0, window, size - window);
  if (buf[window - 1] === 10) return;
  const lastNl = buf.lastIndexOf(10);
  // No newline in the last MiB either: the whole tail is one torn line, or the file is one line.
  ftruncateSync(fd, lastNl === -1 ? size - window : size - window + lastNl + 1);
}
