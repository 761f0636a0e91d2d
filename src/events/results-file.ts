import { readJsonlLines } from '../input/jsonl-lines.js';

/** A run directory's results, one line per input request (OpenAI Batch output format). */
export const RESULTS_FILE = 'results.jsonl';

/**
 * The longest results.jsonl line read back (a long completion, JSON-escaped, can pass the 1 MiB
 * input-line limit; a result line skipped as too long would be run again). @default 256 MiB
 */
export const MAX_RESULT_LINE_BYTES = 256 * 1024 * 1024;

/** What a results.jsonl line says about its request. */
export interface ResultSummary {
  /** The request's `custom_id`. */
  id: string;
  /** `error.code` of a failed result; undefined for a success. */
  code: string | undefined;
  /** `response.body.usage.completion_tokens` of a success, when the server sent usage. */
  completionTokens: number | undefined;
}

/** Parse one results.jsonl line; undefined for a line that is not a result (no string custom_id). */
export function parseResultLine(text: string): ResultSummary | undefined {
  let r: { custom_id?: unknown; error?: { code?: unknown } | null; response?: { body?: { usage?: { completion_tokens?: unknown } } } | null };
  try {
    r = JSON.parse(text) as typeof r;
  } catch {
    // a torn line is repaired away when the file is opened for appending; anything else is not a result
    return undefined;
  }
  if (typeof r?.custom_id !== 'string') return undefined;
  const code = r.error ? (typeof r.error.code === 'string' ? r.error.code : 'unknown') : undefined;
  const tokens = r.response?.body?.usage?.completion_tokens;
  return { id: r.custom_id, code, completionTokens: code === undefined && typeof tokens === 'number' ? tokens : undefined };
}

/** Every result in a results.jsonl file, in file order (lines that are not results are skipped). */
export async function* readResults(path: string): AsyncGenerator<ResultSummary & { text: string }> {
  for await (const line of readJsonlLines(path, MAX_RESULT_LINE_BYTES)) {
    if ('tooLong' in line || line.text === '') continue;
    const r = parseResultLine(line.text);
    if (r) yield Object.assign(r, { text: line.text });
  }
}
