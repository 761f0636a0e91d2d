import type { DoneItem } from '../ipc-messages.js';
import { parseResultLine } from '../../events/results-file.js';
import type { TalliedFacts } from '../run-totals.js';

/**
 * What a distributed run's coordinator needs of each result besides its results.jsonl line: the
 * figures a local run's summary counts (attempts, prompt tokens, failure statuses, TTFT), which the
 * line alone does not carry. Workers send them beside the lines.
 */
export type ResultFacts = TalliedFacts & Pick<DoneItem, 'ttftMs'>;

/** One result's facts on the wire: a tuple, not an object, so a batch of 256 stays one small JSON.stringify. */
type Row = [
  ok: 0 | 1,
  attempts: number,
  promptTokens: number,
  completionTokens: number,
  ttftMs: number | null,
  cause: string | null,
  status: number | null,
  error: string | null,
  retryAfterTooLongMs: number | null,
];

/** A batch's facts as one JSON text, in the batch's order. */
export function encodeFacts(items: readonly ResultFacts[]): string {
  const rows: Row[] = new Array(items.length);
  for (let i = 0; i < items.length; i++) {
    const d = items[i]!;
    rows[i] = [
      d.outcome === 'succeeded' ? 1 : 0,
      d.attempts,
      d.promptTokens,
      d.completionTokens,
      d.ttftMs ?? null,
      d.cause ?? null,
      d.status ?? null,
      d.error ?? null,
      d.retryAfterTooLongMs ?? null,
    ];
  }
  return JSON.stringify(rows);
}

/** The facts of a batch, by position; undefined where the text holds none (read them from the line then). */
export function decodeFacts(text: string | undefined): (ResultFacts | undefined)[] {
  if (text === undefined) return [];
  let rows: unknown;
  try {
    rows = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(rows)) return [];
  return rows.map((row: unknown) => (Array.isArray(row) && row.length === 9 ? fromRow(row as Row) : undefined));
}

function fromRow([
  ok,
  attempts,
  promptTokens,
  completionTokens,
  ttftMs,
  cause,
  status,
  error,
  retryAfterTooLongMs,
]: Row): ResultFacts {
  const f: ResultFacts = { outcome: ok === 1 ? 'succeeded' : 'failed', attempts, promptTokens, completionTokens };
  if (ttftMs !== null) f.ttftMs = ttftMs;
  if (cause !== null) f.cause = cause as ResultFacts['cause'];
  if (status !== null) f.status = status;
  if (error !== null) f.error = error;
  if (retryAfterTooLongMs !== null) f.retryAfterTooLongMs = retryAfterTooLongMs;
  return f;
}

/**
 * The facts a results.jsonl line holds by itself, for a result sent without them: its outcome,
 * completion tokens and failure cause; one attempt and no prompt tokens, as nothing says more.
 */
export function factsFromLine(line: string): ResultFacts | undefined {
  const r = parseResultLine(line);
  if (!r) return undefined;
  if (r.code === undefined)
    return { outcome: 'succeeded', attempts: 1, promptTokens: 0, completionTokens: r.completionTokens ?? 0 };
  return {
    outcome: 'failed',
    attempts: 1,
    promptTokens: 0,
    completionTokens: 0,
    cause: r.code as ResultFacts['cause'],
  };
}
