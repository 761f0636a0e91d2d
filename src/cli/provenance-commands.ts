import { writeFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import type { ProgressMode } from './progress-line.js';
import { hashingProgress } from './read-progress.js';
import { sampleMinute } from '../provenance/sample.js';
import { verifySample } from '../provenance/verify.js';
import { EXIT } from '../exit-codes.js';

const progressOption = () =>
  new Option(
    '--progress <mode>',
    'hashing progress on stderr (default auto: in place on a TTY once it takes over a second, a line every 10 s ' +
      'otherwise)',
  ).choices(['auto', 'tty', 'lines', 'off']);

/** `shardline sample` and `shardline verify`: publish a minute of throughput and check one. */
export function registerProvenanceCommands(program: Command): void {
  program
    .command('sample')
    .description('Write a verifiable minute sample: figures, the exact event lines behind them, and file hashes')
    .argument('<dir>', 'run directory')
    .option('--minute <best|ISO>', 'which UTC minute: the peak (best) or one starting at an ISO time', 'best')
    .option('-o, --output <file>', 'write the sample here (default: stdout)')
    .addOption(progressOption())
    .action(async (dir: string, opts: { minute: string; output?: string; progress?: ProgressMode }) => {
      const sample = await sampleMinute(
        dir,
        opts.minute,
        hashingProgress(opts.progress ?? 'auto', 'to sample a minute'),
      );
      const text = `${JSON.stringify(sample, null, 2)}\n`;
      if (opts.output) {
        writeFileSync(opts.output, text);
        process.stderr.write(
          `shardline: sampled ` +
            `${sample.minute.start}${sample.minute.partial ? ' (partial minute: the run has no full minute)' : ''}: ` +
            `${sample.figures.completion_tokens.toLocaleString('en-US')} completion tokens from ` +
            `${sample.figures.completed_requests} requests → ${opts.output}\n`,
        );
      } else process.stdout.write(text);
    });

  program
    .command('verify')
    .description(
      'Re-hash the files of a minute sample and recompute every figure; exit 0 if it holds, 1 naming the ' +
        'first mismatch',
    )
    .argument('<sample>', 'sample JSON written by `shardline sample`')
    .option('--events <dir>', 'the run directory (or its events/) if it moved since sampling')
    .addOption(progressOption())
    .action(async (samplePath: string, opts: { events?: string; progress?: ProgressMode }) => {
      const result = await verifySample(
        samplePath,
        opts.events,
        hashingProgress(opts.progress ?? 'auto', 'to verify the sample'),
      );
      if (result.ok) process.stdout.write(`${result.summary}\n`);
      else {
        process.stdout.write(`mismatch: ${result.mismatch}\n`);
        process.exitCode = EXIT.FAILURE;
      }
    });
}
