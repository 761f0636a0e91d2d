import { fstatSync, ftruncateSync, writeSync } from 'node:fs';
import { OutputWriteError } from '../errors.js';

/** What to say for each way a write into the run directory can be refused. */
const REASONS: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EFBIG: 'file too large',
  EIO: 'I/O error',
};

/**
 * Write all of `data` at the file's end, or throw an OutputWriteError naming `path`. Why a loop:
 * `writeSync` of a string writes once and returns the count, and on a filling disk that count can
 * be short with no error (the error comes on the next write): a line would be torn in silence and
 * the caller would go on as if it were on disk. The file must be appended to by this process alone.
 */
export function writeFully(fd: number, data: string | Uint8Array, path: string): void {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  let off = 0;
  try {
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
  } catch (cause) {
    // What did go in is a torn line: take it back (truncating needs no space), so the file holds
    // whole lines only and a reader never sees half a record.
    if (off > 0) {
      try {
        ftruncateSync(fd, fstatSync(fd).size - off);
      } catch {
        // the next open drops a torn tail anyway (dropTornTail)
      }
    }
    throw outputWriteError(path, cause);
  }
}

/** The error for a refused write to `path` in the run directory: which file, why, and what to do. */
export function outputWriteError(path: string, cause: unknown): OutputWriteError {
  const code = (cause as NodeJS.ErrnoException)?.code ?? '';
  const why = REASONS[code] ?? ((cause as Error)?.message || String(cause));
  const todo =
    code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
      ? 'make the output directory writable (or choose another --out)'
      : 'free some space (or choose an --out on a disk with room)';
  return new OutputWriteError(
    `cannot write ${path}: ${why}${code ? ` (${code})` : ''}. The run stopped with nothing half-recorded: ${todo} ` +
      `and run the same command again; it resumes where it stopped`,
    { cause },
  );
}
