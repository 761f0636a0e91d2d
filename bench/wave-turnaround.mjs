#!/usr/bin/env node
// The floor under a lockstep wave's added TTFT: N streams end together, and each loop reads its
// streams' ends, starts the next request on each connection (as a shard's dispatch does) and reads
// the first tokens back. The server answers each request's first token the moment it reads it, and
// its own time (from the start of the loop turn that read the request to the write) is subtracted,
// so what is left is what the client's loops add. Nothing else runs in the clients: no coordinator,
// no results, no IPC per request; their event writes are the ones a shard makes.
//
// With --loops 2 the same N streams are split over two client processes (two shards' worth of
// loops). Every process here (server and clients) shares this machine's cores.
//
//   node bench/wave-turnaround.mjs [--streams 512] [--loops 1] [--rounds 10]
import { fork } from 'node:child_process';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runChatAttempt } from '../dist/client/chat-attempt.js';
import { RawPool } from '../dist/client/raw-pool.js';
import { monotonicEpochMs } from '../dist/util/clock.js';
import { EventWriter } from '../dist/events/event-writer.js';
import { IoTurnClock } from '../dist/sim/io-turn-clock.js';

const role = process.argv[2] === '--server' || process.argv[2] === '--client' ? process.argv[2] : 'main';
const { values } = parseArgs({
  args: process.argv.slice(role === 'main' ? 2 : 3),
  options: {
    streams: { type: 'string', default: '512' },
    loops: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '10' },
    port: { type: 'string', default: '0' },
  },
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
const HEAD_AND_FIRST =
  'HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n' +
  sse({ role: 'assistant', content: '' }) +
  sse({ content: 'token' });
const TAIL =
  sse({}, 'stop', { usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }) +
  chunk('[DONE]') +
  '0\r\n\r\n';

/** Next message from a process (or from the parent, for a child), in order. */
function inbox(emitter) {
  const queue = [];
  let wake;
  emitter.on('message', (m) => {
    queue.push(m);
    wake?.();
  });
  return async () => {
    while (!queue.length) await new Promise((r) => (wake = r));
    return queue.shift();
  };
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

if (role === '--server') {
  // Answers every request's first token at once and keeps the stream open until 'end'. Reports
  // each request's own server time: start of the loop turn that read it → first-token write.
  const turns = new IoTurnClock(() => performance.now());
  const open = [];
  const serverMs = [];
  const server = createServer((s) => {
    let buf = '';
    s.setNoDelay(true);
    s.on('data', (d) => {
      const turn = turns.read();
      buf += d;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0 || buf.length < end + 4 + Number(/content-length: (\d+)/i.exec(buf)?.[1] ?? 0)) return;
      buf = '';
      s.write(HEAD_AND_FIRST);
      serverMs.push(performance.now() - turn);
      open.push(s);
      if (open.length === n) process.send({ t: 'all', serverMs: serverMs.splice(0) });
    });
  });
  server.listen(0, '127.0.0.1', () => process.send({ t: 'port', port: server.address().port }));
  process.on('message', (m) => {
    if (m === 'end') for (const s of open.splice(0)) s.write(TAIL);
    else if (m === 'exit') process.exit(0);
  });
} else if (role === '--client') {
  // One loop with `n` streams: whenever a stream ends it starts the next request on the pool at
  // once; per round it reports each request's client-side TTFT (attempt start → first token).
  const next = inbox(process);
  const origin = `http://127.0.0.1:${values.port}`;
  const pool = new RawPool({ origin, connections: n, connectTimeoutMs: 5000 });
  const events = new EventWriter({
    path: join(tmpdir(), `wave-turnaround-${process.pid}.jsonl`),
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
  const rounds = Number(values.rounds);
  let ttfts = [];
  let spans = { start0: Infinity, start1: 0, first0: Infinity, first1: 0 };
  let seq = 0;
  const one = async (round) => {
    const id = `r${seq++}`;
    const start = monotonicEpochMs();
    events.write('attempt_start', { id, attempt: 1 }, start);
    let first = 0;
    const o = await runChatAttempt(pool, target, body, true, timeouts, monotonicEpochMs, {
      onHeaders: (status, ts) => events.write('response_headers', { id, attempt: 1, status }, ts),
      onFirstToken: (ts) => {
        first = ts;
        events.write('first_token', { id, attempt: 1 }, ts);
        ttfts.push(ts - start);
        spans.start0 = Math.min(spans.start0, start);
        spans.start1 = Math.max(spans.start1, start);
        spans.first0 = Math.min(spans.first0, ts);
        spans.first1 = Math.max(spans.first1, ts);
        if (ttfts.length === n) {
          process.send({ t: 'firsts', ttfts, spans });
          ttfts = [];
          spans = { start0: Infinity, start1: 0, first0: Infinity, first1: 0 };
        }
      },
    });
    if (o.outcome !== 'ok') throw new Error(`a stream failed: ${JSON.stringify(o)}`);
    events.write('attempt_end', {
      id,
      attempt: 1,
      outcome: 'ok',
      status: o.status,
      completion_tokens: 1,
      prompt_tokens: 1,
      last_token_ts: o.lastTokenTs,
    });
    events.write('request_end', { id, outcome: 'succeeded', attempts: 1, completion_tokens: 1, prompt_tokens: 1 });
    if (first === 0) throw new Error('no first token');
    // The shard's dispatch: the freed slot starts the next request in the same turn.
    if (round + 1 < rounds) await one(round + 1);
  };
  const all = Array.from({ length: n }, () => one(0));
  for (;;) {
    const m = await next();
    if (m.t === 'block') {
      // Blocked while the server writes every stream's end, so all of them are waiting when the loop
      // polls. Atomics.wait sleeps without spinning: a spin loop would allocate and skew the GC figures.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, m.ms);
    } else if (m.t === 'exit') break;
  }
  await Promise.all(all);
  events.close();
  await pool.close();
  process.exit(0);
} else {
  const loops = Number(values.loops);
  const rounds = Number(values.rounds);
  if (n % loops !== 0) throw new Error(`--streams ${n} must divide by --loops ${loops}`);
  const self = new URL(import.meta.url).pathname;
  const server = fork(self, ['--server', '--streams', String(n)]);
  const fromServer = inbox(server);
  const { port } = await fromServer();
  const clients = Array.from({ length: loops }, () =>
    fork(self, ['--client', '--streams', String(n / loops), '--rounds', String(rounds), '--port', String(port)]),
  );
  const firsts = [];
  let wake;
  for (const c of clients) {
    c.on('message', (m) => {
      if (m.t === 'firsts') {
        firsts.push(m);
        wake?.();
      }
    });
  }
  const clientRound = async () => {
    while (firsts.length < loops) await new Promise((r) => (wake = r));
    const got = firsts.splice(0);
    // Per loop: its requests went out over `starts` ms, and their first tokens came in over `firsts` ms
    // from its first start.
    const spans = got
      .map(({ spans: s }) => `${(s.start1 - s.start0).toFixed(1)}/${(s.first1 - s.start0).toFixed(1)}`)
      .join(', ');
    return [got.flatMap((m) => m.ttfts), spans];
  };
  console.log(
    `wave turnaround — node ${process.version}, ${new Date().toISOString()}, ${n} streams on ${loops} loop(s), raw ` +
      `transport (round 0 opens the connections)`,
  );
  const warm = [];
  for (let round = 0; round < rounds; round++) {
    const [[ttfts, spans], all] = await Promise.all([clientRound(), fromServer()]);
    const serverMs = all.serverMs.sort((a, b) => a - b);
    // Matched by rank, as every request gets the same server treatment: the client's TTFT less the
    // server's median own time (its spread is reported alongside).
    const own = percentile(serverMs, 50);
    const added = ttfts.map((t) => t - own).sort((a, b) => a - b);
    if (round >= 2) warm.push(added);
    console.log(
      `round ${round}: added TTFT p50 ${percentile(added, 50).toFixed(1)} ms, p99 ` +
        `${percentile(added, 99).toFixed(1)} ms, max ${added[added.length - 1].toFixed(1)} ms` +
        (round === 0 ? ' (connections opening)' : '') +
        `; server's own time per request p50 ${own.toFixed(2)} p99 ${percentile(serverMs, 99).toFixed(2)} ms` +
        `; per loop, requests written over / first tokens in by: ${spans} ms`,
    );
    if (round + 1 === rounds) break;
    for (const c of clients) c.send({ t: 'block', ms: 80 });
    await new Promise((r) => setTimeout(r, 10));
    server.send('end');
  }
  const p99s = warm.map((a) => percentile(a, 99)).sort((a, b) => a - b);
  const p50s = warm.map((a) => percentile(a, 50)).sort((a, b) => a - b);
  console.log(
    `rounds 2+ (warm): added TTFT p99 ${p99s[0].toFixed(1)}–${p99s[p99s.length - 1].toFixed(1)} ms (median ` +
      `${percentile(p99s, 50).toFixed(1)}), ` +
      `p50 ${p50s[0].toFixed(1)}–${p50s[p50s.length - 1].toFixed(1)} ms`,
  );
  server.send('end');
  for (const c of clients) c.send({ t: 'exit' });
  await Promise.all(clients.map((c) => new Promise((r) => c.on('exit', r))));
  server.send('exit');
}
