import { bodyProblem, endpointOfUrl, inputItems, streams, type EndpointKind } from '../client/endpoints.js';
import type { JsonlLine } from './jsonl-lines.js';

/** A request ready for dispatch: the body is serialized once, here. */
export interface RequestSpec {
  /** custom_id from a Batch line, or `line-N` for a bare chat body. */
  id: string;
  lineNo: number;
  /** JSON text of the body to POST (model override and streaming options applied). */
  body: string;
  /** Whether the request streams (false when the body says `"stream": false`, and for endpoints that never do). */
  stream: boolean;
  /** The endpoint, when not chat (absent on the hot path of a chat job). */
  endpoint?: Exclude<EndpointKind, 'chat'>;
  /** Its path under the API base URL, for an `other` endpoint (`rerank`). */
  path?: string;
  /** An embeddings request's inputs (its `input` may be an array). */
  items?: number;
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
  /** The endpoint of bare bodies without `messages` (`--url`). @default chat */
  url?: { kind: EndpointKind; path: string } | undefined;
}

const EXCERPT = 200;

/**
 * Parse one input line: an OpenAI Batch API request `{"custom_id","method","url","body"}` for any
 * endpoint (`url` chooses it), or a bare body: chat with `messages`, else for the run's `--url`.
 * Returns undefined for blank lines. Duplicate ids are the caller's concern (it owns the id set).
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
  let endpoint: { kind: EndpointKind; path: string } = CHAT;
  if ('custom_id' in obj || 'body' in obj) {
    if (typeof obj.custom_id !== 'string' || obj.custom_id === '')
      return reject('custom_id must be a non-empty string');
    if (obj.body === null || typeof obj.body !== 'object' || Array.isArray(obj.body))
      return reject('body must be an object');
    if (obj.method !== undefined && obj.method !== 'POST')
      return reject(`method must be POST, got ${JSON.stringify(obj.method)}`);
    if (obj.url !== undefined) {
      const e = typeof obj.url === 'string' ? endpointOfUrl(obj.url) : undefined;
      if (!e)
        return reject(
          `url must be a POST path under /v1/ such as /v1/chat/completions, got ${JSON.stringify(obj.url)}`,
        );
      endpoint = e;
    }
    id = obj.custom_id;
    body = obj.body as Record<string, unknown>;
  } else {
    id = `line-${line.lineNo}`;
    body = obj;
    // A bare body is chat when it has messages; otherwise it is for the run's --url.
    if (!('messages' in body) && opts.url) endpoint = opts.url;
  }
  const problem = bodyProblem(endpoint.kind, body);
  if (problem) return reject(problem);
  const stream = streams(endpoint.kind) && body.stream !== false;
  const out: Record<string, unknown> = { ...body };
  if (opts.model) out.model = opts.model;
  if (stream) {
    out.stream = true;
    // The Responses API has no stream_options: its final event carries usage.
    if (endpoint.kind !== 'responses') {
      const so = (body.stream_options ?? {}) as Record<string, unknown>;
      out.stream_options = { ...so, include_usage: true };
    }
  }
  const spec: RequestSpec = { id, lineNo: line.lineNo, body: JSON.stringify(out), stream };
  if (endpoint.kind !== 'chat') spec.endpoint = endpoint.kind;
  if (endpoint.kind === 'other') spec.path = endpoint.path;
  if (endpoint.kind === 'embeddings') spec.items = inputItems(body);
  return spec;
}

const CHAT = { kind: 'chat', path: 'chat/completions' } as const;
