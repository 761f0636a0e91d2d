/** A chat completion as the OpenAI API returns it (the subset shardline assembles). */
export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: {
    index: number;
    message: { role: string; content: string | null; tool_calls?: ToolCall[] };
    finish_reason: string | null;
  }[];
  usage?: Usage;
  system_fingerprint?: string;
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

interface ChunkShape {
  id?: string;
  model?: string;
  created?: number;
  system_fingerprint?: string;
  error?: { message?: string };
  choices?: {
    index?: number;
    delta?: { role?: string; content?: string | null; tool_calls?: { index: number; id?: string; function?: { name?: string; arguments?: string } }[] };
    finish_reason?: string | null;
  }[];
  usage?: Usage | null;
}

/**
 * Rebuilds a `chat.completion` from `chat.completion.chunk` events, counting content chunks. Only the
 * first choice is assembled (shardline sends n = 1).
 */
export class StreamAssembler {
  id = '';
  model = '';
  created = 0;
  systemFingerprint: string | undefined;
  role = 'assistant';
  content = '';
  finishReason: string | null = null;
  usage: Usage | undefined;
  toolCalls: ToolCall[] | undefined;
  contentChunks = 0;
  done = false;

  /** Feed one SSE `data` payload; returns whether it carried new content (a token). */
  push(data: string): boolean {
    if (data === '[DONE]') {
      this.done = true;
      return false;
    }
    let chunk: ChunkShape;
    try {
      chunk = JSON.parse(data) as ChunkShape;
    } catch {
      throw new ProtocolError(`invalid JSON in stream: ${data.slice(0, 80)}`);
    }
    if (chunk.error) throw new ProtocolError(`error event in stream: ${chunk.error.message ?? 'unknown'}`);
    if (!this.id && chunk.id) {
      this.id = chunk.id;
      this.model = chunk.model ?? '';
      this.created = chunk.created ?? 0;
      this.systemFingerprint = chunk.system_fingerprint;
    }
    if (chunk.usage) this.usage = chunk.usage;
    const choice = chunk.choices?.[0];
    if (!choice) return false;
    if (choice.finish_reason) this.finishReason = choice.finish_reason;
    const delta = choice.delta;
    if (!delta) return false;
    if (delta.role) this.role = delta.role;
    let token = false;
    if (delta.content) {
      this.content += delta.content;
      this.contentChunks++;
      token = true;
    }
    if (delta.tool_calls) {
      this.toolCalls ??= [];
      for (const tc of delta.tool_calls) {
        const slot = (this.toolCalls[tc.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } });
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
    return {
      id: this.id,
      object: 'chat.completion',
      created: this.created,
      model: this.model,
      choices: [
        {
          index: 0,
          message: {
            role: this.role,
            content: this.toolCalls && this.content === '' ? null : this.content,
            ...(this.toolCalls ? { tool_calls: this.toolCalls } : {}),
          },
          finish_reason: this.finishReason,
        },
      ],
      ...(this.usage ? { usage: this.usage } : {}),
      ...(this.systemFingerprint ? { system_fingerprint: this.systemFingerprint } : {}),
    };
  }
}
