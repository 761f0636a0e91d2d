import type { AttemptOutcome } from '../../client/chat-attempt.js';
import { streams } from '../../client/endpoints.js';
import { RetryBudget, type RetryDecision, type RetryPolicyOptions } from '../../client/retry-policy.js';
import type { EventPayloads } from '../../events/event-types.js';
import { round3 } from '../../metrics/percentiles.js';
import { createRng } from '../../util/rng.js';
import type { DoneItem, RetryItem, ShardConfig, WorkItem } from '../ipc-messages.js';
import type { TokenCounts } from './attempt-record.js';

type Answered = Extract<AttemptOutcome, { outcome: 'ok' }>;
type Failed = Extract<AttemptOutcome, { outcome: 'error' }>;

/** What a request's end is recorded as: its `request_end` event, and what the shard reports of it. */
export interface RequestEnd {
  end: EventPayloads['request_end'];
  done: DoneItem;
}

function endEvent(item: WorkItem, fields: Omit<EventPayloads['request_end'], 'id' | 'attempts'>) {
  const end: EventPayloads['request_end'] = { id: item.id, attempts: item.attempt, ...fields };
  if (item.endpoint) end.endpoint = item.endpoint;
  if (item.items !== undefined) end.items = item.items;
  return end;
}

/**
 * The end of a request that got its answer: `resultLine` is its results.jsonl line (post-processed), and
 * `cause` set when the post-processing failed it.
 */
export function answeredEnd(
  item: WorkItem,
  o: Answered,
  tokens: TokenCounts,
  resultLine: string,
  cause: DoneItem['cause'],
  startTs: number,
  endTs: number,
): RequestEnd {
  const outcome = cause ? 'failed' : 'succeeded';
  const end = endEvent(item, {
    outcome,
    completion_tokens: tokens.completion,
    prompt_tokens: tokens.prompt,
  });
  if (cause) end.cause = cause;
  if (tokens.estimated) end.tokens_estimated = true;
  const done: DoneItem = {
    id: item.id,
    resultLine,
    outcome,
    attempts: item.attempt,
    completionTokens: tokens.completion,
    promptTokens: tokens.prompt,
    // A chat answer always has one (its whole time when not streamed); embeddings and the like none.
    ttftMs: item.endpoint && !streams(item.endpoint) ? undefined : o.firstTokenTs - startTs,
    attemptMs: endTs - startTs,
  };
  if (o.completion.model) done.model = o.completion.model;
  if (cause) done.cause = cause;
  return { end, done };
}

/**
 * The end of a request whose last attempt failed and is not retried; `message` is its error, credentials
 * removed, `resultLine` its error line.
 */
export function failedEnd(
  item: WorkItem,
  o: Failed,
  message: string,
  resultLine: string,
  retryAfterTooLongMs: number | undefined,
  attemptMs: number,
): RequestEnd {
  const end = endEvent(item, { outcome: 'failed', completion_tokens: 0, prompt_tokens: 0, cause: o.cause });
  const done: DoneItem = {
    id: item.id,
    resultLine,
    outcome: 'failed',
    attempts: item.attempt,
    completionTokens: 0,
    promptTokens: 0,
    cause: o.cause,
    attemptMs,
  };
  if (o.status !== undefined) {
    done.status = o.status;
    done.error = message.slice(0, 300);
  }
  if (retryAfterTooLongMs !== undefined) done.retryAfterTooLongMs = retryAfterTooLongMs;
  return { end, done };
}

/** A failed attempt the policy retries: its `backoff` event and the retry the coordinator waits out. */
export function retryOf(
  item: WorkItem,
  o: Failed,
  decision: Extract<RetryDecision, { retry: true }>,
  backoffTs: number,
  attemptMs: number,
): { backoff: EventPayloads['backoff']; retry: RetryItem } {
  const delayMs = round3(decision.delayMs);
  const backoff: EventPayloads['backoff'] = { id: item.id, attempt: item.attempt, delay_ms: delayMs, cause: o.cause };
  if (decision.budgetExhausted) backoff.budget_exhausted = true;
  const retry: RetryItem = {
    id: item.id,
    attempt: item.attempt + 1,
    delayMs,
    dueTs: backoffTs + delayMs,
    cause: o.cause,
    attemptMs,
  };
  if (item.free) retry.free = item.free;
  return { backoff, retry };
}

/** The retry policy a shard applies, from its config: seeded per shard when the run has a seed. */
export function retryPolicy(config: ShardConfig): RetryPolicyOptions {
  return {
    maxAttempts: config.maxAttempts,
    backoffBaseMs: config.backoffBaseMs,
    backoffCapMs: config.backoffCapMs,
    retryAfterMaxMs: config.retryAfterMaxMs,
    budget: new RetryBudget(config.retryBudget, config.retryBudgetWindowMs, config.retryBudgetMinRetries),
    random: config.seed >= 0 ? createRng(config.seed * 7919 + config.shard) : Math.random,
    fixed: config.retryMode === 'fixed',
  };
}
