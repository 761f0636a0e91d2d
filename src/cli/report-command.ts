import { Option, type Command } from 'commander';
import { analyze, type AnalyzeProgress } from '../diagnose/analyze.js';
import { createStatusLine, type ProgressMode } from '../runner/progress-line.js';
import { writeHtmlReport } from '../report/html-report.js';
import { formatReport } from '../report/terminal-report.js';
import { sampleMinute, type MinuteSample } from '../provenance/sample.js';

/** The peak-minute sample of a single run directory, for the HTML page; none for other inputs. */
export async function optionalSample(dirs: readonly string[]): Promise<MinuteSample | undefined> {
  if (dirs.length !== 1) return undefined;
  try {
    return await sampleMinute(dirs[0]!);
  } catch {
    return undefined;
  }
}

/**
 * Progress of a report's read, for logs that take a while (1.6 M events a second here). In `auto`
 * it stays quiet for the first second on a terminal and for the first 10 s elsewhere, so a quick
 * report prints nothing extra; cleared when done.
 */
export function readingProgress(mode: ProgressMode, stream: NodeJS.WriteStream = process.stderr): (p: AnalyzeProgress) => void {
  const line = createStatusLine(mode, stream);
  const t0 = performance.now();
  const quietMs = mode === 'auto' ? (stream.isTTY ? 1000 : 10_000) : 0;
  return (p) => {
    const elapsedMs = performance.now() - t0;
    if (p.fraction < 1) {
      if (elapsedMs >= quietMs) line.show(`shardline: reading events ${(p.fraction * 100).toFixed(0)}% (${p.events.toLocaleString('en-US')} so far, ${(elapsedMs / 1000).toFixed(0)} s)`, elapsedMs);
    } else line.end(false);
  };
}

/** `shardline report DIR...`: metrics and diagnosis from raw events. */
export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description('Aggregate metrics and a control-plane vs model diagnosis from raw events')
    .argument('<dirs...>', 'run directories, events/ directories or event files (several machines\' files allowed)')
    .option('--json', 'print only the JSON report (schema shardline.report/v1) on stdout')
    .option('--html <file>', 'also write a self-contained HTML report (charts inlined, no network requests)')
    .addOption(new Option('--progress <mode>', 'reading progress on stderr (default auto: in place on a TTY once a read takes over a second, a line every 10 s otherwise)').choices(['auto', 'tty', 'lines', 'off']))
    .action(async (dirs: string[], opts: { json?: boolean; html?: string; progress?: ProgressMode }) => {
      const progress = opts.progress ?? 'auto';
      const report = await analyze(dirs, { onProgress: readingProgress(progress) });
      if (opts.html) {
        // The page's minute sample hashes every event file: on a large log that is seconds more.
        const status = createStatusLine(progress);
        if (report.detail.events >= 1_000_000) status.show('shardline: hashing the event files for the verifiable minute sample', 0);
        const sample = await optionalSample(dirs);
        status.end(false);
        writeHtmlReport(opts.html, { title: `shardline report: ${report.run_id ?? dirs.join(', ')}`, runs: [{ label: 'run', report }], ...(sample ? { sample } : {}) });
        process.stderr.write(`shardline: HTML report written to ${opts.html}\n`);
      }
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    });
}
