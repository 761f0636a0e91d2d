import type { AnalyzeProgress } from '../diagnose/analyze.js';
import type { ScanProgress } from '../provenance/minute-scan.js';
import { createReadProgress, type ProgressMode } from './progress-line.js';

/** Progress of a report's read, for logs that take a while (1.6 M events a second here). */
export function readingProgress(
  mode: ProgressMode,
  stream: NodeJS.WriteStream = process.stderr,
): (p: AnalyzeProgress) => void {
  const show = createReadProgress(mode, stream);
  return (p) =>
    show(
      p.fraction,
      (s) =>
        `shardline: reading events ${(p.fraction * 100).toFixed(0)}% (${p.events.toLocaleString('en-US')} so far, ` +
        `${s.toFixed(0)} s)`,
    );
}

/** Progress of hashing a run's event files (sample, verify, the HTML report's sample). */
export function hashingProgress(
  mode: ProgressMode,
  purpose: string,
  stream: NodeJS.WriteStream = process.stderr,
): (p: ScanProgress) => void {
  const show = createReadProgress(mode, stream);
  return (p) =>
    show(
      p.fraction,
      (s) =>
        `shardline: hashing the event files ${purpose} ${(p.fraction * 100).toFixed(0)}% (${mb(p.bytes)} of ` +
        `${mb(p.totalBytes)} MB, ${s.toFixed(0)} s)`,
    );
}

const mb = (bytes: number) => (bytes / 1e6).toLocaleString('en-US', { maximumFractionDigits: 0 });
