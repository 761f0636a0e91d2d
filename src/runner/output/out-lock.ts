import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../errors.js';

/** The lock file a run holds in its `--out` directory. */
export const LOCK_FILE = '.shardline.lock';

/**
 * One run at a time per output directory: two would both append to results.jsonl and duplicate
 * results. The lock holds the owner's pid; a lock whose process is gone (a run killed with
 * `kill -9`) is taken over. Returns the release function.
 * @throws ConfigError when a live process holds the directory.
 */
export function acquireOutLock(out: string): () => void {
  const path = join(out, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = readPid(path);
      if (pid !== undefined && isAlive(pid)) {
        throw new ConfigError(
          `Another shardline run (pid ${pid}) is using \`--out\` ${out}: wait for it or stop it, or use a new --out ` +
            `(two runs in one directory would duplicate results)`,
        );
      }
      // Stale: its run is gone. Remove it and try again (another starter may race us to it).
      try {
        unlinkSync(path);
      } catch {
        // already gone
      }
      continue;
    }
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      try {
        unlinkSync(path);
      } catch {
        // the directory went away; nothing to release
      }
    };
  }
  throw new ConfigError(`Could not take the lock ${path}: other runs keep starting in \`--out\` ${out}`);
}

function readPid(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a process exists (signal 0 checks without signalling; EPERM means it exists). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
