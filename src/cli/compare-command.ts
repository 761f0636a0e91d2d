import type { Command } from 'commander';
import { analyze } from '../diagnose/analyze.js';
import { compareReports } from '../diagnose/compare-reports.js';
import { formatComparison } from '../report/format-comparison.js';
import { writeHtmlReport } from '../report/html-report.js';

/** `shardline compare A B`: before/after with a stability judgement. */
export function registerCompareCommand(program: Command): void {
  program
    .command('compare')
    .description('Before/after table of two runs with deltas and a stability judgement')
    .argument('<a>', 'run directory (before)')
    .argument('<b>', 'run directory (after)')
    .option('--json', 'print only the JSON comparison (schema shardline.compare/v1)')
    .option('--html <file>', 'also write a self-contained HTML report of both runs and the comparison')
    .action(async (a: string, b: string, opts: { json?: boolean; html?: string }) => {
      const [ra, rb] = await Promise.all([analyze([a]), analyze([b])]);
      const c = compareReports(ra, rb);
      if (opts.html) {
        writeHtmlReport(opts.html, {
          title: `shardline compare: ${ra.run_id ?? a} → ${rb.run_id ?? b}`,
          runs: [
            { label: 'A (before)', report: ra },
            { label: 'B (after)', report: rb },
          ],
          comparison: c,
        });
        process.stderr.write(`shardline: HTML report written to ${opts.html}\n`);
      }
      process.stdout.write(opts.json ? `${JSON.stringify(c, null, 2)}\n` : formatComparison(c));
    });
}
