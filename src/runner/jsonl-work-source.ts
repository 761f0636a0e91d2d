import { MAX_LINE_BYTES, readJsonlLines, type JsonlLine } from '../input/jsonl-lines.js';
import { parseRequestLine, type RejectedLine, type RequestSpec } from '../input/request-line.js';
import { IdInterner } from '../events/id-interner.js';
import type { WorkSource } from './work-source.js';
import type { EndpointKind } from '../client/endpoints.js';

/**
 * Streams requests from a JSONL file, rejecting malformed lines and duplicate ids (the first
 * occurrence wins) with their line numbers.
 */
export class JsonlWorkSource implements WorkSource {
  private readonly lines: AsyncGenerator<JsonlLine>;
  /**
   * Ids seen so far, for duplicates. Not a Set<string>: on a million-request job that set was the
   * largest live object in the coordinator's heap, and V8 grows a heap in proportion to what lives
   * in it (bench/scale.mjs: coordinator peak RSS 310 MB at 1 M requests). The interner keeps the ids
   * as bytes in typed arrays outside the JS heap, about 30 bytes an id.
   */
  private readonly seen = new IdInterner(1 << 16);
  /** Physical lines read so far. */
  linesRead = 0;

  constructor(
    path: string,
    private readonly model: string | undefined,
    /** The endpoint of bare bodies without `messages` (`--url`). @default chat */
    private readonly url?: { kind: EndpointKind; path: string },
  ) {
    this.lines = readJsonlLines(path, MAX_LINE_BYTES);
  }

  async next(): Promise<RequestSpec | RejectedLine | null> {
    for (;;) {
      const r = await this.lines.next();
      if (r.done) return null;
      this.linesRead = r.value.lineNo;
      const parsed = parseRequestLine(r.value, { model: this.model, maxLineBytes: MAX_LINE_BYTES, url: this.url });
      if (parsed === undefined) continue;
      if ('reason' in parsed) return parsed;
      const before = this.seen.size;
      this.seen.internString(parsed.id);
      if (this.seen.size === before) {
        return {
          lineNo: parsed.lineNo,
          reason: `duplicate id ${JSON.stringify(parsed.id)}`,
          excerpt: 'text' in r.value ? r.value.text.slice(0, 200) : '',
        };
      }
      return parsed;
    }
  }

  async close(): Promise<void> {
    await this.lines.return(undefined);
  }
}
