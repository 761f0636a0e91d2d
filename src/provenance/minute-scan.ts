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
  const result: ScanResult = { files: [], runIds: new Set(), minTs: Infinity, maxTs: -Infinity, minuteTokens: new Map(), counted: [], tallies: new Map() };
  if (tallyAll && relPaths.some((p, i) => i > 0 && relPaths[i - 1]! >= p)) throw new Error('scanRunFiles: tallyAll needs relPaths sorted');
  const progress: ScanProgress = { bytes: 0, totalBytes: 0, fraction: 0 };
  if (onProgress) for (const rel of relPaths) progress.totalBytes += statSync(join(runDir, rel)).size;
  for (const rel of relPaths) {
    const hash = createHash('sha256');
    let bytes = 0;
    let lines = 0;
    let rest = '';
    const decoder = new StringDecoder('utf8');
    const onLine = (text: string, lineNo: number) => {
      if (!text) return;
      let e: { ts?: unknown; type?: unknown; outcome?: unknown; completion_tokens?: unknown; shard?: unknown; run?: unknown };
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
        onLine(text.slice(start, nl), ++lines);
        start = nl + 1;
      }
      rest = text.slice(start);
    }
    rest += decoder.end();
    if (rest) onLine(rest, ++lines);
    result.files.push({ path: rel, bytes, lines, sha256: hash.digest('hex') });
  }
  if (onProgress) {
    progress.fraction = 1;
    onProgress(progress);
  }
  return result;
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
