#!/usr/bin/env node
import { CommanderError } from 'commander';
import { ShardlineError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { createProgram } from './program.js';
import { retryFailedArgv } from './run-command.js';

async function main(argv: string[]): Promise<number> {
  const program = createProgram();
  try {
    await program.parseAsync(retryFailedArgv(argv));
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed its message; help and version are successes, the rest usage errors.
      return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    if (err instanceof ShardlineError) {
      process.stderr.write(`shardline: ${err.message}\n`);
      return err.code === 'SL_ERR_CONFIG' || err.code === 'SL_ERR_USAGE' || err.code === 'SL_ERR_INPUT_CHANGED'
        ? EXIT.USAGE
        : EXIT.FAILURE;
    }
    const sys = err as NodeJS.ErrnoException;
    if (typeof sys.code === 'string' && typeof sys.syscall === 'string') {
      // A filesystem or OS refusal (a missing directory for --html or -o, a full disk, no permission):
      // its message already names the operation and the path; a stack trace would only hide it.
      process.stderr.write(`shardline: ${sys.message}\n`);
      return EXIT.FAILURE;
    }
    process.stderr.write(`shardline: unexpected error: ${(err as Error).stack ?? String(err)}\n`);
    return EXIT.FAILURE;
  }
}

// `shardline report … | head`: a reader that stops early is not an error of ours.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? EXIT.OK);
  throw err;
});

void main(process.argv).then((code) => {
  process.exitCode = code;
});
