import { createHash, type Hash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';

/** A counted `request_end` line: where it is and what it says. */
export interface CountedLine {
  file: string;
  line: number;
  text: string;
  tokens: number;
  shard: number;
}

export interface FileScan {
  /** Path relative to the run directory. */
  path: string;
  bytes: number;
  lines: number;
  sha256: string;
}

/** Everything a sample needs of one minute, gathered in the same pass as the file hashes. */
export interface MinuteTally {
  tokens: number;
  perShard: Record<string, number>;
  refs: { file: string; line: number }[];
  /** sha256 over the counted lines, each + "\n", in canonical order (see countedLinesSha256). */
  sha256: Hash;
}

export interface ScanResult {
  files: FileScan[];
  runIds: Set<string>;
  minTs: number;
  maxTs: number;
  /** Completion tokens of succeeded request_end per UTC minute. */
  minuteTokens: Map<number, number>;
  /** Counted lines of the minute asked for (if any). */
  counted: CountedLine[];
  /** With `tallyAll`: every minute's figures, refs and refs hash, so no second pass is needed. */
  tallies: Map<number, MinuteTally>;
}

/**
 * Read every event file once, raw: its sha256, byte size and line count, and the succeeded
 * `request_end` lines — totals per UTC minute, and the exact lines of `minute` if given. Works on
 * raw lines, so what is hashed is exactly what is on disk. `tallyAll` also keeps, for every
 * minute, what a sample of it records (refs, per-shard tokens, the refs hash) without the lines'
 * text: `relPaths` must then be in canonical (sorted) order, as eventFilesOf gives them, so the
 * lines reach each minute's hash in the order countedLinesSha256 would sort them into.
 */
export async function scanRunFiles(
  runDir: string,
  relPaths: readonly string[],
  minute?: number,
  tallyAll = false,
  onProgress?: (p: ScanProgress) => void,
): Promise<ScanResult> {
  const result: ScanResult = {
    files: [],
    runIds: new Set(),
    minTs: Infinity,
    maxTs: -Infinity,
    minuteTokens: new Map(),
    counted: [],
    tallies: new Map(),
  };
  if (tallyAll && relPaths.some((p, i) => i > 0 && relPaths[i - 1]! >= p))
    throw new Error('scanRunFiles: tallyAll needs relPaths sorted');
  const progress: ScanProgress = { bytes: 0, totalBytes: 0, fraction: 0 };
  if (onProgress) for (const rel of relPaths) progress.totalBytes += statSync(join(runDir, rel)).size;
  for (const rel of relPaths) {
    const hash = createHash('sha256');
    let bytes = 0;
    let lines = 0;
    let rest = '';
    const decoder = new StringDecoder('utf8');
    const onLine = (text: string, lineNo: number, whole: boolean) => {
      if (!text) return;
      // Most lines cannot be counted and only give their ts and run: read those two off the
      // writer's fixed prefix instead of parsing the line (see writerPrefix).
      if (whole && writerPrefix(text)) {
        const ts = prefixTs;
        if (ts < result.minTs) result.minTs = ts;
        if (ts > result.maxTs) result.maxTs = ts;
        result.runIds.add(prefixRun);
        return;
      }
      let e: {
        ts?: unknown;
        type?: unknown;
        outcome?: unknown;
        completion_tokens?: unknown;
        shard?: unknown;
        run?: unknown;
      };
      try {
        e = JSON.parse(text) as typeof e;
      } catch {
        return;
      }
      if (typeof e.ts !== 'number') return;
      if (e.ts < result.minTs) result.minTs = e.ts;
      if (e.ts > result.maxTs) result.maxTs = e.ts;
      if (typeof e.run === 'string') result.runIds.add(e.run);
      if (e.type !== 'request_end' || e.outcome !== 'succeeded') return;
      const m = Math.floor(e.ts / 60_000);
      const tokens = typeof e.completion_tokens === 'number' ? e.completion_tokens : 0;
      result.minuteTokens.set(m, (result.minuteTokens.get(m) ?? 0) + tokens);
      const shard = typeof e.shard === 'number' ? e.shard : -1;
      if (m === minute) result.counted.push({ file: rel, line: lineNo, text, tokens, shard });
      if (tallyAll) {
        let t = result.tallies.get(m);
        if (!t) result.tallies.set(m, (t = { tokens: 0, perShard: {}, refs: [], sha256: createHash('sha256') }));
        t.tokens += tokens;
        t.perShard[String(shard)] = (t.perShard[String(shard)] ?? 0) + tokens;
        t.refs.push({ file: rel, line: lineNo });
        t.sha256.update(`${text}\n`);
      }
    };
    for await (const chunk of createReadStream(join(runDir, rel)) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
      if (onProgress) {
        progress.bytes += chunk.length;
        // A file that grew since its size was taken must not push the fraction past 1 before the end.
        progress.fraction = Math.min(0.999, progress.bytes / Math.max(1, progress.totalBytes));
        onProgress(progress);
      }
      const text = rest + decoder.write(chunk);
      let start = 0;
      for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
        onLine(text.slice(start, nl), ++lines, true);
        start = nl + 1;
      }
      rest = text.slice(start);
    }
    rest += decoder.end();
    // No newline after it: possibly torn by a crash, so it takes the full parse.
    if (rest) onLine(rest, ++lines, false);
    result.files.push({ path: rel, bytes, lines, sha256: hash.digest('hex') });
  }
  if (onProgress) {
    progress.fraction = 1;
    onProgress(progress);
  }
  return result;
}

const PREFIX = '{"v":1,"ts":';
const RUN_KEY = ',"run":"';
const SHARD_KEY = '","shard":';
const TYPE_KEY = ',"type":"';
const REQUEST_END = 'request_end"';
let prefixTs = 0;
let prefixRun = '';
let prefixRunQuoted = '';

/**
 * Whether `text` starts as the event writer writes every line —
 * `{"v":1,"ts":<decimal>,"run":"<id>","shard":<int>,"type":"<type>"` — and is not a request_end,
 * setting prefixTs and prefixRun when so. Why: JSON.parse of every line was most of a sample's time:
 * `shardline sample` of a generated 3-million-event log (402 MB) took 4.1–4.25 s with it and
 * 3.0–3.2 s with this, alternating builds (BENCHMARKS.md).
 * Only for newline-terminated lines, which the writer wrote whole (a crash can tear only the last,
 * unterminated one); request_end lines, which can count, always take the full parse. So a line that
 * was not whole JSON could only change which minute `best` picks, never a counted line or a file
 * hash, which verify checks.
 */
function writerPrefix(text: string): boolean {
  if (!text.startsWith(PREFIX)) return false;
  const start = PREFIX.length;
  let i = start;
  let dot = -1;
  for (; ; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) continue;
    if (c === 46 && dot < 0 && i > start) {
      dot = i;
      continue;
    }
    break;
  }
  // A plain decimal (digits, or digits.digits): Number() reads it exactly as JSON.parse does.
  if (i === start || dot === i - 1 || !text.startsWith(RUN_KEY, i)) return false;
  const runStart = i + RUN_KEY.length;
  // Nearly every line has the previous line's run: compare rather than cut out a string per line.
  const same = prefixRunQuoted !== '' && text.startsWith(prefixRunQuoted, runStart);
  const runEnd = same ? runStart + prefixRun.length : text.indexOf('"', runStart);
  if (runEnd < 0 || (!same && text.lastIndexOf('\\', runEnd) >= runStart) || !text.startsWith(SHARD_KEY, runEnd))
    return false;
  let j = runEnd + SHARD_KEY.length;
  if (text.charCodeAt(j) === 45 /* - */) j++;
  const digits = j;
  while (text.charCodeAt(j) >= 48 && text.charCodeAt(j) <= 57) j++;
  if (j === digits || !text.startsWith(TYPE_KEY, j) || text.startsWith(REQUEST_END, j + TYPE_KEY.length)) return false;
  prefixTs = Number(text.slice(start, i));
  if (!same) {
    prefixRun = text.slice(runStart, runEnd);
    prefixRunQuoted = `${prefixRun}"`;
  }
  return true;
}

/** How far a scan has read: bytes of all its files, and the share of them (1 once done). */
export interface ScanProgress {
  bytes: number;
  totalBytes: number;
  fraction: number;
}

/** sha256 over the counted lines in canonical order (file path, then line number), each + "\n". */
export function countedLinesSha256(counted: readonly CountedLine[]): string {
  const hash = createHash('sha256');
  for (const c of sortCanonical(counted)) hash.update(`${c.text}\n`);
  return hash.digest('hex');
}

export function sortCanonical<T extends { file: string; line: number }>(xs: readonly T[]): T[] {
  return [...xs].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line));
}
