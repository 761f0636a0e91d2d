import type { Command } from 'commander';
import { analyze } from '../diagnose/analyze.js';
import { compareReports, formatComparison } from '../diagnose/compare-reports.js';

/** `shardline compare A B`: before/after with a stability judgement. */
export function registerCompareCommand(program: Command): void {
  program
    .command('compare')
    .description('Before/after table of two runs with deltas and a stability judgement')
    .argument('<a>', 'run directory (before)')
    .argument('<b>', 'run directory (after)')
    .option('--json', 'print only the JSON comparison (schema shardline.compare/v1)')
    .action(async (a: string, b: string, opts: { json?: boolean }) => {
      const [ra, rb] = await Promise.all([analyze([a]), analyze([b])]);
      const c = compareReports(ra, rb);
      process.stdout.write(opts.json ? `${JSON.stringify(c, null, 2)}\n` : formatComparison(c));
    });
}
