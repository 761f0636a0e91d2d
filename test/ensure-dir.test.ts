import { spawnSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ensureDir } from '../src/util/ensure-dir.js';
import { tempDir } from './helpers/run-dir.js';

describe('ensureDir', () => {
  it('makes missing parents, accepts an existing directory, and names a file in the way', () => {
    const dir = tempDir('sl-dir-');
    const deep = join(dir, 'a', 'b', 'c');
    ensureDir(deep);
    expect(statSync(deep).isDirectory()).toBe(true);
    ensureDir(deep);
    const file = join(dir, 'f');
    writeFileSync(file, 'x');
    expect(() => ensureDir(file)).toThrow(expect.objectContaining({ code: 'ENOTDIR' }));
    expect(() => ensureDir(join(file, 'sub'))).toThrow(expect.objectContaining({ code: 'ENOTDIR' }));
  });

  it.runIf(existsSync('/proc/self'))(
    'throws where mkdir answers ENOENT under an existing parent (/proc), instead of spinning',
    () => {
      // In a child process with a deadline: Node's own recursive mkdirSync spins there forever, and a
      // regression must fail this test, not hang the suite.
      const module = fileURLToPath(new URL('../dist/util/ensure-dir.js', import.meta.url));
      const r = spawnSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `import { ensureDir } from ${JSON.stringify(module)}; try { ensureDir('/proc/shardline-nope/x'); } catch ` +
            `(e) { console.log(e.code); }`,
        ],
        { encoding: 'utf8', timeout: 10_000, killSignal: 'SIGKILL' },
      );
      expect(r.signal).toBeNull();
      expect(r.stdout.trim()).toBe('ENOENT');
    },
  );
});
