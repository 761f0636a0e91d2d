import type { JsonlLine } from './jsonl-lines.js';

/** A request ready for dispatch: the body is serialized once, here. */
export interface RequestSpec {
  /** custom_id from a Batch line, or `line-N` for a bare chat body. */
  id: string;
  lineNo: number;
  /** JSON text of the body to POST (model override and streaming options applied). */
  body: string;
  /** Whether the request streams (false only when the input body says `"stream": false`). */
  stream: boolean;
}

/** A line that cannot be run; it goes to rejects.jsonl with its line number. */
export interface RejectedLine {
  lineNo: number;
  reason: string;
  /** The start of the raw line, to find it. */
  excerpt: string;
}

export interface ParseLineOptions {
  model?: string | undefined;
  maxLineBytes: number;
}

const EXCERPT = 200;

/**
 * Parse one input line: an OpenAI Batch API request `{"custom_id","method","url","body"}` or a bare
 * chat body `{"messages":[…]}`. Returns undefined for blank lines. Duplicate ids are the caller's
 * concern (it owns the id set).
 */
export function parseRequestLine(line: JsonlLine, opts: ParseLineOptions): RequestSpec | RejectedLine | undefined {
  if ('tooLong' in line) {
    return {
      lineNo: line.lineNo,
      reason: `line is ${line.bytes} bytes, over the ${opts.maxLineBytes}-byte limit`,
      excerpt: '',
    };
  }
  const text = line.text;
  if (text.trim() === '') return undefined;
  const reject = (reason: string): RejectedLine => ({ lineNo: line.lineNo, reason, excerpt: text.slice(0, EXCERPT) });
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return reject(`invalid JSON: ${(err as Error).message}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return reject('expected a JSON object');
  const obj = doc as Record<string, unknown>;
  let id: string;
  let body: Record<string, unknown>;
  if ('custom_id' in obj || 'body' in obj) {
    if (typeof obj.custom_id !== 'string' || obj.custom_id === '')
      return reject('custom_id must be a non-empty string');
    if (obj.body === null || typeof obj.body !== 'object' || Array.isArray(obj.body))
      return reject('body must be an object');
    if (obj.method !== undefined && obj.method !== 'POST')
      return reject(`method must be POST, got ${JSON.stringify(obj.method)}`);
    if (obj.url !== undefined && obj.url !== '/v1/chat/completions' && obj.url !== '/chat/completions') {
      return reject(`url must be /v1/chat/completions, got ${JSON.stringify(obj.url)}`);
    }
    id = obj.custom_id;
    body = obj.body as Record<string, unknown>;
  } else {
    id = `line-${line.lineNo}`;
    body = obj;
  }
  if (!Array.isArray(body.messages) || body.messages.length === 0)
    return reject('no messages: body.messages must be a non-empty array');
  const stream = body.stream !== false;
  const out: Record<string, unknown> = { ...body };
  if (opts.model) out.model = opts.model;
  if (stream) {
    out.stream = true;
    const so = (body.stream_options ?? {}) as Record<string, unknown>;
    out.stream_options = { ...so, include_usage: true };
  }
  return { id, lineNo: line.lineNo, body: JSON.stringify(out), stream };
}
