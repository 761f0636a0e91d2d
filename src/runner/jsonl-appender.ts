import { closeSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';

/**
 * Appends whole lines to a file, batching the lines of one event-loop turn into one `write`. A line
 * handed to the kernel survives `kill -9` of this process; `repairTail` drops a torn last line left
 * by an earlier crash so every line in the file is whole.
 */
export class JsonlAppender {
  private readonly fd: number;
  private pending: string[] = [];
  private scheduled = false;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'a+');
    this.repairTail();
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

  private repairTail(): void {
    const size = fstatSync(this.fd).size;
    if (size === 0) return;
    const window = Math.min(size, 1 << 20);
    const buf = Buffer.alloc(window);
    readSync(this.fd, buf, 0, window, size - window);
    if (buf[window - 1] === 10) return;
    const lastNl = buf.lastIndexOf(10);
    // No newline in the last MiB either: the whole tail is one torn line, or the file is one line.
    ftruncateSync(this.fd, lastNl === -1 ? size - window : size - window + lastNl + 1);
  }
}
