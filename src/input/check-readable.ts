import { accessSync, constants, statSync } from 'node:fs';
import { BadInputError } from '../errors.js';

/** Fail early, naming the path, when an input file is missing, unreadable or a directory. */
export function checkReadableInput(path: string): void {
  try {
    accessSync(path, constants.R_OK);
  } catch (cause) {
    throw new BadInputError(`Cannot read input \`${path}\`: ${(cause as Error).message}`, { cause });
  }
  if (statSync(path).isDirectory())
    throw new BadInputError(`Cannot read input \`${path}\`: it is a directory, expected a JSONL file`);
}
