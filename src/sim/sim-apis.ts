import type { ServerResponse } from 'node:http';
import type { Sequence, SequenceSink } from './batch-engine.js';
import { answerJson, recordAnswered, type ResponseHost } from './sim-response.js';
import { textTokens } from './token-text.js';

/**
 * The endpoints the simulator serves. Generation endpoints (chat, completions, responses) decode
 * tokens in the batch engine; embeddings, rerank and score hold a slot for a prefill of their whole
 * input and one step, so their cost grows with input tokens and with the batch they share.
 */
export type SimApi = 'chat' | 'completions' | 'responses' | 'embeddings' | 'rerank' | 'score';

export const SIM_API_PATHS: Readonly<Record<string, SimApi>> = {
  '/v1/chat/completions': 'chat',
  '/v1/completions': 'completions',
  '/v1/responses': 'responses',
  '/v1/embeddings': 'embeddings',
  '/v1/rerank': 'rerank',
  '/v1/score': 'score',
};

export function generates(api: SimApi): api is 'chat' | 'completions' | 'responses' {
  return api === 'chat' || api === 'completions' || api === 'responses';
}

/** The OpenAI-style 400 message for a body its endpoint cannot take, or undefined. */
export function apiBodyProblem(api: SimApi, body: Record<string, unknown>): string | undefined {
  const nonEmpty = (v: unknown) => typeof v === 'string' || (Array.isArray(v) && v.length > 0);
  if (api === 'completions' && !nonEmpty(body.prompt))
    return "Missing required parameter: 'prompt' (a string or a non-empty array).";
  if ((api === 'embeddings' || api === 'responses') && !nonEmpty(body.input))
    return "Missing required parameter: 'input' (a string or a non-empty array).";
  if ((api === 'rerank' || api === 'score') && !nonEmpty(body.documents ?? body.text_2))
    return "Missing required parameter: 'documents'.";
  if (api === 'embeddings' && body.stream !== undefined) return "Unrecognized request argument supplied: 'stream'.";
  return undefined;
}

/** Input tokens of a non-chat request (chat counts its messages: countPromptTokens). */
export function inputTokens(api: SimApi, body: Record<string, unknown>): number {
  if (api === 'completions') return textTokens(body.prompt);
  if (api === 'rerank' || api === 'score')
    return textTokens(body.query ?? body.text_1) + textTokens(body.documents ?? body.text_2);
  // Embeddings pay a few tokens of framing per input, so a batch of many short inputs is not free.
  if (api === 'embeddings') return textTokens(body.input) + (Array.isArray(body.input) ? body.input.length : 1);
  return textTokens(body.input);
}

/**
 * The answer of an embeddings, rerank or score request, written when its one step is done: every
 * vector (deterministic from its index, `dimensions` long, 32 by default), every score, and usage.
 */
export class PlainResponse implements SequenceSink {
  private done = false;

  constructor(
    private readonly core: ResponseHost,
    private readonly res: ServerResponse,
    private readonly api: 'embeddings' | 'rerank' | 'score',
    private readonly body: Record<string, unknown>,
    private readonly init: { id: string; model: string; promptTokens: number; headers: Record<string, string> },
  ) {}

  start(seq: Sequence): void {
    this.res.on('close', () => {
      if (!this.done) {
        this.done = true;
        this.core.engine.cancel(seq);
      }
    });
  }

  tokens(): void {}

  finish(seq: Sequence): void {
    if (this.done) return;
    this.done = true;
    const usage = { prompt_tokens: this.init.promptTokens, total_tokens: this.init.promptTokens };
    answerJson(this.core, this.res, this.init, JSON.stringify(this.answer(usage)));
    recordAnswered(this.core, this.init.id, seq, 0);
  }

  private answer(usage: { prompt_tokens: number; total_tokens: number }): Record<string, unknown> {
    const model = this.init.model;
    if (this.api === 'embeddings') {
      const inputs = Array.isArray(this.body.input) ? this.body.input : [this.body.input];
      const dims = typeof this.body.dimensions === 'number' && this.body.dimensions > 0 ? this.body.dimensions : 32;
      const base64 = this.body.encoding_format === 'base64';
      const data = inputs.map((_, index) => {
        const vector = Array.from({ length: dims }, (_, d) => Math.round(Math.sin(index * 31 + d) * 1e6) / 1e6);
        // base64: little-endian float32s, as OpenAI sends them (the openai client asks for this by default).
        const embedding = base64 ? Buffer.from(Float32Array.from(vector).buffer).toString('base64') : vector;
        return { object: 'embedding', index, embedding };
      });
      return { object: 'list', data, model, usage };
    }
    const docs = (this.body.documents ?? this.body.text_2) as unknown[] | string;
    const n = Array.isArray(docs) ? docs.length : 1;
    const scores = Array.from({ length: n }, (_, index) => ({ index, relevance_score: 1 / (index + 1) }));
    if (this.api === 'rerank') return { id: this.init.id, model, results: scores, usage };
    return {
      id: this.init.id,
      object: 'list',
      model,
      data: scores.map((s) => ({ index: s.index, object: 'score', score: s.relevance_score })),
      usage,
    };
  }

  reset(): void {
    if (this.done) return;
    this.done = true;
    this.core.countFault('reset');
    this.core.countStatus('reset');
    this.res.socket?.destroy();
  }

  stalled(): void {}
}
