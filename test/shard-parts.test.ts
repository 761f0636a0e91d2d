import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import type { AttemptOutcome } from '../src/client/chat-attempt.js';
import { ConnTracker, type ConnAttribution } from '../src/client/conn-tracker.js';
import { serverQueueMs } from '../src/client/server-timings.js';
import type { ChatCompletion } from '../src/client/stream-assembler.js';
import type { WorkItem } from '../src/runner/ipc-messages.js';
import { attemptEndPayload, countTokens } from '../src/runner/shard/attempt-record.js';

// The parts a shard builds its records from, each on its own: the server-queue estimate from
// llama-server's timings, token counting, the attempt_end payload, and which attempt opened which
// connection.

const completion = (extra: Partial<ChatCompletion> = {}): ChatCompletion =>
  ({
    id: 'c',
    object: 'chat.completion',
    created: 1,
    model: 'm',
    choices: [{ index: 0, message: { role: 'assistant', content: 'hello there' }, finish_reason: 'stop' }],
    ...extra,
  }) as ChatCompletion;

const item: WorkItem = {
  id: 'r1',
  lineNo: 1,
  body: JSON.stringify({ messages: [{ role: 'user', content: 'What is the capital of France?' }] }),
  stream: true,
  attempt: 2,
};

describe('server queue time from the server’s own timings', () => {
  const a = { startTs: 1000, firstTokenTs: 1300, lastTokenTs: 1800, connectMs: 20 };
  it('streamed: TTFT less connect and prompt time', () => {
    const c = completion({ timings: { prompt_ms: 80, predicted_ms: 400 } } as Partial<ChatCompletion>);
    expect(serverQueueMs(c, true, a)).toBe(300 - 20 - 80);
  });
  it('not streamed: the whole answer less prompt and generation time, never below 0', () => {
    const c = completion({ timings: { prompt_ms: 80, predicted_ms: 400 } } as Partial<ChatCompletion>);
    expect(serverQueueMs(c, false, a)).toBe(800 - 20 - 80 - 400);
    const slow = completion({ timings: { prompt_ms: 900, predicted_ms: 400 } } as Partial<ChatCompletion>);
    expect(serverQueueMs(slow, false, a)).toBe(0);
  });
  it('is undefined without timings (vLLM, OpenAI)', () => {
    expect(serverQueueMs(completion(), true, a)).toBeUndefined();
  });
});

describe('attempt records', () => {
  const ok = (c: ChatCompletion): Extract<AttemptOutcome, { outcome: 'ok' }> => ({
    outcome: 'ok',
    status: 200,
    completion: c,
    requestId: undefined,
    firstTokenTs: 1,
    lastTokenTs: 2.12345,
    contentChunks: 3,
  });

  it('counts tokens from usage, or with the tokenizer (marked estimated) when the server sent none', async () => {
    const withUsage = completion({ usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 } });
    expect(await countTokens(item, ok(withUsage))).toEqual({ completion: 3, prompt: 12, estimated: false });
    const counted = await countTokens(item, ok(completion()));
    expect(counted.estimated).toBe(true);
    // "hello there" is 2 o200k tokens; the prompt's words and chat framing a few more than its 7 words.
    expect(counted.completion).toBe(2);
    expect(counted.prompt).toBeGreaterThanOrEqual(7);
    // Half a usage: the half that is there is kept.
    const half = completion({ usage: { completion_tokens: 9 } } as Partial<ChatCompletion>);
    expect(await countTokens(item, ok(half))).toMatchObject({ completion: 9, estimated: true });
  });

  it('builds attempt_end for a success and a failure, secrets redacted, figures rounded', () => {
    const tokens = { completion: 3, prompt: 12, estimated: true };
    expect(attemptEndPayload(item, ok(completion()), tokens, 1.23456, 45.6789, (t) => t)).toEqual({
      id: 'r1',
      attempt: 2,
      connect_ms: 1.235,
      outcome: 'ok',
      status: 200,
      completion_tokens: 3,
      prompt_tokens: 12,
      last_token_ts: 2.123,
      tokens_estimated: true,
      server_queue_ms: 45.679,
    });
    const failed: AttemptOutcome = {
      outcome: 'error',
      status: 429,
      cause: 'http_429',
      message: `rate limited for key sk-secret-123456 ${'x'.repeat(400)}`,
      retryAfterMs: 2000,
    };
    const p = attemptEndPayload(item, failed, undefined, undefined, undefined, (t) =>
      t.replace('sk-secret-123456', '[redacted]'),
    );
    expect(p).toMatchObject({ outcome: 'error', cause: 'http_429', status: 429, retry_after_ms: 2000 });
    expect(p.error).toMatch(/^rate limited for key \[redacted\] x+$/);
    expect(p.error).toHaveLength(300);
    expect('connect_ms' in p).toBe(false);
  });
});

describe('connection attribution over undici', () => {
  let server: Server | undefined;
  let pool: Pool | undefined;
  let tracker: ConnTracker | undefined;
  afterEach(async () => {
    tracker?.close();
    await pool?.close();
    server?.closeAllConnections();
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
  });

  it('names the attempt that opened each connection, and marks reuse and what went before', async () => {
    server = createServer((_q, res) => res.end('ok'));
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const opened: [number, string][] = [];
    tracker = new ConnTracker(
      () => performance.now(),
      (ms, who) => opened.push([ms, who.id]),
    );
    pool = new Pool(origin, { connections: 1, connect: tracker.connector({}) });
    const send = async (who: ConnAttribution) => {
      await new Promise<void>((resolve, reject) => {
        pool!.dispatch(
          { origin, path: '/', method: 'GET' },
          {
            onRequestStart: () => tracker!.mark(who),
            onResponseStart: () => undefined,
            onResponseData: () => undefined,
            onResponseEnd: () => resolve(),
            onResponseError: (_c, err) => reject(err),
          },
        );
      });
      return who;
    };
    const first = await send({ id: 'a', attempt: 1, stream: true });
    const second = await send({ id: 'b', attempt: 1, stream: false });
    const third = await send({ id: 'c', attempt: 1, stream: false });
    expect(opened.map(([, id]) => id)).toEqual(['a']);
    expect(opened[0]![0]).toBeGreaterThanOrEqual(0);
    expect(first.connectMs).toBeDefined();
    expect(first.reused).toBeUndefined();
    expect(second).toMatchObject({ reused: true, afterStream: true });
    expect(third).toMatchObject({ reused: true, afterStream: false });
    expect([tracker.opened, tracker.open]).toEqual([1, 1]);
  });
});
