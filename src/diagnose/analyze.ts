import { availableParallelism } from 'node:os';
import { statSync } from 'node:fs';
import { resolveEventFiles, type EventFile } from '../events/event-reader.js';
import { readFlatEvents } from '../events/flat-event-reader.js';
import { EventRecord, type FlatEvent } from '../events/flat-event.js';
import { IdInterner } from '../events/id-interner.js';
import { readFlatEventsInWorker } from '../events/worker-event-reader.js';
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
  const acc = new RunAccumulator();
  const ids = new IdInterner();
  const rec = new EventRecord();
  const take = (e: FlatEvent) => {
    e.rid = e.hasId ? ids.intern(e.idBuf, e.idStart, e.idEnd) : -1;
    rec.copyFrom(e);
    acc.add(rec);
  };
  const mode = options.parallel ?? 'auto';
  const parallel =
    mode === 'auto'
      ? availableParallelism() >= 2 && files.length <= 1024 && files.reduce((n, f) => n + statSync(f.path).size, 0) >= PARALLEL_MIN_BYTES
      : mode;
  const stats = parallel ? await readFlatEventsInWorker(files, take) : await readFlatEvents(files, take);
  const names = new Map(acc.ridsToName().map((rid) => [rid, ids.name(rid)]));
  return buildReport(acc.finish(stats.badLines, names));
}
