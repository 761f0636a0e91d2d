import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * `mkdir -p`, bounded by the path's depth. Node 20's `mkdirSync(p, { recursive: true })` spins
 * forever, uninterruptibly, where mkdir answers ENOENT though the parent exists (`/proc/x`, some
 * special and FUSE mounts); this walks up at most once per path component and throws instead.
 * @throws the filesystem's error (ENOTDIR when `dir` or a parent is a file).
 */
export function ensureDir(dir: string): void {
  try {
    mkdirSync(dir);
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if (statSync(dir).isDirectory()) return;
      throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`), { code: 'ENOTDIR', path: dir });
    }
    const parent = dirname(dir);
    if (code !== 'ENOENT' || parent === dir) throw err;
    ensureDir(parent);
  }
  // The parent exists now; a second ENOENT is the filesystem refusing, not a missing parent.
  mkdirSync(dir);
}
