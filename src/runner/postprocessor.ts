import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import { distFile } from '../util/dist-file.js';

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
  const moduleUrl = pathToFileURL(isAbsolute(modulePath) ? modulePath : resolve(modulePath)).href;
  const pool = new Piscina({
    filename: distFile('runner/postprocess-worker.js'),
    minThreads: 1,
    maxThreads: threads,
    workerData: { moduleUrl },
  });
  return {
    async run(resultLine) {
      try {
        const line = (await pool.run(resultLine)) as string;
        return { ok: true, line };
      } catch (err) {
        return { ok: false, error: `postprocess hook failed: ${(err as Error).message ?? String(err)}` };
      }
    },
    close: () => pool.destroy(),
  };
}
