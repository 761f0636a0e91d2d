import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ShardlineEvent } from '../../src/index.js';

export function tempDir(prefix = 'sl-run-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Every file under `dir`, at any depth (to look through all a run wrote, e.g. for a secret). */
export function filesUnder(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[])
    .map((f) => join(dir, f))
    .filter((p) => statSync(p).isFile());
}

/** Write N Batch-format request lines; returns the path. */
export function writeInput(dir: string, n: number, body: Record<string, unknown> = {}, name = 'input.jsonl'): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    lines.push(
      JSON.stringify({
        custom_id: `req-${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'sim', messages: [{ role: 'user', content: `question ${i}` }], max_tokens: 16, ...body },
      }),
    );
  }
  const path = join(dir, name);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

/**
 * All events of a run directory, every file merged and sorted by timestamp. Only complete lines count:
 * tests poll this while shards are still writing, and a line caught half-written has no newline yet.
 */
export function loadEvents(outDir: string): ShardlineEvent[] {
  const dir = join(outDir, 'events');
  const all: ShardlineEvent[] = [];
  for (const f of readdirSync(dir)) {
    const lines = readFileSync(join(dir, f), 'utf8').split('\n');
    lines.pop(); // after the last newline: empty, or a line still being written
    for (const line of lines) if (line) all.push(JSON.parse(line) as ShardlineEvent);
  }
  return all.sort((a, b) => a.ts - b.ts);
}

export function ofType<T extends ShardlineEvent['type']>(
  events: ShardlineEvent[],
  type: T,
): Extract<ShardlineEvent, { type: T }>[] {
  return events.filter((e) => e.type === type) as Extract<ShardlineEvent, { type: T }>[];
}

export interface ResultRow {
  custom_id: string;
  response: {
    status_code: number;
    body: {
      choices: { message: { content: string } }[];
      usage?: { completion_tokens: number; prompt_tokens?: number };
    };
  } | null;
  error: { code: string; message: string; status?: number } | null;
}

export function loadResults(outDir: string): ResultRow[] {
  return readFileSync(join(outDir, 'results.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as ResultRow);
}
