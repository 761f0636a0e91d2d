import { closeSync, openSync } from 'node:fs';
import type { OutputWriteError } from '../../errors.js';
import { writeFully } from '../../util/write-fully.js';
import { dropTornTail } from '../../util/torn-tail.js';
import { byteLengthOf, putBytes } from '../../util/put-bytes.js';

/**
 * Appends whole lines to a file, batching the lines of one event-loop turn into one `write`. A line
 * handed to the kernel survives `kill -9` of this process; a torn last line left by an earlier crash
 * is dropped on open, so every line in the file is whole.
 */
export class JsonlAppender {
  private readonly fd: number;
  /** Lines of this turn: text, or UTF-8 bytes written as they came (a forked shard's results). */
  private pending: (string | Uint8Array)[] = [];
  private bytesPending = false;
  private scheduled = false;
  /** The write that failed; from then on nothing more is written (see `onError`). */
  writeError: OutputWriteError | undefined;
  /** Told once when the file cannot be written (a full disk); without it the error is thrown. */
  onError: ((err: OutputWriteError) => void) | undefined;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'a+');
    dropTornTail(this.fd);
  }

  append(line: string | Uint8Array): void {
    if (this.writeError) return;
    this.pending.push(line);
    if (typeof line !== 'string') this.bytesPending = true;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const data = this.bytesPending ? joinLines(this.pending) : `${this.pending.join('\n')}\n`;
    this.pending = [];
    this.bytesPending = false;
    try {
      writeFully(this.fd, data, this.path);
    } catch (err) {
      this.writeError = err as OutputWriteError;
      if (!this.onError) throw err;
      this.onError(this.writeError);
    }
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}

/** Lines, text or bytes, as one buffer with a newline after each. */
function joinLines(lines: readonly (string | Uint8Array)[]): Buffer {
  let total = lines.length;
  for (const l of lines) total += byteLengthOf(l);
  const out = Buffer.allocUnsafe(total);
  let off = 0;
  for (const l of lines) {
    off = putBytes(out, l, off);
    out[off++] = 0x0a;
  }
  return out;
}
