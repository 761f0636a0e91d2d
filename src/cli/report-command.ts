import type { Command } from 'commander';
import { analyze } from '../diagnose/analyze.js';
import { formatReport } from '../report/terminal-report.js';

/** `shardline report DIR...`: metrics and diagnosis from raw events. */
export function registerReportCommand(program: Command): void {
  program
    .command('report')
    .description('Aggregate metrics and a control-plane vs model diagnosis from raw events')
    .argument('<dirs...>', 'run directories, events/ directories or event files (several machines\' files allowed)')
    .option('--json', 'print only the JSON report (schema shardline.report/v1) on stdout')
    .action(async (dirs: string[], opts: { json?: boolean }) => {
      const report = await analyze(dirs);
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    });
}
