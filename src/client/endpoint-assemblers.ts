import type { EndpointKind } from './endpoints.js';
import {
  parseStreamChunk,
  ProtocolError,
  StreamAssembler,
  type ServerTimings,
  type Usage,
} from './stream-assembler.js';

/** What an attempt assembles from a stream, whatever the endpoint. */
export interface BodyAssembler {
  /** Feed one SSE `data` payload; returns whether it carried new content (a token). */
  push(data: string): boolean;
  /** Content chunks so far (the first one is the first token). */
  readonly contentChunks: number;
  /** The stream reached its proper end. */
  readonly complete: boolean;
  /** The body the non-streamed endpoint would have answered. */
  toCompletion(): ApiBody;
}

/**
 * An answer's body, any endpoint: the fields shardline reads of it (the rest is kept as it came). A
 * chat answer is a ChatCompletion; read the others through endpoints.ts (usageOf, outputTextOf).
 */
export interface ApiBody {
  model?: string;
  usage?: Partial<Usage> & { input_tokens?: number; output_tokens?: number };
  timings?: ServerTimings;
}

/** The stream assembler for an endpoint that streams. */
export function assemblerFor(kind: EndpointKind): BodyAssembler {
  if (kind === 'completions') return new CompletionsAssembler();
  if (kind === 'responses') return new ResponsesAssembler();
  return new StreamAssembler() as unknown as BodyAssembler;
}

/**
 * Why a non-streamed answer is not one of its endpoint (undefined when it is): chat and completions
 * have `choices`, embeddings a `data` list, responses are `response` objects; anything else passes.
 */
export function plainBodyProblem(kind: EndpointKind, body: unknown): string | undefined {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return 'response body is not a JSON object';
  const b = body as Record<string, unknown>;
  if ((kind === 'chat' || kind === 'completions') && !Array.isArray(b.choices)) return 'response has no choices';
  if (kind === 'embeddings' && !Array.isArray(b.data)) return 'response has no data list';
  if (kind === 'responses' && !Array.isArray(b.output) && b.object !== 'response') return 'response has no output';
  return undefined;
}

interface CompletionChunk {
  id?: string;
  model?: string;
  created?: number;
  error?: { message?: string };
  choices?: { index?: number; text?: string; finish_reason?: string | null; logprobs?: unknown }[];
  usage?: Usage | null;
  timings?: ServerTimings;
}

/** Rebuilds a `text_completion` from its stream of `text_completion` chunks (choices by index). */
export class CompletionsAssembler implements BodyAssembler {
  contentChunks = 0;
  private id = '';
  private model = '';
  private created = 0;
  private done = false;
  private usage: Usage | undefined;
  private timings: ServerTimings | undefined;
  private readonly choices: { text: string; finish_reason: string | null }[] = [];

  push(data: string): boolean {
    if (data === '[DONE]') {
      this.done = true;
      return false;
    }
    const chunk = parseStreamChunk<CompletionChunk>(data);
    if (!this.id && chunk.id) {
      this.id = chunk.id;
      this.model = chunk.model ?? '';
      this.created = chunk.created ?? 0;
    }
    if (chunk.usage) this.usage = chunk.usage;
    if (chunk.timings) this.timings = chunk.timings;
    let token = false;
    for (const c of chunk.choices ?? []) {
      const state = (this.choices[c.index ?? 0] ??= { text: '', finish_reason: null });
      if (c.finish_reason) state.finish_reason = c.finish_reason;
      if (c.text) {
        state.text += c.text;
        if ((c.index ?? 0) === 0) this.contentChunks++;
        token = true;
      }
    }
    return token;
  }

  get complete(): boolean {
    return this.done || this.choices[0]?.finish_reason != null;
  }

  toCompletion(): ApiBody {
    const body: ApiBody & Record<string, unknown> = {
      id: this.id,
      object: 'text_completion',
      created: this.created,
      model: this.model,
      choices: this.choices.map((c, index) => ({
        index,
        text: c.text,
        logprobs: null,
        finish_reason: c.finish_reason,
      })),
    };
    if (this.usage) body.usage = this.usage;
    if (this.timings) body.timings = this.timings;
    return body;
  }
}

interface ResponseEvent {
  type?: string;
  delta?: string;
  response?: ApiBody & { status?: string; error?: { message?: string } | null };
  message?: string;
  error?: { message?: string };
}

/**
 * Reads the Responses API's typed events: `response.output_text.delta` carries the text (its first is
 * the first token), `response.completed` the final `response` object, usage included; a
 * `response.failed` or `error` event is a failed attempt.
 */
export class ResponsesAssembler implements BodyAssembler {
  contentChunks = 0;
  private final: ApiBody | undefined;

  push(data: string): boolean {
    if (data === '[DONE]') return false;
    const ev = parseStreamChunk<ResponseEvent>(data);
    switch (ev.type) {
      case 'response.output_text.delta':
        if (!ev.delta) return false;
        this.contentChunks++;
        return true;
      case 'response.completed':
      case 'response.incomplete':
        this.final = ev.response;
        return false;
      case 'response.failed':
        throw new ProtocolError(`response failed: ${ev.response?.error?.message ?? 'unknown'}`);
      case 'error':
        throw new ProtocolError(`error event in stream: ${ev.message ?? ev.error?.message ?? 'unknown'}`);
      default:
        return false;
    }
  }

  get complete(): boolean {
    return this.final !== undefined;
  }

  toCompletion(): ApiBody {
    return this.final!;
  }
}
