import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Pool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { runChatAttempt, type AttemptOutcome } from '../src/client/chat-attempt.js';
import type { ChatCompletion } from '../src/client/stream-assembler.js';
import { RawPool, type ChatDispatcher } from '../src/client/raw-pool.js';

// HTTP/1.1 as servers really frame it, written byte for byte on a raw socket: chunk extensions and
// trailers, upper-case hex, Content-Length, a body delimited by the connection's close, an interim
// 103 before the answer, headers split across writes. Both transports must read each the same way.

let server: Server | undefined;
let pool: { close(): Promise<void> } | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
});

/** A server that answers each request with `reply(socket, n)` (n counts requests on the server). */
async function rawServer(reply: (socket: Socket, n: number) => void): Promise<string> {
  let n = 0;
  server = createServer((socket) => {
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        const len = Number(/content-length: (\d+)/i.exec(buf)?.[1] ?? 0);
        if (end < 0 || buf.length < end + 4 + len) return;
        buf = buf.slice(end + 4 + len);
        reply(socket, ++n);
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
}

const chunkEvent = (content: string) =>
  `data: ${JSON.stringify({
    id: 'c',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'm',
    choices: [{ index: 0, delta: { content }, finish_reason: null }],
  })}\n\n`;
const STREAM = chunkEvent('Hel') + chunkEvent('lo') + 'data: [DONE]\n\n';
const JSON_BODY = JSON.stringify({
  id: 'x',
  object: 'chat.completion',
  created: 1,
  model: 'm',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hello' }, finish_reason: 'stop' }],
});

/** Write `text` in pieces of `size` bytes, each on its own turn. */
function dribble(socket: Socket, text: string, size: number, end = false): void {
  const pieces: string[] = [];
  for (let i = 0; i < text.length; i += size) pieces.push(text.slice(i, i + size));
  const next = () => {
    const p = pieces.shift();
    if (p === undefined) return end ? socket.end() : undefined;
    socket.write(p, 'latin1', () => setImmediate(next));
  };
  next();
}

const TRANSPORTS: [string, (origin: string) => ChatDispatcher & { close(): Promise<void> }][] = [
  ['undici', (origin) => new Pool(origin, { connections: 2, pipelining: 1, headersTimeout: 0, bodyTimeout: 0 })],
  ['raw', (origin) => new RawPool({ origin, connections: 2, connectTimeoutMs: 2000 })],
];

describe.each(TRANSPORTS)('HTTP framing over %s', (_name, make) => {
  async function attempt(origin: string, stream = true): Promise<AttemptOutcome> {
    const d = make(origin);
    pool = d;
    const target = { origin, path: '/v1/chat/completions', headers: { 'content-type': 'application/json' } };
    const timeouts = { ttftMs: 3000, idleMs: 3000, totalMs: 5000 };
    return runChatAttempt(d, target, '{"messages":[]}', stream, timeouts, () => performance.now());
  }
  const content = (o: AttemptOutcome) =>
    o.outcome === 'ok' ? (o.completion as ChatCompletion).choices[0]!.message.content : o.message;

  it('reads chunks with extensions, upper-case hex and trailers, split at every byte', async () => {
    const body = Buffer.from(STREAM, 'latin1');
    const half = Math.floor(body.length / 2);
    const a = body.subarray(0, half).toString('latin1');
    const b = body.subarray(half).toString('latin1');
    const origin = await rawServer((s) =>
      dribble(
        s,
        'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n' +
          `${a.length.toString(16).toUpperCase()};note=first\r\n${a}\r\n` +
          `${b.length.toString(16)}\r\n${b}\r\n0\r\nX-Trailer: done\r\n\r\n`,
        1,
      ),
    );
    const out = await attempt(origin);
    expect(out.outcome).toBe('ok');
    expect(content(out)).toBe('Hello');
  });

  it('reads a Content-Length body and a body that ends when the server closes', async () => {
    const fixed = await rawServer((s) =>
      s.write(
        `HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: ${Buffer.byteLength(STREAM)}\r\n\r\n` +
          STREAM,
      ),
    );
    expect(content(await attempt(fixed))).toBe('Hello');
    await pool?.close();
    pool = undefined;
    await new Promise((r) => server!.close(r));
    const closing = await rawServer((s) =>
      dribble(s, `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${JSON_BODY}`, 7, true),
    );
    expect(content(await attempt(closing, false))).toBe('Hello');
  });

  it('skips an interim 103 Early Hints and reads the answer after it', async () => {
    const origin = await rawServer((s) =>
      s.write(
        'HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n' +
          'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n' +
          `Content-Length: ${Buffer.byteLength(JSON_BODY)}\r\n\r\n${JSON_BODY}`,
      ),
    );
    const out = await attempt(origin, false);
    expect(out).toMatchObject({ outcome: 'ok', status: 200 });
    expect(content(out)).toBe('Hello');
  });

  it('reads two answers in a row on one kept-alive connection', async () => {
    const origin = await rawServer((s, n) => {
      const body = JSON_BODY.replace('Hello', `Hello ${n}`);
      s.write(
        `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`,
      );
      s.write(body);
    });
    const d = make(origin);
    pool = d;
    const target = { origin, path: '/v1/chat/completions', headers: { 'content-type': 'application/json' } };
    const timeouts = { ttftMs: 3000, idleMs: 3000, totalMs: 5000 };
    const first = await runChatAttempt(d, target, '{}', false, timeouts, () => performance.now());
    const second = await runChatAttempt(d, target, '{}', false, timeouts, () => performance.now());
    expect([content(first), content(second)]).toEqual(['Hello 1', 'Hello 2']);
  });

  it('calls a malformed status line or a torn chunk a failed attempt, never a success', async () => {
    const garbage = await rawServer((s) => s.end('HTTX/9 nonsense\r\n\r\n'));
    expect((await attempt(garbage)).outcome).toBe('error');
    await pool?.close();
    pool = undefined;
    await new Promise((r) => server!.close(r));
    const torn = await rawServer((s) =>
      s.end(
        'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n' +
          `${(STREAM.length + 50).toString(16)}\r\n${STREAM}`,
      ),
    );
    expect((await attempt(torn)).outcome).toBe('error');
  });
});
