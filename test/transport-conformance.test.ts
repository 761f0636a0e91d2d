import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { runChatAttempt, type AttemptOutcome } from '../src/client/chat-attempt.js';
import type { ChatCompletion } from '../src/client/stream-assembler.js';
import { RawPool, type ChatDispatcher } from '../src/client/raw-pool.js';
import { completionText, parseProfile, startSim, type RunningSim } from '../src/index.js';

// One case list, run over both transports (as hono runs one case list over every router): whatever
// --transport says, an answer or a failure must come out the same.

type Answer = (req: IncomingMessage, res: ServerResponse, body: string) => void;

let server: Server | undefined;
let sim: RunningSim | undefined;
let pool: { close(): Promise<void> } | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
  server?.closeAllConnections();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
  await sim?.close();
  sim = undefined;
});

/** A hand-written server on 127.0.0.1 answering every request with `answer`. */
async function serve(answer: Answer): Promise<string> {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => answer(req, res, body));
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const TRANSPORTS: [string, (origin: string) => ChatDispatcher & { close(): Promise<void> }][] = [
  ['undici', (origin) => new Pool(origin, { connections: 4, pipelining: 1, headersTimeout: 0, bodyTimeout: 0 })],
  ['raw', (origin) => new RawPool({ origin, connections: 4, connectTimeoutMs: 2000 })],
];

const sse = (chunks: unknown[]) => chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`).join('') + 'data: [DONE]\n\n';
const chunk = (content: string) => ({
  id: 'c1',
  object: 'chat.completion.chunk',
  created: 1,
  model: 'm',
  choices: [{ index: 0, delta: { content }, finish_reason: null }],
});
const usageChunk = {
  id: 'c1',
  object: 'chat.completion.chunk',
  created: 1,
  model: 'm',
  choices: [],
  usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
};
const BODY = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
const TIMEOUTS = { ttftMs: 2000, idleMs: 2000, totalMs: 5000 };

describe.each(TRANSPORTS)('transport %s: the same outcomes', (_name, make) => {
  async function attempt(origin: string, stream = true, timeouts = TIMEOUTS): Promise<AttemptOutcome> {
    const dispatcher = make(origin);
    pool = dispatcher;
    const target = { origin, path: '/v1/chat/completions', headers: { 'content-type': 'application/json' } };
    return runChatAttempt(dispatcher, target, BODY, stream, timeouts, () => performance.now());
  }

  it('assembles a streamed answer from the simulator, with its usage', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast' }), seed: 1 });
    const out = await attempt(sim.url);
    expect(out.outcome).toBe('ok');
    if (out.outcome !== 'ok') return;
    expect((out.completion as ChatCompletion).choices[0]!.message.content).toBe(completionText(2));
    expect(out.completion.usage?.completion_tokens).toBe(2);
    expect(out.firstTokenTs).toBeLessThanOrEqual(out.lastTokenTs);
  });

  it('reads a non-streamed answer, and a JSON answer to a streamed request', async () => {
    const completion = {
      id: 'x',
      object: 'chat.completion',
      created: 1,
      model: 'm',
      choices: [{ index: 0, message: { role: 'assistant', content: 'ok!' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
    };
    const origin = await serve((_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(completion));
    });
    for (const stream of [false, true]) {
      const out = await attempt(origin, stream);
      expect(out.outcome, `stream ${stream}`).toBe('ok');
      if (out.outcome === 'ok') expect((out.completion as ChatCompletion).choices[0]!.message.content).toBe('ok!');
    }
  });

  it('reads SSE split at any byte, chunked or close-delimited', async () => {
    const text = sse([chunk('he'), chunk('llo'), usageChunk]);
    const origin = await serve((_q, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      // One byte at a time: neither transport may assume a read holds a whole event.
      let i = 0;
      const next = () => (i < text.length ? res.write(text[i++], () => setImmediate(next)) : res.end());
      next();
    });
    const out = await attempt(origin);
    expect(out.outcome).toBe('ok');
    if (out.outcome === 'ok') {
      expect((out.completion as ChatCompletion).choices[0]!.message.content).toBe('hello');
      expect(out.contentChunks).toBe(2);
    }
  });

  it.each([
    [429, { 'retry-after': '7' }, 'http_429', 7000],
    [503, {}, 'http_5xx', undefined],
    [400, {}, 'http_4xx', undefined],
  ] as const)('names HTTP %i as its cause, with Retry-After', async (status, headers, cause, retryAfterMs) => {
    const origin = await serve((_q, res) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify({ error: { message: `no (${status})`, type: 'x' } }));
    });
    const out = await attempt(origin);
    expect(out).toMatchObject({ outcome: 'error', status, cause, retryAfterMs });
    if (out.outcome === 'error') expect(out.message).toContain(`no (${status})`);
  });

  it('times out a silent server (TTFT) and a stalled stream (idle)', async () => {
    const silent = await serve(() => undefined);
    expect(await attempt(silent, true, { ...TIMEOUTS, ttftMs: 150 })).toMatchObject({ cause: 'timeout_ttft' });
    await pool?.close();
    pool = undefined;
    server?.closeAllConnections();
    await new Promise((r) => server!.close(r));
    const stalls = await serve((_q, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify(chunk('a'))}\n\n`);
    });
    expect(await attempt(stalls, true, { ...TIMEOUTS, idleMs: 150 })).toMatchObject({ cause: 'timeout_idle' });
  });

  it(
    'calls a stream that ends early or is not SSE a protocol error, and a refused connection ' + 'conn_refused',
    async () => {
      const cut = await serve((_q, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(`data: ${JSON.stringify(chunk('a'))}\n\n`);
      });
      expect(await attempt(cut)).toMatchObject({ outcome: 'error', cause: 'protocol_error' });
      await pool?.close();
      pool = undefined;
      server?.closeAllConnections();
      await new Promise((r) => server!.close(r));
      server = undefined;
      const port = Number(new URL(cut).port);
      expect(await attempt(`http://127.0.0.1:${port}`)).toMatchObject({ outcome: 'error', cause: 'conn_refused' });
    },
  );
});
