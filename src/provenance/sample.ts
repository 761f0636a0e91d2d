import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BadInputError, ConfigError } from '../errors.js';
import { VERSION } from '../version.js';
import { countedLinesSha256, scanRunFiles, type FileScan, type ScanProgress } from './minute-scan.js';

/** A publishable minute of throughput: figures, the exact lines behind them, and file hashes. */
export interface MinuteSample {
  schema: 'shardline.sample/v1';
  run_id: string | null;
  tool: { name: 'shardline'; version: string };
  /** Where the run directory was when sampled (verify looks there unless told otherwise). */
  run_dir: string;
  minute: { start: string; end: string; partial: boolean };
  files: FileScan[];
  figures: {
    completion_tokens: number;
    completed_requests: number;
    /** Completion tokens counted in the minute: the aggregate TPM of that minute. */
    aggregate_tpm: number;
    per_shard_tpm: Record<string, number>;
  };
  refs: { file: string; line: number }[];
  refs_sha256: string;
}

/** The event files of a run directory, relative to it, sorted. */
export function eventFilesOf(runDir: string): string[] {
  const dir = join(runDir, 'events');
  if (!existsSync(dir)) throw new BadInputError(`\`${runDir}\` has no events/ directory`);
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .sort()
    .map((f) => `events/${f}`);
  if (files.length === 0) throw new BadInputError(`\`${runDir}/events\` holds no event files`);
  return files;
}

/**
 * Pick a full UTC minute — the peak by default, or the one starting at `minute` (ISO) — and record
 * everything needed to recompute its figures. Runs without a full minute fall back to their best
 * partial minute, flagged `partial`. `onProgress` follows the read of the event files (they are all
 * hashed: on a large log, seconds).
 */
export async function sampleMinute(
  runDir: string,
  minute: 'best' | string = 'best',
  onProgress?: (p: ScanProgress) => void,
): Promise<MinuteSample> {
  const files = eventFilesOf(runDir);
  // One pass: file hashes, and every minute's tally, so the chosen minute needs no second read.
  const scan = await scanRunFiles(runDir, files, undefined, true, onProgress);
  if (scan.minuteTokens.size === 0) throw new BadInputError(`\`${runDir}\` has no succeeded requests to sample`);
  let chosen: number;
  let partial: boolean;
  const isFull = (m: number) => m * 60_000 >= scan.minTs && (m + 1) * 60_000 <= scan.maxTs;
  if (minute === 'best') {
    const full = [...scan.minuteTokens].filter(([m]) => isFull(m));
    const pool = full.length ? full : [...scan.minuteTokens];
    chosen = pool.sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]![0];
    partial = full.length === 0;
  } else {
    const ms = Date.parse(minute);
    if (Number.isNaN(ms) || ms % 60_000 !== 0) {
      throw new ConfigError(
        `Expected \`--minute\` to be \`best\` or an ISO time on a minute boundary (e.g. 2026-11-27T12:03:00Z), got ` +
          `\`${minute}\``,
      );
    }
    chosen = ms / 60_000;
    partial = !isFull(chosen);
  }
  const tally = scan.tallies.get(chosen);
  const tokens = tally?.tokens ?? 0;
  return {
    schema: 'shardline.sample/v1',
    run_id: scan.runIds.size === 1 ? [...scan.runIds][0]! : scan.runIds.size ? [...scan.runIds].sort().join('+') : null,
    tool: { name: 'shardline', version: VERSION },
    run_dir: resolve(runDir),
    minute: {
      start: new Date(chosen * 60_000).toISOString(),
      end: new Date((chosen + 1) * 60_000).toISOString(),
      partial,
    },
    files: scan.files,
    figures: {
      completion_tokens: tokens,
      completed_requests: tally?.refs.length ?? 0,
      aggregate_tpm: tokens,
      per_shard_tpm: tally?.perShard ?? {},
    },
    refs: tally?.refs ?? [],
    refs_sha256: tally ? tally.sha256.digest('hex') : countedLinesSha256([]),
  };
}
