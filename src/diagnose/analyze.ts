import { availableParallelism } from 'node:os';
import { statSync } from 'node:fs';
import { resolveEventFiles, type EventFile, type ReadStats } from '../events/event-reader.js';
import { readFlatEvents } from '../events/flat-event-reader.js';
import { EventRecord, type FlatEvent } from '../events/flat-event.js';
import { IdInterner } from '../events/id-interner.js';
import { eventTimeSpan } from '../events/time-span.js';
import { IdTooLongError, readFlatEventsInWorker, type WorkerReadOptions } from '../events/worker-event-reader.js';
import { buildReport } from './build-report.js';
import type { Report } from './report-types.js';
import { checkResults, runDirsWithResults } from './results-check.js';
import { RunAccumulator } from './run-accumulator.js';

export interface AnalyzeOptions {
  /**
   * Decode on a second thread while this one aggregates. `'auto'` does so for logs of at least
   * 32 MiB (about 250,000 events) in at most 1,024 files on a machine with two or more cores; below
   * that, starting a thread costs more than it saves. @default 'auto'
   */
  parallel?: boolean | 'auto';
  /** Tuning of the second thread's hand-over (slot sizes); the defaults suit any log. */
  workerRead?: WorkerReadOptions;
  /**
   * Called as reading advances — every `progressEvery` events and once at the end with
   * fraction 1 — with the share of the log's time span read so far (the merged read goes in
   * time order, so this tracks the work left). For a progress line on long logs.
   */
  onProgress?: (p: AnalyzeProgress) => void;
  /** @default 65536 */
  progressEvery?: number;
  /**
   * Run directories whose results.jsonl to check against the events (`report.results`). `analyze`
   * takes those of its arguments given as directories. @default none for analyzeFiles
   */
  resultsDirs?: readonly string[];
}

/** Where a report's read of the events stands. */
export interface AnalyzeProgress {
  /** Share of the log's time span read, 0–1. */
  fraction: number;
  events: number;
}

const PARALLEL_MIN_BYTES = 32 * 1024 * 1024;

/**
 * Read run directories or event files (streaming, merged by timestamp) and build the report.
 * @example const report = await analyze(['runs/a']); report.verdict.bound
 */
export async function analyze(paths: readonly string[], options: AnalyzeOptions = {}): Promise<Report> {
  const files = resolveEventFiles(paths);
  return analyzeFiles(files, { ...options, resultsDirs: options.resultsDirs ?? runDirsWithResults(paths) });
}

export async function analyzeFiles(files: readonly EventFile[], options: AnalyzeOptions = {}): Promise<Report> {
  const progress = options.onProgress
    ? progressTracker(files, options.onProgress, options.progressEvery ?? 1 << 16)
    : undefined;
  const report = await analyzeWith(files, options, progress?.note);
  progress?.done();
  return report;
}

async function analyzeWith(
  files: readonly EventFile[],
  options: AnalyzeOptions,
  note: ((e: FlatEvent) => void) | undefined,
): Promise<Report> {
  const mode = options.parallel ?? 'auto';
  const parallel =
    mode === 'auto'
      ? availableParallelism() >= 2 &&
        files.length <= 1024 &&
        files.reduce((n, f) => n + statSync(f.path).size, 0) >= PARALLEL_MIN_BYTES
      : mode;
  if (parallel) {
    try {
      return await aggregate(
        (take) => readFlatEventsInWorker(files, take, options.workerRead),
        options.resultsDirs,
        note,
      );
    } catch (err) {
      // Ids beyond the slots' room (hundreds of KiB each): rare enough to simply read again here.
      if (!(err instanceof IdTooLongError)) throw err;
    }
  }
  return aggregate((take) => readFlatEvents(files, take), options.resultsDirs, note);
}

/** Counts events and reports, every `every` of them, how far into the log's time span the read is. */
function progressTracker(files: readonly EventFile[], onProgress: (p: AnalyzeProgress) => void, every: number) {
  const span = eventTimeSpan(files);
  let events = 0;
  return {
    note(e: FlatEvent): void {
      if (++events % every !== 0) return;
      const fraction =
        span && span.endMs > span.startMs
          ? Math.min(1, Math.max(0, (e.ts - span.startMs) / (span.endMs - span.startMs)))
          : 0;
      onProgress({ fraction, events });
    },
    done(): void {
      onProgress({ fraction: 1, events });
    },
  };
}

async function aggregate(
  read: (take: (e: FlatEvent) => void) => Promise<ReadStats>,
  resultsDirs: readonly string[] = [],
  note?: (e: FlatEvent) => void,
): Promise<Report> {
  const acc = new RunAccumulator();
  const ids = new IdInterner();
  const rec = new EventRecord();
  const stats = await read((e) => {
    e.rid = e.hasId ? ids.intern(e.idBuf, e.idStart, e.idEnd) : -1;
    rec.copyFrom(e);
    acc.add(rec);
    note?.(e);
  });
  const names = new Map(acc.ridsToName().map((rid) => [rid, ids.name(rid)]));
  const report = buildReport(acc.finish(stats.badLines, names));
  if (resultsDirs.length > 0)
    report.results = await checkResults(resultsDirs, (id) => acc.outcomeOf(ids.find(id)), report.requests.total);
  return report;
}
