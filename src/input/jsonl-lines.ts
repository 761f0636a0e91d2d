import { createReadStream } from 'node:fs';

/** One physical line of a JSONL file. */
export type JsonlLine =
  { lineNo: number; text: string; bytes: number } | { lineNo: number; tooLong: true; bytes: number };

/** Lines longer than this are reported, not buffered. @default 1 MiB */
export const MAX_LINE_BYTES = 1024 * 1024;

/**
 * Stream a JSONL file line by line without ever holding more than one line (≤ maxLineBytes) in
 * memory. Line numbers start at 1; a final line without a newline counts; `\r\n` and a leading UTF-8
 * byte-order mark are accepted.
 * Over-long lines are yielded as `{tooLong: true}` after skipping to their end.
 */
export async function* readJsonlLines(path: string, maxLineBytes = MAX_LINE_BYTES): AsyncGenerator<JsonlLine> {
  const stream = createReadStream(path, { highWaterMark: 256 * 1024 });
  let parts: Buffer[] = [];
  let partBytes = 0;
  let skipping = false;
  let lineNo = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(10, start);
      const end = nl === -1 ? chunk.length : nl;
      const piece = chunk.subarray(start, end);
      if (!skipping) {
        if (partBytes + piece.length > maxLineBytes) {
          skipping = true;
          parts = [];
        } else if (piece.length > 0) {
          parts.push(piece);
        }
      }
      partBytes += piece.length;
      if (nl === -1) break;
      lineNo++;
      yield finishLine(lineNo, parts, partBytes, skipping);
      parts = [];
      partBytes = 0;
      skipping = false;
      start = nl + 1;
    }
  }
  if (partBytes > 0 || skipping) yield finishLine(++lineNo, parts, partBytes, skipping);
}

function finishLine(lineNo: number, parts: Buffer[], bytes: number, tooLong: boolean): JsonlLine {
  if (tooLong) return { lineNo, tooLong: true, bytes };
  let text = parts.length === 1 ? parts[0]!.toString('utf8') : Buffer.concat(parts).toString('utf8');
  if (text.endsWith('\r')) text = text.slice(0, -1);
  // A byte-order mark (Windows editors write one) is not part of the first request.
  if (lineNo === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return { lineNo, text, bytes };
}
