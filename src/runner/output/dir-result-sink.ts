import { existsSync, truncateSync } from 'node:fs';
import { ensureDir } from '../../util/ensure-dir.js';
import { join } from 'node:path';
import { readResults, RESULTS_FILE } from '../../events/results-file.js';
import type { RejectedLine } from '../../input/request-line.js';
import { JsonlAppender } from './jsonl-appender.js';
import type { ResultLine, ResultSink } from './result-sink.js';

/** results.jsonl and rejects.jsonl in the run directory. */
export class DirResultSink implements ResultSink {
  private readonly results: JsonlAppender;
  private readonly rejects: JsonlAppender;

  constructor(readonly dir: string) {
    ensureDir(dir);
    const rejectsPath = join(dir, 'rejects.jsonl');
    // The input is unchanged on resume, so its rejects are found again: start the file afresh.
    if (existsSync(rejectsPath)) truncateSync(rejectsPath, 0);
    this.results = new JsonlAppender(join(dir, RESULTS_FILE));
    this.rejects = new JsonlAppender(rejectsPath);
  }

  /** Told once when results.jsonl or rejects.jsonl cannot be written; nothing more is written then. */
  set onError(handler: (err: Error) => void) {
    this.results.onError = handler;
    this.rejects.onError = handler;
  }

  async doneIds(): Promise<Set<string>> {
    const ids = new Set<string>();
    // A result over the input's 1 MiB line limit is still a result: skipping it would run it twice.
    for await (const r of readResults(this.results.path)) ids.add(r.id);
    return ids;
  }

  writeResult(_id: string, line: ResultLine): void {
    this.results.append(line);
  }

  writeReject(r: RejectedLine): void {
    this.rejects.append(JSON.stringify({ line: r.lineNo, reason: r.reason, excerpt: r.excerpt }));
  }

  flush(): void {
    this.results.flush();
    this.rejects.flush();
  }

  async close(): Promise<void> {
    this.results.close();
    this.rejects.close();
  }
}
