import type { AttemptOutcome } from '../../client/chat-attempt.js';
import { outputTextOf, usageOf } from '../../client/endpoints.js';
import type { ChatCompletion } from '../../client/stream-assembler.js';
import {
  estimateCompletionTokens,
  estimateInputTokens,
  estimatePromptTokens,
  estimateTokens,
} from '../../client/token-estimate.js';
import type { EventPayloads } from '../../events/event-types.js';
import { round3 } from '../../metrics/percentiles.js';
import type { WorkItem } from '../ipc-messages.js';

/** A successful attempt's tokens, and whether they were counted by a tokenizer rather than `usage`. */
export interface TokenCounts {
  completion: number;
  prompt: number;
  estimated: boolean;
}

/**
 * Completion (output) and prompt (input) tokens from `usage` — each endpoint names them its way — or
 * from a real tokenizer when the server sent none. Embeddings and other endpoints produce no tokens.
 */
export async function countTokens(item: WorkItem, o: Extract<AttemptOutcome, { outcome: 'ok' }>): Promise<TokenCounts> {
  const kind = item.endpoint ?? 'chat';
  const usage = usageOf(kind, o.completion);
  if (usage.completion !== undefined && usage.prompt !== undefined)
    return { completion: usage.completion, prompt: usage.prompt, estimated: false };
  return {
    completion:
      usage.completion ??
      (kind === 'chat'
        ? await estimateCompletionTokens(o.completion as ChatCompletion)
        : await estimateTokens(outputTextOf(kind, o.completion))),
    prompt:
      usage.prompt ?? (kind === 'chat' ? await estimatePromptTokens(item.body) : await estimateInputTokens(item.body)),
    estimated: true,
  };
}

/**
 * The `attempt_end` event of an attempt (error text through `redact`); `queueMs` is what the
 * server's own timings left unaccounted (see serverQueueMs), where it sent them.
 */
export function attemptEndPayload(
  item: WorkItem,
  o: AttemptOutcome,
  tokens: TokenCounts | undefined,
  connectMs: number | undefined,
  queueMs: number | undefined,
  redact: (text: string) => string,
): EventPayloads['attempt_end'] {
  // Built by assignment, not spreads: conditional spreads made a dictionary-mode object, ~4 µs
  // more per event to build and stringify, a visible share of a shard's per-request CPU.
  // `outcome` is set below; it comes after connect_ms in the line, as before.
  const p = { id: item.id, attempt: item.attempt } as EventPayloads['attempt_end'];
  if (connectMs !== undefined) p.connect_ms = round3(connectMs);
  if (o.outcome === 'ok') {
    p.outcome = 'ok';
    p.status = o.status;
    p.completion_tokens = tokens!.completion;
    p.prompt_tokens = tokens!.prompt;
    p.last_token_ts = round3(o.lastTokenTs);
    if (tokens!.estimated) p.tokens_estimated = true;
    if (queueMs !== undefined) p.server_queue_ms = round3(queueMs);
  } else {
    p.outcome = 'error';
    p.cause = o.cause;
    p.error = redact(o.message).slice(0, 300);
    if (o.status !== undefined) p.status = o.status;
    if (o.retryAfterMs !== undefined) p.retry_after_ms = o.retryAfterMs;
  }
  return p;
}
