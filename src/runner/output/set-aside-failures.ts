import { closeSync, existsSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { MAX_RESULT_LINE_BYTES, parseResultLine } from '../../events/results-file.js';
import { readJsonlLines } from '../../input/jsonl-lines.js';
import { dropTornTail } from '../../util/torn-tail.js';

/** Where results set aside for a re-run go, beside results.jsonl. */
export const RETRIED_FILE = 'retried.jsonl';

export interface SetAsideOutcome {
  /** Failed results moved out of results.jsonl (their requests run again). */
  moved: number;
  /** Failed results left in place, their cause not among those asked for. */
  kept: number;
}

/**
 * Moves failed results out of `results.jsonl` so that a resumed run runs those requests again:
 * every failure, or only those whose `error.code` is in `causes`. The moved lines are appended to
 * `retried.jsonl` first, then results.jsonl is replaced by a copy without them in one rename, so a
 * crash at any point leaves every request either with its old result or with none (and `--resume`
 * then runs it); at worst retried.jsonl holds a line twice.
 */
export async function setAsideFailures(
  resultsPath: string,
  causes: readonly string[] | 'all',
): Promise<SetAsideOutcome> {
  if (!existsSync(resultsPath)) return { moved: 0, kept: 0 };
  // A torn last line from a killed run is not a result (the appender drops it on open too).
  const fd = openSync(resultsPath, 'r+');
  try {
    dropTornTail(fd);
  } finally {
    closeSync(fd);
  }
  const dir = dirname(resultsPath);
  const tmpPath = `${resultsPath}.rewrite`;
  const keep = openSync(tmpPath, 'w');
  const moved: string[] = [];
  let kept = 0;
  let movedCount = 0;
  let retried: number | undefined;
  const flushMoved = () => {
    if (moved.length === 0) return;
    retried ??= openSync(join(dir, RETRIED_FILE), 'a');
    writeSync(retried, `${moved.join('\n')}\n`);
    moved.length = 0;
  };
  try {
    for await (const line of readJsonlLines(resultsPath, MAX_RESULT_LINE_BYTES)) {
      if ('tooLong' in line || line.text === '') continue;
      const code = parseResultLine(line.text)?.code;
      if (code !== undefined && (causes === 'all' || causes.includes(code))) {
        moved.push(line.text);
        movedCount++;
        if (moved.length >= 1024) flushMoved();
        continue;
      }
      if (code !== undefined) kept++;
      writeSync(keep, `${line.text}\n`);
    }
    flushMoved();
    if (retried !== undefined) fsyncSync(retried);
    fsyncSync(keep);
  } finally {
    if (retried !== undefined) closeSync(retried);
    closeSync(keep);
  }
  if (movedCount === 0) {
    // Nothing to move: results.jsonl stays as it was.
    unlinkSync(tmpPath);
    return { moved: 0, kept };
  }
  renameSync(tmpPath, resultsPath);
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
  return { moved: movedCount, kept };
}
