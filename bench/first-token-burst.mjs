#!/usr/bin/env node
// The floor under a lockstep wave's added TTFT on one event loop: N streams whose first tokens are
// all in the kernel before the client's loop looks (it busy-waits while a server process writes
// them), read by shardline's raw transport with `first_token` events written as a shard does.
// The spread between the first and the last `first_token` is what one loop needs for the wave,
// with nothing else to do and a core of its own.
//
//   node bench/first-token-burst.mjs [--streams 512] [--rounds 12]
import { fork } from 'node:child_process';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runChatAttempt } from '../dist/client/chat-attempt.js';
import { RawPool } from '../dist/client/raw-pool.js';
import { monotonicEpochMs } from '../dist/util/clock.js';
import { EventWriter } from '../dist/events/event-writer.js';

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--serve'),
  options: { streams: { type: 'string', default: '512' }, rounds: { type: 'string', default: '12' } },
});
const n = Number(values.streams);
const chunk = (data) => {
  const d = `data: ${data}\n\n`;
  return `${Buffer.byteLength(d).toString(16)}\r\n${d}\r\n`;
};
const sse = (delta, finish = null, extra = {}) =>
  chunk(
    JSON.stringify({
      id: 'x',
      object: 'chat.completion.chunk',
      choices: [{ index: 0, delta, finish_reason: finish }],
      ...extra,
    }),
  );

if (process.argv.includes('--serve')) {
  // The server process: holds every request until all n are in, then on 'first' writes each a
  // head and a first token in one tight loop; on 'end' finishes them all.
  const waiting = [];
  const server = createServer((s) => {
    let buf = '';
    s.on('data', (d) => {
      buf += d;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0 || buf.length < end + 4 + Number(/content-length: (\d+)/i.exec(buf)?.[1] ?? 0)) return;
      buf = '';
      waiting.push(s);
      if (waiting.length === n) process.send('all');
    });
  });
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
  process.on('message', (m) => {
    if (m === 'first') {
      const t0 = performance.now();
      const head = 'HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n';
      for (const s of waiting) s.write(head + sse({ role: 'assistant', content: '' }) + sse({ content: 'token' }));
      process.send({ wroteMs: performance.now() - t0 });
    } else if (m === 'end') {
      const tail =
        sse({}, 'stop', { usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }) +
        chunk('[DONE]') +
        '0\r\n\r\n';
      for (const s of waiting.splice(0)) s.write(tail);
    } else if (m === 'exit') process.exit(0);
  });
} else {
  const child = fork(new URL(import.meta.url).pathname, ['--serve', '--streams', String(n)]);
  const inbox = [];
  let wake;
  child.on('message', (m) => {
    inbox.push(m);
    wake?.();
  });
  const next = async () => {
    while (!inbox.length) await new Promise((r) => (wake = r));
    return inbox.shift();
  };
  const { port } = await next();
  const origin = `http://127.0.0.1:${port}`;
  const pool = new RawPool({ origin, connections: n, connectTimeoutMs: 5000 });
  const events = new EventWriter({
    path: join(tmpdir(), `first-token-burst-${process.pid}.jsonl`),
    run: 'bench',
    shard: 0,
    now: monotonicEpochMs,
  });
  const body = JSON.stringify({
    messages: [{ role: 'user', content: 'q' }],
    stream: true,
    stream_options: { include_usage: true },
  });
  const target = { origin, path: '/v1/chat/completions', headers: { 'content-type': 'application/json' } };
  const timeouts = { ttftMs: 60_000, idleMs: 60_000, totalMs: 60_000 };
  console.log(
    `first-token burst — node ${process.version}, ${new Date().toISOString()}, ${n} streams, raw transport, one ` +
      `loop (round 0 opens the connections)`,
  );
  const warm = [];
  for (let round = 0; round < Number(values.rounds); round++) {
    const firsts = [];
    const attempts = [];
    for (let i = 0; i < n; i++) {
      const id = `r${i}`;
      attempts.push(
        runChatAttempt(pool, target, body, true, timeouts, monotonicEpochMs, {
          onHeaders: (status, ts) => events.write('response_headers', { id, attempt: 1, status }, ts),
          onFirstToken: (ts) => {
            firsts.push(ts);
            events.write('first_token', { id, attempt: 1 }, ts);
          },
        }),
      );
    }
    if ((await next()) !== 'all') throw new Error('server out of step');
    child.send('first');
    // Block while the server writes (it takes ~10-15 ms), so every first token is waiting when the loop polls.
    const until = performance.now() + 80;
    while (performance.now() < until);
    const cpu0 = process.cpuUsage();
    await new Promise((resolve) => {
      const check = () => (firsts.length === n ? resolve() : setImmediate(check));
      check();
    });
    const cpu = process.cpuUsage(cpu0);
    const { wroteMs } = await next();
    firsts.sort((a, b) => a - b);
    const spreadMs = firsts[n - 1] - firsts[0];
    // The first rounds run shardline's read path before the JIT has optimized it.
    if (round >= 2) warm.push(spreadMs);
    console.log(
      `round ${round}: server wrote ${n} first tokens in ${wroteMs.toFixed(1)} ms; the loop read them over ` +
        `${spreadMs.toFixed(1)} ms ` +
        `(${((spreadMs * 1000) / n).toFixed(1)} µs apart, ${((cpu.user + cpu.system) / n).toFixed(1)} µs CPU each)`,
    );
    child.send('end');
    const outcomes = await Promise.all(attempts);
    if (outcomes.some((o) => o.outcome !== 'ok'))
      throw new Error(`a stream failed: ${JSON.stringify(outcomes.find((o) => o.outcome !== 'ok'))}`);
  }
  warm.sort((a, b) => a - b);
  if (warm.length) {
    console.log(
      `rounds 2+ (warm): the loop read ${n} first tokens over ` +
        `${warm[0].toFixed(1)}–${warm[warm.length - 1].toFixed(1)} ms, median ` +
        `${warm[Math.floor(warm.length / 2)].toFixed(1)} ms`,
    );
  }
  events.close();
  await pool.close();
  child.send('exit');
}
