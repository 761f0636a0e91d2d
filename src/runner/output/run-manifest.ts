import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { outputWriteError } from '../../util/write-fully.js';
import { join } from 'node:path';
import { publishOptions } from '../../config/option-table.js';
import { RUN_OPTIONS } from '../../config/run-option-table.js';
import type { RunOptions } from '../../config/run-options.js';

/** DIR/run.json: what ran, on what input, with which versions, and how it ended. No secrets. */
export interface RunManifest {
  schema: 'shardline.run/v1';
  run_id: string;
  status: 'running' | 'finished' | 'interrupted' | 'failed';
  input: { path: string; sha256: string; bytes: number; lines: number };
  /** The (first) endpoint, credentials removed. */
  endpoint: string;
  /** Every endpoint, when the run has several. */
  endpoints?: string[];
  config: Record<string, unknown>;
  versions: { shardline: string; node: string; undici: string };
  started_at: string;
  ended_at: string | null;
  resumes: number;
  totals: Record<string, unknown> | null;
}

export function readManifest(dir: string): RunManifest | undefined {
  const path = join(dir, 'run.json');
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, 'utf8')) as RunManifest;
}

/** Write atomically (temp file + rename) so a crash never leaves half a run.json. */
export function writeManifest(dir: string, manifest: RunManifest): void {
  const tmp = join(dir, `.run.json.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
  } catch (err) {
    // A full disk can refuse run.json last of all: the same clear line as for any file of the run.
    rmSync(tmp, { force: true });
    throw outputWriteError(join(dir, 'run.json'), err);
  }
  renameSync(tmp, join(dir, 'run.json'));
}

/** The config as recorded: no API key, header values hidden, URL credentials and query values masked. */
export function publicConfig(o: RunOptions): Record<string, unknown> {
  return publishOptions(RUN_OPTIONS, o);
}
