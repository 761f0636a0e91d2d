import { readEvents, resolveEventFiles, type EventFile } from '../events/event-reader.js';
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
  const acc = new RunAccumulator();
  const stats = await readEvents(files, (e) => acc.add(e));
  return buildReport(acc.finish(stats.badLines));
}
