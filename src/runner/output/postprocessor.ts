import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Piscina } from 'piscina';
import { ConfigError } from '../../errors.js';
import { distFile } from '../../util/dist-file.js';

/** Runs the user's `--postprocess` hook off the dispatch event loop, in worker threads. */
export interface Postprocessor {
  run(resultLine: string): Promise<{ ok: true; line: string } | { ok: false; error: string }>;
  close(): Promise<void>;
}

/**
 * A piscina pool whose workers import the hook module once and apply its default export to each
 * result. A slow or CPU-heavy hook then delays only results, never dispatch. @default threads 2
 */
export function createPostprocessor(modulePath: string, threads = 2): Postprocessor {
  const moduleUrl = moduleUrlOf(modulePath);
  // Loaded with the first result: every shard imports this module, few runs have a hook.
  let pool: Promise<Piscina> | undefined;
  const poolNow = () =>
    (pool ??= import('piscina').then(
      ({ Piscina }) =>
        new Piscina({
          filename: distFile('runner/output/postprocess-worker.js'),
          minThreads: 1,
          maxThreads: threads,
          workerData: { moduleUrl },
        }),
    ));
  return {
    async run(resultLine) {
      try {
        const line = (await (await poolNow()).run(resultLine)) as string;
        return { ok: true, line };
      } catch (err) {
        return { ok: false, error: `postprocess hook failed: ${(err as Error).message ?? String(err)}` };
      }
    },
    close: async () => {
      if (pool) await (await pool).destroy();
    },
  };
}

function moduleUrlOf(modulePath: string): string {
  return pathToFileURL(isAbsolute(modulePath) ? modulePath : resolve(modulePath)).href;
}

/**
 * Load the hook once before any request goes out, in a throwaway worker thread (its top-level code
 * runs there, not in the coordinator), and refuse it unless its default export is a function: a hook
 * that cannot load would otherwise fail every result after all the model work was paid for.
 * @throws ConfigError naming `--postprocess` and why.
 */
export async function checkPostprocessModule(modulePath: string, timeoutMs = 30_000): Promise<void> {
  const url = moduleUrlOf(modulePath);
  const code = `const { parentPort, workerData } = require('node:worker_threads');
import(workerData).then(
  (m) => parentPort.postMessage({ kind: typeof m.default }),
  (e) => parentPort.postMessage({ error: String(e && e.message || e) }),
);`;
  const worker = new Worker(code, { eval: true, workerData: url });
  let timer: NodeJS.Timeout | undefined;
  try {
    const answer = await new Promise<{ kind?: string; error?: string }>((resolve) => {
      worker.once('message', resolve);
      worker.once('error', (err) => resolve({ error: err.message }));
      timer = setTimeout(() => resolve({ error: `it did not finish loading within ${timeoutMs / 1000} s` }), timeoutMs);
    });
    const expected = 'a module whose default export is a function (result) => result';
    if (answer.error !== undefined)
      throw new ConfigError(
        `Expected \`--postprocess\` to be ${expected}, got \`${modulePath}\`: loading it failed: ${answer.error}`,
      );
    if (answer.kind !== 'function')
      throw new ConfigError(
        `Expected \`--postprocess\` to be ${expected}, got \`${modulePath}\` (its default export is ` +
          `${answer.kind === 'undefined' ? 'missing' : `a ${answer.kind}`})`,
      );
  } finally {
    clearTimeout(timer);
    await worker.terminate();
  }
}
