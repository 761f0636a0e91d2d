import { startObservingSim } from './helpers/observing-sim.js';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { completionText, parseProfile, run, startSim, type RunningSim, type SimProfileFile } from '../src/index.js';
import { RawPool } from '../src/client/raw-pool.js';
import { loadEvents, loadResults, ofType, tempDir, writeInput } from './helpers/run-dir.js';

// The same behaviours the undici transport is tested for, through --transport raw.
const raw = { transport: 'raw' as const, progress: 'off' as const };

let sim: RunningSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function runOn(
  profile: SimProfileFile,
  n: number,
  extra: Record<string, unknown> = {},
  body: Record<string, unknown> = {},
) {
  sim = await startSim({ profile: parseProfile(profile), seed: 5 });
  const dir = tempDir();
  const out = join(dir, 'out');
  const summary = await run({ input: writeInput(dir, n, body), endpoint: `${sim.url}/v1`, out, ...raw, ...extra });
  return { summary, out, events: loadEvents(out) };
}

/**
 * For the hand-written servers below: read Content-Length requests off `socket` and call `answer`
 * with each one's JSON body, in order.
 */
function onRequests<T>(socket: Socket, answer: (body: T) => void): void {
  let buf = '';
  socket.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      const len = Number(/content-length: (\d+)/i.exec(buf)?.[1] ?? 0);
      if (end < 0 || buf.length < end + 4 + len) return;
      const body = JSON.parse(buf.slice(end + 4, end + 4 + len)) as T;
      buf = buf.slice(end + 4 + len);
      answer(body);
    }
  });
  socket.on('error', () => undefined);
}

describe('--transport raw', () => {
  it('one result per line, assembled from the stream, over reused keep-alive connections', async () => {
    const { summary, out, events } = await runOn({ base: 'fast' }, 120, { shards: 2, concurrency: 8 });
    expect(summary.requests).toEqual({ total: 120, succeeded: 120, failed: 0, rejected: 0, skipped: 0, rerun: 0 });
    const results = loadResults(out);
    expect(new Set(results.map((r) => r.custom_id)).size).toBe(120);
    for (const r of results) {
      expect(r.response!.body.choices[0]!.message.content).toBe(completionText(16));
      expect(r.response!.body.usage!.completion_tokens).toBe(16);
    }
    const opens = ofType(events, 'conn_open');
    expect(opens.length).toBeGreaterThan(0);
    expect(opens.length).toBeLessThanOrEqual(16);
    for (const o of opens) expect(o.connect_ms).toBeGreaterThanOrEqual(0);
    expect(sim!.stats().connections).toBe(opens.length);
  });

  it('retries 5xx and mid-stream resets, and rides out stalls with keep-alive comments', async () => {
    const { summary, events } = await runOn(
      {
        base: 'fast',
        step_ms_base: 1,
        faults: {
          errors: { p_503: 0.2 },
          reset: { p: 0.2, after_tokens: 3 },
          stall: { p: 0.1, after_tokens: 2, stall_ms: 100, keepalive_ms: 20 },
        },
      },
      80,
      { maxAttempts: 20, retryBackoffS: 0.01, retryBackoffMaxS: 0.05 },
    );
    expect(summary.requests.succeeded).toBe(80);
    const causes = new Set(
      ofType(events, 'attempt_end')
        .filter((e) => e.outcome === 'error')
        .map((e) => e.cause),
    );
    expect(causes).toEqual(new Set(['http_5xx', 'conn_reset']));
  });

  it('each timeout and connection error gets its cause', async () => {
    const fast = { retryBackoffS: 0.01, maxAttempts: 1 };
    expect(
      (await runOn({ base: 'fast', prefill_ms_base: 2000 }, 2, { ...fast, timeoutTtftS: 0.15 })).summary.failure_causes,
    ).toEqual({ timeout_ttft: 2 });
    await sim!.close();
    expect(
      (
        await runOn(
          {
            base: 'fast',
            step_ms_base: 1,
            faults: { stall: { p: 1, after_tokens: 4, stall_ms: 1000, keepalive_ms: 50 } },
          },
          2,
          { ...fast, timeoutIdleS: 0.2 },
        )
      ).summary.failure_causes,
    ).toEqual({ timeout_idle: 2 });
    await sim!.close();
    expect(
      (
        await runOn(
          { base: 'fast', step_ms_base: 60, tokens_per_step: 1 },
          2,
          { ...fast, timeoutTotalS: 0.4 },
          { max_tokens: 20 },
        )
      ).summary.failure_causes,
    ).toEqual({ timeout_total: 2 });
    await sim!.close();
    sim = undefined;

    const probe = createNetServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const closedPort = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const dir = tempDir();
    const refused = await run({
      input: writeInput(dir, 2),
      endpoint: `http://127.0.0.1:${closedPort}/v1`,
      out: join(dir, 'a'),
      ...raw,
      ...fast,
    });
    expect(refused.failure_causes).toEqual({ conn_refused: 2 });

    const sockets: Socket[] = [];
    const silent = createNetServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const tls = await run({
        input: writeInput(dir, 2, {}, 'b.jsonl'),
        endpoint: `https://127.0.0.1:${(silent.address() as AddressInfo).port}/v1`,
        out: join(dir, 'b'),
        ...raw,
        ...fast,
        timeoutConnectS: 0.2,
      });
      expect(tls.failure_causes).toEqual({ timeout_connect: 2 });
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it('sends the same request (headers, auth, streaming options) and honours stream: false', async () => {
    const observed = await startObservingSim();
    const seen = observed.seen;
    try {
      const dir = tempDir();
      const input = join(dir, 'in.jsonl');
      writeFileSync(
        input,
        [
          JSON.stringify({ custom_id: 'a', body: { messages: [{ role: 'user', content: 'x' }], max_tokens: 3 } }),
          JSON.stringify({
            custom_id: 'b',
            body: { messages: [{ role: 'user', content: 'y' }], max_tokens: 5, stream: false },
          }),
        ].join('\n'),
      );
      const out = join(dir, 'out');
      const summary = await run({
        input,
        endpoint: `${observed.url}/v1`,
        out,
        apiKey: 'sk-raw',
        headers: ['X-Team: search'],
        ...raw,
      });
      expect(summary.requests.succeeded).toBe(2);
      const a = seen.find((x) => x.body.max_tokens === 3)!;
      expect(a.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
      expect(a.headers.authorization).toBe('Bearer sk-raw');
      expect(a.headers['x-team']).toBe('search');
      expect(loadResults(out).find((r) => r.custom_id === 'b')!.response!.body.choices[0]!.message.content).toBe(
        completionText(5),
      );
    } finally {
      await observed.close();
    }
  });

  it('--no-keep-alive opens a connection per request', async () => {
    const { summary, events } = await runOn({ base: 'fast' }, 20, { keepAlive: false, concurrency: 2 });
    expect(summary.requests.succeeded).toBe(20);
    expect(ofType(events, 'conn_open')).toHaveLength(20);
    expect(sim!.stats().connections).toBe(20);
  });

  it('never reuses a connection the server sent unasked-for bytes on', async () => {
    // An OpenAI-shaped server that echoes each question, then misbehaves: `extra: 'same'` appends a
    // second, valid-looking response to each one; `extra: 'idle'` sends it 30 ms later.
    const connections: Socket[] = [];
    const start = (extra: 'same' | 'idle' | 'chunked') => {
      const server = createNetServer((socket) => {
        connections.push(socket);
        onRequests<{ messages: { content: string }[] }>(socket, (body) => {
          const question = body.messages[0]!.content;
          const json = JSON.stringify({
            id: 'c',
            object: 'chat.completion',
            created: 1,
            model: 'm',
            choices: [{ index: 0, message: { role: 'assistant', content: `echo ${question}` }, finish_reason: 'stop' }],
            usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
          });
          const response =
            extra === 'chunked'
              ? `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: ` +
                `chunked\r\n\r\n${Buffer.byteLength(json).toString(16)}\r\n${json}\r\n0\r\n\r\n`
              : `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ` +
                `${Buffer.byteLength(json)}\r\n\r\n${json}`;
          const stray = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}';
          if (extra !== 'idle') socket.write(response + stray);
          else {
            socket.write(response);
            setTimeout(() => socket.writable && socket.write(stray), 30);
          }
        });
      });
      return new Promise<typeof server>((r) => server.listen(0, '127.0.0.1', () => r(server)));
    };

    // Content-Length and chunked framing alike: the stray bytes follow the response in the same write.
    for (const framing of ['same', 'chunked'] as const) {
      const same = await start(framing);
      try {
        const dir = tempDir();
        const out = join(dir, 'out');
        const summary = await run({
          input: writeInput(dir, 6, { stream: false }),
          endpoint: `http://127.0.0.1:${(same.address() as AddressInfo).port}/v1`,
          out,
          concurrency: 1,
          ...raw,
        });
        expect(summary.requests.succeeded).toBe(6);
        for (const r of loadResults(out))
          expect(r.response!.body.choices[0]!.message.content).toBe(`echo question ${r.custom_id.slice(4)}`);
        // Each connection was closed after its response instead of going back to the pool.
        expect(connections).toHaveLength(6);
      } finally {
        for (const c of connections.splice(0)) c.destroy();
        await new Promise((r) => same.close(r));
      }
    }

    const idle = await start('idle');
    const pool = new RawPool({
      origin: `http://127.0.0.1:${(idle.address() as AddressInfo).port}`,
      connections: 4,
      connectTimeoutMs: 1000,
    });
    try {
      const ask = (question: string) =>
        new Promise<string>((resolve, reject) => {
          let text = '';
          pool.dispatch(
            {
              method: 'POST',
              path: '/v1/chat/completions',
              origin: '',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ messages: [{ content: question }] }),
            },
            {
              onResponseData: (_c, chunk) => void (text += chunk.toString()),
              onResponseEnd: () => resolve(text),
              onResponseError: (_c, err) => reject(err),
            },
          );
        });
      expect(await ask('one')).toContain('echo one');
      await new Promise((r) => setTimeout(r, 100)); // the stray bytes arrive while the connection is idle
      expect(await ask('two')).toContain('echo two');
      expect(connections).toHaveLength(2);
    } finally {
      await pool.destroy();
      for (const c of connections) c.destroy();
      await new Promise((r) => idle.close(r));
    }
  });

  it('reads chunked, Content-Length and close-delimited responses delivered a byte at a time', async () => {
    // Chunk sizes in upper and lower case, a chunk extension, trailers, and UTF-8 split mid-character:
    // the framing a real server may send, each byte its own write.
    const content = ['héllo ', 'wörld ', '😀'];
    const sse = (o: object) => `data: ${JSON.stringify(o)}\n\n`;
    const chunk = (id: string, delta: object, finish: string | null) =>
      sse({
        id,
        object: 'chat.completion.chunk',
        created: 1,
        model: 'm',
        choices: [{ index: 0, delta, finish_reason: finish }],
      });
    const events = (id: string) => [
      chunk(id, { role: 'assistant', content: '' }, null),
      // One event with CRLF line ends, as some servers send them.
      ...content.map((c, i) =>
        i === 1 ? chunk(id, { content: c }, null).replace(/\n/g, '\r\n') : chunk(id, { content: c }, null),
      ),
      chunk(id, {}, 'stop'),
      sse({
        id,
        object: 'chat.completion.chunk',
        created: 1,
        model: 'm',
        choices: [],
        usage: { prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 },
      }),
      'data: [DONE]\n\n',
    ];
    const chunked = (parts: string[]) =>
      parts
        .map((p, i) => {
          const size = Buffer.byteLength(p).toString(16);
          return `${i % 2 ? size.toUpperCase() : size}${i === 1 ? ';ext="x"' : ''}\r\n${p}\r\n`;
        })
        .join('') + '0\r\nx-trailer: done\r\n\r\n';
    const sockets: Socket[] = [];
    let served = 0;
    const server = createNetServer((socket) => {
      sockets.push(socket);
      onRequests<{ stream?: boolean; user?: string }>(socket, (body) => {
        const id = `req-${++served}`;
        let bytes: Buffer;
        if (body.stream) {
          bytes = Buffer.from(
            `HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nx-request-id: ` +
              `${id}\r\n\r\n${chunked(events(id))}`,
          );
        } else {
          const json = JSON.stringify({
            id,
            object: 'chat.completion',
            created: 1,
            model: 'm',
            choices: [{ index: 0, message: { role: 'assistant', content: content.join('') }, finish_reason: 'stop' }],
            usage: { prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 },
          });
          // `user: 'close'` asks for an HTTP/1.0-style body: no length, ended by closing the connection.
          const framing = body.user === 'close' ? 'connection: close' : `Content-Length: ${Buffer.byteLength(json)}`;
          bytes = Buffer.from(
            `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n${framing}\r\nx-request-id: ${id}\r\n\r\n${json}`,
          );
        }
        const closeAfter = !body.stream && body.user === 'close';
        // A byte per write; the last 40 bytes (the final chunks, the trailers) a millisecond apart,
        // so each is surely its own read.
        let i = 0;
        const dribble = () => {
          if (socket.destroyed) return;
          if (i >= bytes.length) {
            if (closeAfter) socket.end();
            return;
          }
          socket.write(bytes.subarray(i, ++i));
          if (bytes.length - i < 40) setTimeout(dribble, 1);
          else setImmediate(dribble);
        };
        dribble();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
      // undici too: the same bytes must mean the same to both transports.
      const framings = [
        ['raw', true, 'chunked'],
        ['raw', false, 'length'],
        ['raw', false, 'close'],
        ['undici', true, 'chunked'],
        ['undici', false, 'length'],
        ['undici', false, 'close'],
      ] as const;
      for (const [transport, stream, framing] of framings) {
        const dir = tempDir();
        const out = join(dir, 'out');
        // One attempt, 10 s at most: a parse that loses its place fails here instead of hanging.
        const body = { stream, ...(framing === 'close' ? { user: 'close' } : {}) };
        const summary = await run({
          input: writeInput(dir, 3, body),
          endpoint,
          out,
          concurrency: 1,
          transport,
          progress: 'off',
          maxAttempts: 1,
          timeoutTotalS: 10,
        });
        expect(summary.requests.succeeded).toBe(3);
        // No attempt failed on bytes left over from the response before it.
        expect(summary.attempts).toBe(3);
        for (const r of loadResults(out)) {
          expect(r.response!.body.choices[0]!.message.content).toBe('héllo wörld 😀');
          expect((r.response!.body.choices[0] as { finish_reason?: string }).finish_reason).toBe('stop');
          expect(r.response!.body.usage).toEqual({ prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 });
        }
        if (stream) {
          // Three content chunks each: the first token is the first non-empty content.
          expect(ofType(loadEvents(out), 'first_token')).toHaveLength(3);
        }
      }
      // One keep-alive connection per chunked or length-framed run (trailers and exact lengths leave
      // nothing unread); a close-delimited body costs its connection: 4 + 2 × 3.
      expect(sockets).toHaveLength(10);
    } finally {
      for (const c of sockets) c.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it(
    'skips interim 1xx answers, ends a 204 without a body, and fails a head that never ends, on both ' + 'transports',
    async () => {
      // `user` picks the misbehaviour: 'hints' sends 103 Early Hints before the real streamed answer,
      // 'empty' a 204 on a kept-alive connection, 'badlength' a Content-Length that is not a number,
      // 'endless' a head that goes on past 64 KiB and never ends.
      const sockets: Socket[] = [];
      const sse = (o: object) => `data: ${JSON.stringify(o)}\n\n`;
      const streamed = (id: string) =>
        [
          sse({
            id,
            object: 'chat.completion.chunk',
            created: 1,
            model: 'm',
            choices: [{ index: 0, delta: { role: 'assistant', content: 'hi' }, finish_reason: null }],
          }),
          sse({
            id,
            object: 'chat.completion.chunk',
            created: 1,
            model: 'm',
            choices: [{ index: 0, delta: {}, finish_reason: 'stop' }],
            usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
          }),
          'data: [DONE]\n\n',
        ].join('');
      const server = createNetServer((socket) => {
        sockets.push(socket);
        onRequests<{ user: string; messages: { content: string }[] }>(socket, (body) => {
          const id = body.messages[0]!.content.replace(' ', '-');
          if (body.user === 'hints') {
            const text = streamed(id);
            socket.write('HTTP/1.1 103 Early Hints\r\nlink: </hints.css>; rel=preload\r\n\r\n');
            setTimeout(
              () =>
                socket.write(
                  `HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: ` +
                    `${Buffer.byteLength(text)}\r\n\r\n${text}`,
                ),
              5,
            );
          } else if (body.user === 'empty') socket.write('HTTP/1.1 204 No Content\r\n\r\n');
          else if (body.user === 'badlength')
            socket.write(
              'HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 12abc\r\n\r\ndata: [DONE]\n\n',
            );
          else socket.write(`HTTP/1.1 200 OK\r\nx-junk: ${'a'.repeat(100 * 1024)}`);
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      try {
        const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
        for (const transport of ['raw', 'undici'] as const) {
          const go = async (user: string) => {
            const dir = tempDir();
            const out = join(dir, 'out');
            // One attempt, 10 s at most: an answer the transport loses its place in fails here instead of hanging.
            const summary = await run({
              input: writeInput(dir, 3, { user, stream: true }),
              endpoint,
              out,
              concurrency: 1,
              transport,
              progress: 'off',
              maxAttempts: 1,
              timeoutTotalS: 10,
            });
            return { summary, out };
          };
          const hints = await go('hints');
          expect(hints.summary.requests.succeeded, transport).toBe(3);
          for (const r of loadResults(hints.out)) expect(r.response!.body.choices[0]!.message.content).toBe('hi');
          expect(ofType(loadEvents(hints.out), 'response_headers').map((e) => e.status)).toEqual([200, 200, 200]);

          // A 204 has no body: each attempt ends at once as a protocol error (no chat answer), and the
          // connection stays usable, so the three run one after another on one socket.
          const before = sockets.length;
          const empty = await go('empty');
          expect(empty.summary.requests.failed, transport).toBe(3);
          expect(empty.summary.failure_causes).toEqual({ protocol_error: 3 });
          expect(ofType(loadEvents(empty.out), 'attempt_end')[0]!.error).toContain('HTTP 204 No Content');
          expect(empty.summary.duration_s).toBeLessThan(5);
          if (transport === 'raw') expect(sockets.length - before).toBe(1);

          const badLength = await go('badlength');
          expect(badLength.summary.failure_causes, transport).toEqual({ protocol_error: 3 });
          expect(badLength.summary.duration_s).toBeLessThan(5);
          if (transport === 'raw')
            expect(ofType(loadEvents(badLength.out), 'attempt_end')[0]!.error).toContain(
              'invalid content-length: 12abc',
            );

          const endless = await go('endless');
          expect(endless.summary.failure_causes, transport).toEqual({ protocol_error: 3 });
          const err = ofType(loadEvents(endless.out), 'attempt_end')[0]!.error;
          expect(err).toMatch(transport === 'raw' ? /response head over 65536 bytes/ : /header/i);
        }
      } finally {
        for (const c of sockets) c.destroy();
        await new Promise((r) => server.close(r));
      }
    },
  );

  it(
    'reads a JSON body when a server ignores stream: true, and names any other content type, on both ' + 'transports',
    async () => {
      const server = createNetServer((socket) => {
        onRequests<{ user?: string }>(socket, (asked) => {
          if (asked.user === 'html') {
            // A proxy's login page, with status 200.
            const page = '<html><body>Please sign in</body></html>';
            socket.write(`HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: ${page.length}\r\n\r\n${page}`);
            return;
          }
          const json = JSON.stringify({
            id: 'c',
            object: 'chat.completion',
            created: 1,
            model: 'm',
            choices: [{ index: 0, message: { role: 'assistant', content: 'whole answer' }, finish_reason: 'stop' }],
            usage: { prompt_tokens: 2, completion_tokens: 2, total_tokens: 4 },
          });
          socket.write(
            `HTTP/1.1 200 OK\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ` +
              `${Buffer.byteLength(json)}\r\n\r\n${json}`,
          );
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      try {
        for (const transport of ['raw', 'undici'] as const) {
          const dir = tempDir();
          const out = join(dir, 'out');
          const summary = await run({
            input: writeInput(dir, 3, { stream: true }),
            endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
            out,
            concurrency: 1,
            transport,
            progress: 'off',
            maxAttempts: 1,
          });
          expect(summary.requests.succeeded).toBe(3);
          expect(summary.tokens.completion).toBe(6);
          for (const r of loadResults(out)) expect(r.response!.body.choices[0]!.message.content).toBe('whole answer');
          // Neither JSON nor an event stream: the failure says what came instead.
          const htmlOut = join(dir, 'html');
          const html = await run({
            input: writeInput(dir, 1, { stream: true, user: 'html' }, 'html.jsonl'),
            endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
            out: htmlOut,
            transport,
            progress: 'off',
            maxAttempts: 1,
          });
          expect(html.failure_causes).toEqual({ protocol_error: 1 });
          expect(ofType(loadEvents(htmlOut), 'attempt_end')[0]!.error).toBe(
            'expected an event stream, got content-type text/html',
          );
        }
      } finally {
        await new Promise((r) => server.close(r));
      }
    },
  );
});
