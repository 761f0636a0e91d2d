import { Option, type Command } from 'commander';
import { analyze } from '../diagnose/analyze.js';
import type { ProgressMode } from './progress-line.js';
import { hashingProgress, readingProgress } from './read-progress.js';
import { writeHtmlReport } from '../report/html-report.js';
import { formatReport } from '../report/terminal-report.js';
import { describeDisagreement } from '../diagnose/results-check.js';
import type { ScanProgress } from '../provenance/minute-scan.js';
import { sampleMinute, type MinuteSample } from '../provenance/sample.js';

/** The peak-minute sample of a single run directory, for the HTML page; none for other inputs. */
export async function optionalSample(
  dirs: readonly string[],
  onProgress?: (p: ScanProgress) => void,
): Promise<MinuteSample | undefined> {
  if (dirs.length !== 1) return undefined;
  try {
    return await sampleMinute(dirs[0]!, 'best', onProgress);
  } catch {
    return undefined;
  }
}

/** `shardline report DIR...`: metrics and diagnosis from raw events. */
export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description('Aggregate metrics and a control-plane vs model diagnosis from raw events')
    .argument('<dirs...>', "run directories, events/ directories or event files (several machines' files allowed)")
    .option('--json', 'print only the JSON report (schema shardline.report/v1) on stdout')
    .option('--html <file>', 'also write a self-contained HTML report (charts inlined, no network requests)')
    .addOption(
      new Option(
        '--progress <mode>',
        'reading progress on stderr (default auto: in place on a TTY once a read takes over a second, a line every ' +
          '10 s otherwise)',
      ).choices(['auto', 'tty', 'lines', 'off']),
    )
    .action(async (dirs: string[], opts: { json?: boolean; html?: string; progress?: ProgressMode }) => {
      const progress = opts.progress ?? 'auto';
      const report = await analyze(dirs, { onProgress: readingProgress(progress) });
      if (opts.html) {
        // The page's minute sample hashes every event file: on a large log that is seconds more.
        const sample = await optionalSample(dirs, hashingProgress(progress, 'for the verifiable minute sample'));
        writeHtmlReport(opts.html, {
          title: `shardline report: ${report.run_id ?? dirs.join(', ')}`,
          runs: [{ label: 'run', report }],
          ...(sample ? { sample } : {}),
        });
        process.stderr.write(`shardline: HTML report written to ${opts.html}\n`);
      }
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
      // The terminal summary says it too; with --json stdout is only the document.
      const disagreement = opts.json && report.results ? describeDisagreement(report.results) : undefined;
      if (disagreement) process.stderr.write(`shardline: warning: ${disagreement}\n`);
    });
}
