import { resolveEventFiles, type EventFile } from '../events/event-reader.js';
import { readFlatEvents } from '../events/flat-event-reader.js';
import { IdInterner } from '../events/id-interner.js';
import { buildReport } from './build-report.js';
import type { Report } from './report-types.js';
import { RunAccumulator } from './run-accumulator.js';

/**
 * Read run directories or event files (streaming, merged by timestamp) and build the report.
 * @example const report = await analyze(['runs/a']); report.verdict.bound
 */
export async function analyze(paths: readonly string[]): Promise<Report> {
  return analyzeFiles(resolveEventFiles(paths));
}

export async function analyzeFiles(files: readonly EventFile[]): Promise<Report> {
  const ids = new IdInterner();
  const acc = new RunAccumulator(ids);
  const stats = await readFlatEvents(files, ids, (e) => acc.add(e));
  return buildReport(acc.finish(stats.badLines));
}
