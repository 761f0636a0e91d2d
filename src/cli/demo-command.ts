import type { Command } from 'commander';
import { runDemo } from '../demo/run-demo.js';
import { formatComparison } from '../report/format-comparison.js';
import type { Report } from '../diagnose/report-types.js';
import { z } from 'zod';
import { ConfigError } from '../errors.js';

/** `shardline demo`: the incident, the fix, the proof — with no endpoint of your own. */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'Reproduce the classic incident on the simulator, fix it with shardline, and show the measured difference',
    )
    .option('--quick', 'a smaller workload (under 30 s)')
    .option('--out <dir>', 'where to write both runs, the sample and the report', 'shardline-demo')
    .option('--requests <n>', 'requests per run (default 600; --quick 320)')
    .action(async (opts: { quick?: boolean; out: string; requests?: string }) => {
      const requests =
        opts.requests === undefined ? undefined : z.coerce.number().int().min(10).max(100_000).safeParse(opts.requests);
      if (requests && !requests.success)
        throw new ConfigError(`Expected \`--requests\` to be an integer from 10 to 100000, got \`${opts.requests}\``);
      const started = Date.now();
      const { writeHtmlReport } = await import('../report/html-report.js');
      const r = await runDemo({
        out: opts.out,
        quick: opts.quick === true,
        ...(requests ? { requests: requests.data } : {}),
        log: (line) => process.stderr.write(`${line}\n`),
        writeHtml: (path, a, b, comparison, sample) =>
          writeHtmlReport(path, {
            title: 'shardline demo: the incident and the fix',
            runs: [
              { label: 'naive', report: a },
              { label: 'shardline', report: b },
            ],
            comparison,
            sample,
          }),
      });
      const out = process.stdout;
      out.write(`\n${formatComparison(r.comparison)}\n`);
      out.write(diagnosis('naive (1 worker, unbounded in-flight, no keep-alive, fixed-delay retries)', r.naive.report));
      out.write(diagnosis('shardline (2 shards × 32 in flight, keep-alive, backoff with jitter)', r.shardline.report));
      out.write(
        `\nminute sample: ${r.samplePath}\n  ` +
          `${r.verification.ok ? r.verification.summary : `VERIFY FAILED: ${r.verification.mismatch}`}\n`,
      );
      out.write(`runs: ${r.out}/naive  ${r.out}/shardline\n`);
      if (r.htmlPath) out.write(`report: ${r.htmlPath}\n`);
      out.write(`(demo took ${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
    });
}

function diagnosis(label: string, r: Report): string {
  const lines = [`\n${label}: ${r.verdict.bound.toUpperCase()}-bound, dominant bucket ${r.verdict.dominant ?? '–'}`];
  for (const f of r.verdict.findings) lines.push(`  [${f.severity}] ${f.mode}: ${f.evidence}\n      → ${f.action}`);
  if (r.verdict.findings.length === 0) lines.push('  no failure mode found');
  return `${lines.join('\n')}\n`;
}
