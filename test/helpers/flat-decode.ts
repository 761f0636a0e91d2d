import { FlatEvent, fillFromObject } from '../../src/events/flat-event.js';
import { decodeFlatLine as decodeBytes } from '../../src/events/flat-line-decoder.js';

/**
 * One event line decoded both ways the report reads lines: from its bytes (the fast path) and from
 * JSON.parse (the fallback). Throws when the fast path hands the line back.
 */
export function decodeFlatLine(line: string): { fast: FlatEvent; slow: FlatEvent } {
  const buf = Buffer.from(line);
  const fast = new FlatEvent();
  fast.idBuf = buf;
  if (decodeBytes(buf, 0, buf.length, fast) < 0) throw new Error(`the byte decoder handed back: ${line}`);
  const slow = new FlatEvent();
  if (!fillFromObject(JSON.parse(line), slow)) throw new Error(`not an event: ${line}`);
  return { fast, slow };
}
