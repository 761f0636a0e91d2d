/** A chat completion as the OpenAI API returns it (the subset shardline assembles). */
export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: {
    index: number;
    /** `reasoning_content`: what reasoning models (vLLM's reasoning parsers, DeepSeek) stream before the answer. */
    message: { role: string; content: string | null; tool_calls?: ToolCall[]; reasoning_content?: string };
    finish_reason: string | null;
  }[];
  usage?: Usage;
  system_fingerprint?: string;
  /** The server's own account of its time (llama.cpp's llama-server sends it), ms. */
  timings?: ServerTimings;
}

/** What llama-server reports of a request's processing: prompt (prefill) and generation time. */
export interface ServerTimings {
  prompt_ms?: number;
  predicted_ms?: number;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** Raised for a stream that is not valid OpenAI SSE. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

/**
 * One SSE `data` payload as JSON, every endpoint's chunks alike: invalid JSON, or an `error` object the
 * server streams instead of a chunk, is a ProtocolError naming what came.
 */
export function parseStreamChunk<T extends { error?: { message?: string } }>(data: string): T {
  let chunk: T;
  try {
    chunk = JSON.parse(data) as T;
  } catch {
    throw new ProtocolError(`invalid JSON in stream: ${data.slice(0, 80)}`);
  }
  if (chunk.error) throw new ProtocolError(`error event in stream: ${chunk.error.message ?? 'unknown'}`);
  return chunk;
}

interface ChunkShape {
  id?: string;
  model?: string;
  created?: number;
  system_fingerprint?: string;
  error?: { message?: string };
  choices?: {
    index?: number;
    delta?: {
      role?: string;
      content?: string | null;
      reasoning_content?: string | null;
      reasoning?: string | null;
      tool_calls?: { index: number; id?: string; function?: { name?: string; arguments?: string } }[];
    };
    finish_reason?: string | null;
  }[];
  usage?: Usage | null;
  timings?: ServerTimings;
}

/** The assembled state of one choice (the assembler holds the first choice's itself). */
interface ChoiceState {
  role: string;
  content: string;
  reasoning?: string;
  finishReason: string | null;
  toolCalls: ToolCall[] | undefined;
}

/**
 * Rebuilds a `chat.completion` from `chat.completion.chunk` events, counting content chunks. Every
 * choice is assembled by its `index`; the first lives in this object's own fields (the hot path),
 * others (`n` > 1) in `others`.
 */
export class StreamAssembler {
  id = '';
  model = '';
  created = 0;
  systemFingerprint: string | undefined;
  role = 'assistant';
  content = '';
  reasoning: string | undefined;
  finishReason: string | null = null;
  timings: ServerTimings | undefined;
  usage: Usage | undefined;
  toolCalls: ToolCall[] | undefined;
  contentChunks = 0;
  done = false;
  /** Choices with index ≥ 1, by index. */
  private others: ChoiceState[] | undefined;

  private appendContent(text: string): void {
    this.content += text;
    // Flatten the growing string every 8 tokens (charCodeAt does): otherwise every token stays a
    // string plus a rope node until the answer ends, and with hundreds of streams open each
    // young-generation GC copies tens of thousands of them. Paced (512 streams, raw, lengths
    // 50–150, three runs each): client-added TTFT p99 11.0–12.3 ms without, 9.0–9.4 ms with.
    if ((++this.contentChunks & 7) === 0) this.content.charCodeAt(0);
  }

  /** Feed one SSE `data` payload; returns whether it carried new content (a token). */
  push(data: string): boolean {
    if (data === '[DONE]') {
      this.done = true;
      return false;
    }
    if (this.id) {
      const content = fastContent(data);
      if (content !== undefined) {
        this.appendContent(content);
        return true;
      }
    }
    const chunk = parseStreamChunk<ChunkShape>(data);
    if (!this.id && chunk.id) {
      this.id = chunk.id;
      this.model = chunk.model ?? '';
      this.created = chunk.created ?? 0;
      this.systemFingerprint = chunk.system_fingerprint;
    }
    if (chunk.usage) this.usage = chunk.usage;
    if (chunk.timings) this.timings = chunk.timings;
    let token = false;
    for (const choice of chunk.choices ?? []) {
      const index = choice.index ?? 0;
      if (index === 0) {
        if (this.applyChoice(this, choice)) token = true;
        continue;
      }
      this.others ??= [];
      const state = (this.others[index] ??= {
        role: 'assistant',
        content: '',
        finishReason: null,
        toolCalls: undefined,
      });
      if (this.applyChoice(state, choice)) token = true;
    }
    return token;
  }

  /** Apply one choice's delta to its state; returns whether it carried content or tool-call arguments. */
  private applyChoice(state: ChoiceState, choice: NonNullable<ChunkShape['choices']>[number]): boolean {
    if (choice.finish_reason) state.finishReason = choice.finish_reason;
    const delta = choice.delta;
    if (!delta) return false;
    if (delta.role) state.role = delta.role;
    // Kept, not counted as tokens: the first token is the first chunk of answer content.
    const reasoning = delta.reasoning_content ?? delta.reasoning;
    if (reasoning) state.reasoning = (state.reasoning ?? '') + reasoning;
    let token = false;
    if (delta.content) {
      // The first choice counts content chunks (its first is the first token) and keeps its string flat.
      if (state === this) this.appendContent(delta.content);
      else state.content += delta.content;
      token = true;
    }
    if (delta.tool_calls) {
      state.toolCalls ??= [];
      for (const tc of delta.tool_calls) {
        const slot = (state.toolCalls[tc.index] ??= {
          id: '',
          type: 'function',
          function: { name: '', arguments: '' },
        });
        if (tc.id) slot.id = tc.id;
        if (tc.function?.name) slot.function.name += tc.function.name;
        if (tc.function?.arguments) {
          slot.function.arguments += tc.function.arguments;
          token = true;
        }
      }
    }
    return token;
  }

  /** Whether the stream reached a proper end ([DONE] or a finish_reason). */
  get complete(): boolean {
    return this.done || this.finishReason !== null;
  }

  toCompletion(): ChatCompletion {
    const choices = [choiceOf(0, this)];
    if (this.others) this.others.forEach((state, index) => choices.push(choiceOf(index, state)));
    const completion: ChatCompletion = {
      id: this.id,
      object: 'chat.completion',
      created: this.created,
      model: this.model,
      choices,
    };
    if (this.usage) completion.usage = this.usage;
    if (this.timings) completion.timings = this.timings;
    if (this.systemFingerprint) completion.system_fingerprint = this.systemFingerprint;
    return completion;
  }
}

function choiceOf(index: number, state: ChoiceState): ChatCompletion['choices'][number] {
  // Optional keys by assignment rather than conditional spreads (several µs each per result).
  const message: ChatCompletion['choices'][number]['message'] = {
    role: state.role,
    content: state.toolCalls && state.content === '' ? null : state.content,
  };
  if (state.toolCalls) message.tool_calls = state.toolCalls;
  if (state.reasoning) message.reasoning_content = state.reasoning;
  return { index, message, finish_reason: state.finishReason };
}

const CHOICE = '"choices":[{"index":0,"delta":{"content":"';
const LOGPROBS = ',"logprobs":null';
const FINISH = ',"finish_reason":null';
const STOP = ',"stop_reason":null';

/**
 * The content of a plain token chunk, read without JSON.parse, or undefined when the chunk is not
 * one (the caller then parses it fully). A chunk qualifies only if its single choice (index 0) has a
 * delta holding nothing but an escape-free content string, then only null logprobs/finish_reason/
 * stop_reason, and nothing after the choices array but fields other than a usage object or an error.
 * Sound because a JSON string cannot contain a bare `"`: the markers can only be structure, and the
 * content ends at the next quote. Why: JSON.parse of each ~190-byte chunk was 39% of a shard's CPU
 * at 14M tokens/min (bench/runner.mjs); this reads the content and a short tail, nothing else.
 */
export function fastContent(data: string): string | undefined {
  const p = data.indexOf(CHOICE);
  if (p === -1) return undefined;
  const start = p + CHOICE.length;
  let q = start;
  for (;;) {
    const c = data.charCodeAt(q);
    if (c === 34 /* " */) break;
    if (c === 92 /* \ */ || Number.isNaN(c)) return undefined;
    q++;
  }
  if (q === start || data.charCodeAt(q + 1) !== 125 /* } */) return undefined;
  let i = q + 2;
  if (data.startsWith(LOGPROBS, i)) i += LOGPROBS.length;
  if (!data.startsWith(FINISH, i)) return undefined;
  i += FINISH.length;
  if (data.startsWith(STOP, i)) i += STOP.length;
  if (data.charCodeAt(i) !== 125 || data.charCodeAt(i + 1) !== 93 /* }] */) return undefined;
  if (data.indexOf('"usage":{', i) !== -1 || data.indexOf('"error"', i) !== -1) return undefined;
  return data.slice(start, q);
}
