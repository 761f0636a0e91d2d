import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { BadInputError } from '../errors.js';
import type { ShardlineEvent } from './event-types.js';
import { mergeInOrder } from './merge-order.js';

/** One event file as the reader sees it. */
export interface EventFile {
  path: string;
  /** Path relative to the run directory (e.g. `events/shard-000.jsonl`), as samples record it. */
  rel: string;
  /** The run directory it belongs to (for multi-run reports). */
  runDir: string;
}

/** Where an event came from, for provenance (1-based line numbers). */
export interface EventOrigin {
  file: EventFile;
  line: number;
}

/**
 * Resolve report arguments (run directories, `events/` directories or single `.jsonl` files) to
 * event files. Throws BadInputError naming an argument that holds none.
 */
export function resolveEventFiles(args: readonly string[]): EventFile[] {
  const files: EventFile[] = [];
  for (const arg of args) {
    if (!existsSync(arg)) throw new BadInputError(`No such run directory or event file: \`${arg}\``);
    if (statSync(arg).isFile()) {
      files.push({ path: arg, rel: arg.split('/').slice(-2).join('/'), runDir: join(arg, '..', '..') });
      continue;
    }
    const dir = existsSync(join(arg, 'events')) ? join(arg, 'events') : arg;
    const runDir = dir === arg ? join(arg, '..') : arg;
    const found = readdirSync(dir)
      .filter((f) => f.endsWith('.jsonl'))
      .sort()
      .map((f) => ({ path: join(dir, f), rel: relative(runDir, join(dir, f)), runDir }));
    if (found.length === 0) throw new BadInputError(`\`${arg}\` holds no event files (expected events/*.jsonl)`);
    files.push(...found);
  }
  return files;
}

class Cursor {
  constructor(
    readonly file: EventFile,
    readonly iter: AsyncIterator<Batch>,
    public batch: Batch,
    public i = 0,
  ) {}

  get ev(): ShardlineEvent {
    return this.batch.events[this.i]!;
  }
}

interface Batch {
  events: ShardlineEvent[];
  lines: number[];
}

/** Malformed lines are skipped and counted, never fatal: a crash can leave a torn last line. */
export interface ReadStats {
  events: number;
  badLines: number;
  bytes: number;
}

/**
 * Stream every event of `files` in timestamp order (each file is sorted; files are k-way merged),
 * calling `onEvent` synchronously. Memory: one batch per file.
 */
export async function readEvents(
  files: readonly EventFile[],
  onEvent: (e: ShardlineEvent, origin: EventOrigin) => void,
): Promise<ReadStats> {
  const stats: ReadStats = { events: 0, badLines: 0, bytes: 0 };
  const cursors: Cursor[] = [];
  for (const file of files) {
    const iter = batches(file.path, stats)[Symbol.asyncIterator]();
    const first = await iter.next();
    if (!first.done) cursors.push(new Cursor(file, iter, first.value));
  }
  const origin: EventOrigin = { file: files[0]!, line: 0 };
  await mergeInOrder(
    cursors,
    (cur) => {
      origin.file = cur.file;
      origin.line = cur.batch.lines[cur.i]!;
      onEvent(cur.ev, origin);
      stats.events++;
    },
    (cur) => (++cur.i < cur.batch.events.length ? true : undefined),
    async (cur) => {
      const next = await cur.iter.next();
      if (next.done) return false;
      cur.batch = next.value;
      cur.i = 0;
      return true;
    },
  );
  return stats;
}

async function* batches(path: string, stats: ReadStats): AsyncGenerator<Batch> {
  let rest = '';
  let lineNo = 0;
  for await (const chunk of createReadStream(path, {
    encoding: 'utf8',
    highWaterMark: 1 << 20,
  }) as AsyncIterable<string>) {
    stats.bytes += Buffer.byteLength(chunk);
    const text = rest + chunk;
    const events: ShardlineEvent[] = [];
    const lines: number[] = [];
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      lineNo++;
      if (nl > start) parseInto(text.slice(start, nl), lineNo, events, lines, stats);
      start = nl + 1;
    }
    rest = text.slice(start);
    if (events.length) yield { events, lines };
  }
  if (rest.length > 0) {
    const events: ShardlineEvent[] = [];
    const lines: number[] = [];
    parseInto(rest, ++lineNo, events, lines, stats);
    if (events.length) yield { events, lines };
  }
}

function parseInto(line: string, lineNo: number, events: ShardlineEvent[], lines: number[], stats: ReadStats): void {
  try {
    const e = JSON.parse(line) as ShardlineEvent;
    if (typeof e.ts !== 'number' || typeof e.type !== 'string') throw new Error('not an event');
    events.push(e);
    lines.push(lineNo);
  } catch {
    stats.badLines++;
  }
}
