/**
 * The OpenAI Batch endpoints shardline speaks, and what each one's request and answer look like to
 * it. `other` is any further POST path under /v1/ (vLLM's /v1/rerank, /v1/score, OpenAI's
 * /v1/moderations): sent as it is, never streamed, counted by status, latency and `usage` where present.
 */
export const ENDPOINTS = ['chat', 'completions', 'embeddings', 'responses', 'other'] as const;
export type EndpointKind = (typeof ENDPOINTS)[number];

/** Each known endpoint's path under the API base URL. */
export const ENDPOINT_PATHS = {
  chat: 'chat/completions',
  completions: 'completions',
  embeddings: 'embeddings',
  responses: 'responses',
} as const satisfies Record<Exclude<EndpointKind, 'other'>, string>;

/** The Batch line `url` of each known endpoint. */
export const ENDPOINT_URLS = {
  chat: '/v1/chat/completions',
  completions: '/v1/completions',
  embeddings: '/v1/embeddings',
  responses: '/v1/responses',
} as const;

/** Endpoints whose answers can stream (chat and completions as SSE chunks, responses as typed events). */
export function streams(kind: EndpointKind): boolean {
  return kind === 'chat' || kind === 'completions' || kind === 'responses';
}

/** Endpoints whose answers are generated text: their throughput is completion (output) tokens. */
export function generates(kind: EndpointKind): boolean {
  return streams(kind);
}

/**
 * The endpoint of a Batch line's `url` (`/v1/embeddings`, or without the `/v1` prefix), and its path
 * under the base URL; undefined for a url that is not a POST path under /v1/.
 */
export function endpointOfUrl(url: string): { kind: EndpointKind; path: string } | undefined {
  const m = /^(?:\/v1)?\/([a-z0-9][a-z0-9_./-]*)$/i.exec(url);
  if (!m || m[1]!.includes('..')) return undefined;
  const path = m[1]!.replace(/\/+$/, '');
  for (const [kind, p] of Object.entries(ENDPOINT_PATHS)) if (p === path) return { kind: kind as EndpointKind, path };
  return url.startsWith('/v1/') ? { kind: 'other', path } : undefined;
}

/** What a request body must hold for its endpoint; the message names the missing field. */
export function bodyProblem(kind: EndpointKind, body: Record<string, unknown>): string | undefined {
  switch (kind) {
    case 'chat':
      return Array.isArray(body.messages) && body.messages.length > 0
        ? undefined
        : 'no messages: body.messages must be a non-empty array';
    case 'completions':
      return typeof body.prompt === 'string' || (Array.isArray(body.prompt) && body.prompt.length > 0)
        ? undefined
        : 'no prompt: body.prompt must be a string or a non-empty array';
    case 'embeddings':
      return typeof body.input === 'string' || (Array.isArray(body.input) && body.input.length > 0)
        ? undefined
        : 'no input: body.input must be a string or a non-empty array';
    case 'responses':
      return typeof body.input === 'string' || (Array.isArray(body.input) && body.input.length > 0)
        ? undefined
        : 'no input: body.input must be a string or a non-empty array';
    case 'other':
      return undefined;
  }
}

/** Input items of an embeddings request (an `input` may be an array), 1 for anything else. */
export function inputItems(body: Record<string, unknown>): number {
  return Array.isArray(body.input) ? body.input.length : 1;
}

/** Token counts an answer's `usage` gives, in chat terms: prompt (input) and completion (output). */
export interface UsageCounts {
  prompt: number | undefined;
  completion: number | undefined;
}

/** Read `usage` of any endpoint's answer: chat/completions/embeddings name prompt_tokens, responses input_tokens. */
export function usageOf(kind: EndpointKind, body: unknown): UsageCounts {
  const u = (body as { usage?: Record<string, unknown> } | null)?.usage;
  if (!u || typeof u !== 'object') return { prompt: undefined, completion: undefined };
  const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
  if (kind === 'responses') return { prompt: num(u.input_tokens), completion: num(u.output_tokens) };
  // Embeddings produce no tokens: their usage counts the input alone.
  const completion = kind === 'embeddings' ? 0 : num(u.completion_tokens);
  return {
    prompt: num(u.prompt_tokens) ?? num(u.input_tokens),
    completion: completion ?? (kind === 'other' ? 0 : undefined),
  };
}

/** The generated text of an answer, for counting its tokens when the server sent no usage. */
export function outputTextOf(kind: EndpointKind, body: unknown): string {
  const b = body as Record<string, unknown> | null;
  if (!b) return '';
  if (kind === 'completions') {
    const choices = (b.choices ?? []) as { text?: string }[];
    return choices.map((c) => c.text ?? '').join('');
  }
  if (kind === 'responses') {
    if (typeof b.output_text === 'string') return b.output_text;
    const out = (b.output ?? []) as { content?: { type?: string; text?: string }[] }[];
    return out
      .flatMap((o) => o.content ?? [])
      .map((c) => c.text ?? '')
      .join('');
  }
  return '';
}
