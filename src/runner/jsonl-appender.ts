import { closeSync, openSync, writeSync } from 'node:fs';
import { dropTornTail } from '../util/torn-tail.js';

/**
 * Appends whole lines to a file, batching the lines of one event-loop turn into one `write`. A line
 * handed to the kernel survives `kill -9` of this process; a torn last line left by an earlier crash
 * is dropped on open, so every line in the file is whole.
 */
export class JsonlAppender {
  private readonly fd: number;
  private pending: string[] = [];
  private scheduled = false;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'a+');
    dropTornTail(this.fd);
  }

  append(line: string): void {
    this.pending.push(line);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const text = `${this.pending.join('\n')}\n`;
    this.pending = [];
    writeSync(this.fd, text);
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}
