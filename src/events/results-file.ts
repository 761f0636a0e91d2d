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
  /** `response.body.usage.completion_tokens` (`output_tokens`: Responses API) of a success, when sent. */
  completionTokens: number | undefined;
}

/** Parse one results.jsonl line; undefined for a line that is not a result (no string custom_id). */
export function parseResultLine(text: string): ResultSummary | undefined {
  return scanSuccessLine(text) ?? parseAnyLine(text);
}

const HEAD = '{"id":"';
const CUSTOM_ID = ',"custom_id":"';
const RESPONSE = ',"response":{';
const SUCCESS_TAIL = ',"error":null}';
const USAGE = '"usage":';
const BODY = '"body":{';
const COMPLETION_TOKENS = '"completion_tokens":';

/**
 * A success line exactly as shardline writes it (result-line.ts), read without JSON.parse: the
 * results check reads every line of a run, and parsing each whole body was a third of `report`'s
 * time on a million-request run (readResults over 200,000 lines: ~0.6 s with this scan, ~1.0 s with
 * JSON.parse, 0.15 s to read the lines alone). Anything it is not
 * sure of (escapes in the ids, no usage object, a second "usage" key, a failure) returns undefined
 * and goes to JSON.parse; a property test holds the two equal.
 */
export function scanSuccessLine(text: string): ResultSummary | undefined {
  if (!text.startsWith(HEAD) || !text.endsWith(SUCCESS_TAIL)) return undefined;
  const idEnd = text.indexOf('"', HEAD.length);
  if (idEnd < 0 || !text.startsWith(CUSTOM_ID, idEnd + 1)) return undefined;
  const cidStart = idEnd + 1 + CUSTOM_ID.length;
  const cidEnd = text.indexOf('"', cidStart);
  if (cidEnd < 0 || !text.startsWith(RESPONSE, cidEnd + 1)) return undefined;
  const slash = text.indexOf('\\', HEAD.length);
  if (slash !== -1 && slash < cidEnd) return undefined;
  const id = text.slice(cidStart, cidEnd);
  const u = text.indexOf(USAGE, cidEnd);
  if (u === -1) return { id, code: undefined, completionTokens: undefined };
  if (u !== text.lastIndexOf(USAGE) || text.charCodeAt(u + USAGE.length) !== 123 /* { */) return undefined;
  // The usage that counts is the body's own, not one nested deeper in it.
  const b = text.indexOf(BODY, cidEnd);
  if (b === -1 || b > u || depthBetween(text, b + BODY.length, u) !== 0) return undefined;
  const k = text.indexOf(COMPLETION_TOKENS, u);
  const close = text.indexOf('}', u);
  const brace = text.indexOf('{', u + USAGE.length + 1);
  if (k === -1 || k > close || (brace !== -1 && brace < k)) return undefined;
  let i = k + COMPLETION_TOKENS.length;
  let n = 0;
  const first = i;
  for (let c = text.charCodeAt(i); c >= 48 && c <= 57; c = text.charCodeAt(++i)) n = n * 10 + (c - 48);
  const next = text.charCodeAt(i);
  if (i === first || i - first > 15 || (next !== 44 /* , */ && next !== 125) /* } */) return undefined;
  return { id, code: undefined, completionTokens: n };
}

/** Object/array nesting at `to`, counted from `from` (just inside an object); -1 for a torn string. */
function depthBetween(text: string, from: number, to: number): number {
  let depth = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      // Jump to the string's closing quote: one not preceded by an odd run of backslashes.
      let j = i + 1;
      for (;;) {
        j = text.indexOf('"', j);
        if (j === -1) return -1;
        let slashes = 0;
        while (text.charCodeAt(j - 1 - slashes) === 92 /* \\ */) slashes++;
        if (slashes % 2 === 0) break;
        j++;
      }
      i = j;
    } else if (c === 123 || c === 91) depth++;
    else if (c === 125 || c === 93) depth--;
  }
  return depth;
}

function parseAnyLine(text: string): ResultSummary | undefined {
  let r: {
    custom_id?: unknown;
    error?: { code?: unknown } | null;
    response?: { body?: { usage?: { completion_tokens?: unknown; output_tokens?: unknown } } } | null;
  };
  try {
    r = JSON.parse(text) as typeof r;
  } catch {
    // a torn line is repaired away when the file is opened for appending; anything else is not a result
    return undefined;
  }
  if (typeof r?.custom_id !== 'string') return undefined;
  const code = r.error ? (typeof r.error.code === 'string' ? r.error.code : 'unknown') : undefined;
  // The Responses API names its completion tokens output_tokens.
  const usage = r.response?.body?.usage;
  const tokens = usage?.completion_tokens ?? usage?.output_tokens;
  return {
    id: r.custom_id,
    code,
    completionTokens: code === undefined && typeof tokens === 'number' ? tokens : undefined,
  };
}

/** Every result in a results.jsonl file, in file order (lines that are not results are skipped). */
export async function* readResults(path: string): AsyncGenerator<ResultSummary & { text: string }> {
  for await (const line of readJsonlLines(path, MAX_RESULT_LINE_BYTES)) {
    if ('tooLong' in line || line.text === '') continue;
    const r = parseResultLine(line.text);
    if (r) yield Object.assign(r, { text: line.text });
  }
}
