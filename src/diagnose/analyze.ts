import { availableParallelism } from 'node:os';
import { statSync } from 'node:fs';
import { resolveEventFiles, type EventFile, type ReadStats } from '../events/event-reader.js';
import { readFlatEvents } from '../events/flat-event-reader.js';
import { EventRecord, type FlatEvent } from '../events/flat-event.js';
import { IdInterner } from '../events/id-interner.js';
import { IdTooLongError, readFlatEventsInWorker, type WorkerReadOptions } from '../events/worker-event-reader.js';
import { buildReport } from './build-report.js';
import type { Report } from './report-types.js';
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
}

const PARALLEL_MIN_BYTES = 32 * 1024 * 1024;

/**
 * Read run directories or event files (streaming, merged by timestamp) and build the report.
 * @example const report = await analyze(['runs/a']); report.verdict.bound
 */
export async function analyze(paths: readonly string[], options: AnalyzeOptions = {}): Promise<Report> {
  return analyzeFiles(resolveEventFiles(paths), options);
}

export async function analyzeFiles(files: readonly EventFile[], options: AnalyzeOptions = {}): Promise<Report> {
  const mode = options.parallel ?? 'auto';
  const parallel =
    mode === 'auto'
      ? availableParallelism() >= 2 && files.length <= 1024 && files.reduce((n, f) => n + statSync(f.path).size, 0) >= PARALLEL_MIN_BYTES
      : mode;
  if (parallel) {
    try {
      return await aggregate((take) => readFlatEventsInWorker(files, take, options.workerRead));
    } catch (err) {
      // Ids beyond the slots' room (hundreds of KiB each): rare enough to simply read again here.
      if (!(err instanceof IdTooLongError)) throw err;
    }
  }
  return aggregate((take) => readFlatEvents(files, take));
}

async function aggregate(read: (take: (e: FlatEvent) => void) => Promise<ReadStats>): Promise<Report> {
  const acc = new RunAccumulator();
  const ids = new IdInterner();
  const rec = new EventRecord();
  const stats = await read((e) => {
    e.rid = e.hasId ? ids.intern(e.idBuf, e.idStart, e.idEnd) : -1;
    rec.copyFrom(e);
    acc.add(rec);
  });
  const names = new Map(acc.ridsToName().map((rid) => [rid, ids.name(rid)]));
  return buildReport(acc.finish(stats.badLines, names));
}
