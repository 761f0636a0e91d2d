import { MAX_LINE_BYTES, readJsonlLines, type JsonlLine } from '../input/jsonl-lines.js';
import { parseRequestLine, type RejectedLine, type RequestSpec } from '../input/request-line.js';
import type { WorkSource } from './work-source.js';

/**
 * Streams requests from a JSONL file, rejecting malformed lines and duplicate ids (the first
 * occurrence wins) with their line numbers.
 */
export class JsonlWorkSource implements WorkSource {
  private readonly lines: AsyncGenerator<JsonlLine>;
  private readonly seen = new Set<string>();
  /** Physical lines read so far. */
  linesRead = 0;

  constructor(
    path: string,
    private readonly model: string | undefined,
  ) {
    this.lines = readJsonlLines(path, MAX_LINE_BYTES);
  }

  async next(): Promise<RequestSpec | RejectedLine | null> {
    for (;;) {
      const r = await this.lines.next();
      if (r.done) return null;
      this.linesRead = r.value.lineNo;
      const parsed = parseRequestLine(r.value, { model: this.model, maxLineBytes: MAX_LINE_BYTES });
      if (parsed === undefined) continue;
      if ('reason' in parsed) return parsed;
      if (this.seen.has(parsed.id)) {
        return { lineNo: parsed.lineNo, reason: `duplicate id ${JSON.stringify(parsed.id)}`, excerpt: 'text' in r.value ? r.value.text.slice(0, 200) : '' };
      }
      this.seen.add(parsed.id);
      return parsed;
    }
  }

  async close(): Promise<void> {
    await this.lines.return(undefined);
  }
}
