import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { BatchEngine, Sequence, SequenceSink } from './batch-engine.js';
import type { SimProfile } from './profile-schema.js';
import type { FaultKind, RequestTiming, SimMetrics } from './sim-metrics.js';
import { completionText, tokenText } from './token-text.js';

export interface SimResponseInit {
  /** The endpoint answered: chat completion chunks, text_completion chunks, or Responses API events. @default chat */
  api?: 'chat' | 'completions' | 'responses';
  id: string;
  model: string;
  stream: boolean;
  includeUsage: boolean;
  usage: boolean;
  promptTokens: number;
  finishReason: 'length' | 'stop';
  /** Extra response headers (rate-limit state). */
  headers: Record<string, string>;
}

const SUFFIX = ',"logprobs":null,"finish_reason":null}]}\n\n';

/** Send a whole JSON answer (not streamed): its id, the rate-limit headers, keep-alive as the profile says. */
export function answerJson(
  core: ResponseHost,
  res: ServerResponse,
  init: { id: string; headers: Record<string, string> },
  text: string,
): void {
  res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-request-id': init.id,
    ...init.headers,
    ...(core.profile.faults.keep_alive ? {} : { connection: 'close' }),
  });
  res.end(text);
}

/** Count a 200 and record the request's server timings, once its answer is complete. */
export function recordAnswered(core: ResponseHost, id: string, seq: Sequence, completionTokens: number): void {
  core.countStatus(200);
  core.recordTiming({
    id,
    arrivalMs: seq.arrivalMs,
    ioTurnMs: seq.ioTurnMs,
    admittedMs: seq.admittedMs,
    firstTokenMs: seq.firstTokenMs,
    endMs: core.now(),
    completionTokens,
  });
}

/** What a response needs of the simulator (SimCore), declared here so the two files do not import each other. */
export interface ResponseHost {
  readonly profile: SimProfile;
  readonly engine: BatchEngine;
  readonly metrics: SimMetrics;
  now(): number;
  countStatus(code: number | 'reset'): void;
  countFault(kind: FaultKind): void;
  recordTiming(t: RequestTiming): void;
  closeSoon(socket: Socket): void;
}

/**
 * Turns engine progress into the OpenAI wire format. Hot path: one `res.write` per step per
 * sequence, with every chunk of that step built by string concatenation over a precomputed prefix.
 */
export class SimResponse implements SequenceSink {
  private readonly created = Math.floor(Date.now() / 1000);
  private readonly head: string;
  private done = false;

  constructor(
    private readonly core: ResponseHost,
    private readonly res: ServerResponse,
    private readonly init: SimResponseInit,
  ) {
    this.api = init.api ?? 'chat';
    this.head =
      this.api === 'completions'
        ? `${this.chunkPrefix()}[{"index":0,"text":`
        : this.api === 'responses'
          ? 'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",' +
            `"item_id":"msg_${init.id}","output_index":0,"content_index":0,"delta":`
          : `${this.chunkPrefix()}[{"index":0,"delta":`;
  }
  private readonly api: 'chat' | 'completions' | 'responses';

  /** An SSE chunk up to its choices array: `data: {"id":…,"object":…,"created":…,"model":…,"choices":`. */
  private chunkPrefix(): string {
    return (
      `data: {"id":"${this.init.id}",` +
      `"object":"${this.api === 'completions' ? 'text_completion' : 'chat.completion.chunk'}",` +
      `"created":${this.created},` +
      `"model":${JSON.stringify(this.init.model)},"choices":`
    );
  }

  start(seq: Sequence): void {
    const close = !this.core.profile.faults.keep_alive;
    if (this.init.stream) {
      this.res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        'x-request-id': this.init.id,
        ...this.init.headers,
        ...(close ? { connection: 'close' } : {}),
      });
      this.res.flushHeaders();
    }
    this.res.on('close', () => {
      if (!this.done) {
        this.done = true;
        this.core.engine.cancel(seq);
      }
    });
  }

  tokens(seq: Sequence, from: number, count: number): void {
    if (from === 0) this.core.metrics.ttftS.observe((seq.firstTokenMs - seq.arrivalMs) / 1000);
    if (!this.init.stream || this.done) return;
    const end = from + count;
    let s = '';
    if (this.api === 'chat') {
      if (from === 0) s = `${this.head}{"role":"assistant","content":""}${SUFFIX}`;
      for (let i = from; i < end; i++) s += `${this.head}{"content":"${tokenText(i)}"}${SUFFIX}`;
    } else if (this.api === 'completions') {
      for (let i = from; i < end; i++) s += `${this.head}"${tokenText(i)}"${SUFFIX}`;
    } else {
      if (from === 0) s = this.responseEvent('response.created', this.responseObject('in_progress', 0));
      for (let i = from; i < end; i++) s += `${this.head}"${tokenText(i)}"}\n\n`;
    }
    this.writeChunk(s);
  }

  /**
   * Write one HTTP/1.1 chunk straight to the socket. After flushHeaders the body is ours to frame;
   * OutgoingMessage.write adds a cork, a nextTick and several internal copies per call, which at
   * one write per token per stream was most of the simulator's CPU (bench/runner.mjs paced).
   * `res.end()` still writes the terminating chunk.
   */
  private writeChunk(s: string): void {
    const socket = this.res.socket;
    if (!socket || socket.destroyed) return;
    socket.write(`${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`);
  }

  finish(seq: Sequence): void {
    if (this.done) return;
    this.done = true;
    const usage = {
      prompt_tokens: this.init.promptTokens,
      completion_tokens: seq.emitted,
      total_tokens: this.init.promptTokens + seq.emitted,
    };
    // llama-server's own account of the request: prefill from admission to the first token, then
    // generation; the time before admission (its queue) is in neither.
    const timings = this.core.profile.faults.timings
      ? {
          prompt_n: this.init.promptTokens,
          prompt_ms: Math.round((seq.firstTokenMs - seq.admittedMs) * 1000) / 1000,
          predicted_n: seq.emitted,
          predicted_ms: Math.round((this.core.now() - seq.firstTokenMs) * 1000) / 1000,
        }
      : undefined;
    if (this.init.stream && this.api === 'responses') {
      this.res.end(this.responseEvent('response.completed', this.responseObject('completed', seq.emitted, usage)));
    } else if (this.init.stream) {
      const finish = SUFFIX.replace('"finish_reason":null', `"finish_reason":"${this.init.finishReason}"`);
      let s = this.api === 'completions' ? `${this.head}""${finish}` : `${this.head}{}${finish}`;
      if (this.init.includeUsage) {
        const timed = timings ? `,"timings":${JSON.stringify(timings)}` : '';
        s += `${this.chunkPrefix()}[],"usage":${JSON.stringify(usage)}${timed}}\n\n`;
      }
      s += 'data: [DONE]\n\n';
      this.res.end(s);
      const socket = this.res.socket;
      if (this.core.profile.faults.close_after_stream && socket) this.core.closeSoon(socket);
    } else {
      const body = JSON.stringify(
        this.api === 'chat'
          ? {
              id: this.init.id,
              object: 'chat.completion',
              created: this.created,
              model: this.init.model,
              choices: [
                {
                  index: 0,
                  message: { role: 'assistant', content: completionText(seq.emitted), refusal: null },
                  logprobs: null,
                  finish_reason: this.init.finishReason,
                },
              ],
              ...(this.init.usage ? { usage } : {}),
              ...(timings ? { timings } : {}),
            }
          : this.plainBody(seq.emitted, usage),
      );
      answerJson(this.core, this.res, this.init, body);
    }
    recordAnswered(this.core, this.init.id, seq, seq.emitted);
  }

  /** A non-streamed answer of the completions or responses endpoint. */
  private plainBody(emitted: number, usage: { prompt_tokens: number; completion_tokens: number }): unknown {
    if (this.api === 'responses') return this.responseObject('completed', emitted, usage);
    return {
      id: this.init.id,
      object: 'text_completion',
      created: this.created,
      model: this.init.model,
      choices: [{ index: 0, text: completionText(emitted), logprobs: null, finish_reason: this.init.finishReason }],
      ...(this.init.usage ? { usage } : {}),
    };
  }

  /** A Responses API `response` object, with its text once there is any. */
  private responseObject(
    status: 'in_progress' | 'completed',
    emitted: number,
    usage?: { prompt_tokens: number; completion_tokens: number },
  ): Record<string, unknown> {
    const text = completionText(emitted);
    return {
      id: `resp_${this.init.id}`,
      object: 'response',
      created_at: this.created,
      status,
      model: this.init.model,
      output:
        status === 'completed'
          ? [
              {
                type: 'message',
                id: `msg_${this.init.id}`,
                status: 'completed',
                role: 'assistant',
                content: [{ type: 'output_text', text, annotations: [] }],
              },
            ]
          : [],
      ...(usage && this.init.usage
        ? {
            usage: {
              input_tokens: usage.prompt_tokens,
              output_tokens: usage.completion_tokens,
              total_tokens: usage.prompt_tokens + usage.completion_tokens,
            },
          }
        : {}),
    };
  }

  private responseEvent(type: string, response: Record<string, unknown>): string {
    return `event: ${type}\ndata: ${JSON.stringify({ type, response })}\n\n`;
  }

  reset(_seq: Sequence): void {
    if (this.done) return;
    this.done = true;
    this.core.countFault('reset');
    this.core.countStatus('reset');
    const socket = this.res.socket;
    if (socket && typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
    else socket?.destroy();
  }

  stalled(seq: Sequence): void {
    this.core.countFault('stall');
    const every = this.core.profile.faults.stall.keepalive_ms;
    if (!this.init.stream || every <= 0) return;
    // Comments keep the connection visibly alive without carrying a token, as some proxies do.
    const timer = setInterval(() => {
      if (this.done) clearInterval(timer);
      else this.writeChunk(': keep-alive\n\n');
    }, every);
    setTimeout(() => clearInterval(timer), seq.stallMs);
  }
}
