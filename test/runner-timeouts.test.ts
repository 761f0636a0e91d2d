import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseProfile, run, startSim, type RunningSim, type SimProfileFile } from '../src/index.js';
import { loadEvents, ofType, tempDir, writeInput } from './helpers/run-dir.js';

let sim: RunningSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const fast = { retryBackoffS: 0.01, retryBackoffMaxS: 0.02, maxAttempts: 2, progress: 'off' as const };

async function runAgainst(profile: SimProfileFile, timeouts: Record<string, number>, n = 3) {
  sim = await startSim({ profile: parseProfile(profile) });
  const dir = tempDir();
  const out = join(dir, 'out');
  const summary = await run({
    input: writeInput(dir, n, { max_tokens: 20 }),
    endpoint: `${sim.url}/v1`,
    out,
    ...fast,
    ...timeouts,
  });
  return { summary, events: loadEvents(out) };
}

describe('phase timeouts and connection errors', () => {
  it('timeout_ttft: no first token in time (long prefill)', async () => {
    const { summary, events } = await runAgainst({ base: 'fast', prefill_ms_base: 2000 }, { timeoutTtftS: 0.15 });
    expect(summary.failure_causes).toEqual({ timeout_ttft: 3 });
    const errs = ofType(events, 'attempt_end');
    expect(errs).toHaveLength(6);
    for (const e of errs) expect(e).toMatchObject({ outcome: 'error', cause: 'timeout_ttft' });
    // The attempt gave up at the limit, not at the server's pace.
    const starts = new Map(ofType(events, 'attempt_start').map((e) => [`${e.id}#${e.attempt}`, e.ts]));
    for (const e of errs) expect(e.ts - starts.get(`${e.id}#${e.attempt}`)!).toBeGreaterThanOrEqual(149);
  });

  it('timeout_idle: the stream stalls after some tokens (keep-alive data does not count)', async () => {
    const { summary, events } = await runAgainst(
      { base: 'fast', step_ms_base: 1, faults: { stall: { p: 1, after_tokens: 4, stall_ms: 1000, keepalive_ms: 50 } } },
      { timeoutIdleS: 0.2 },
    );
    expect(summary.failure_causes).toEqual({ timeout_idle: 3 });
    for (const e of ofType(events, 'first_token')) expect(e.attempt).toBeGreaterThanOrEqual(1);
    expect(ofType(events, 'first_token')).toHaveLength(6);
  });

  it('timeout_total: tokens keep coming but the whole attempt is too long', async () => {
    const { summary } = await runAgainst(
      { base: 'fast', step_ms_base: 60, tokens_per_step: 1 },
      { timeoutTotalS: 0.4, timeoutIdleS: 5 },
    );
    expect(summary.failure_causes).toEqual({ timeout_total: 3 });
  });

  it('conn_reset: a reset mid-stream is retried and then succeeds', async () => {
    const { summary, events } = await runAgainst(
      { base: 'fast', faults: { reset: { p: 0.5, after_tokens: 3 } } },
      { maxAttempts: 20 },
      20,
    );
    expect(summary.requests.succeeded).toBe(20);
    const causes = ofType(events, 'attempt_end')
      .filter((e) => e.outcome === 'error')
      .map((e) => e.cause);
    expect(causes.length).toBeGreaterThan(0);
    expect(new Set(causes)).toEqual(new Set(['conn_reset']));
  });

  it('conn_refused: nothing listens on the port', async () => {
    const probe = createNetServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const dir = tempDir();
    const out = join(dir, 'out');
    const summary = await run({ input: writeInput(dir, 2), endpoint: `http://127.0.0.1:${port}/v1`, out, ...fast });
    expect(summary.failure_causes).toEqual({ conn_refused: 2 });
    expect(ofType(loadEvents(out), 'backoff')).toHaveLength(2);
  });

  it('timeout_connect: the TLS handshake never completes', async () => {
    // A TCP server that accepts and says nothing: the connector's timeout covers the TLS handshake.
    const sockets: Socket[] = [];
    const silent: Server = createNetServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    try {
      const dir = tempDir();
      const summary = await run({
        input: writeInput(dir, 2),
        endpoint: `https://127.0.0.1:${port}/v1`,
        out: join(dir, 'out'),
        ...fast,
        timeoutConnectS: 0.2,
      });
      expect(summary.failure_causes).toEqual({ timeout_connect: 2 });
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it('protocol_error: a server that answers 200 with something that is not SSE JSON', async () => {
    const { createServer } = await import('node:http');
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('data: {not json}\n\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const dir = tempDir();
      const port = (server.address() as { port: number }).port;
      const summary = await run({
        input: writeInput(dir, 2),
        endpoint: `http://127.0.0.1:${port}/v1`,
        out: join(dir, 'out'),
        ...fast,
      });
      expect(summary.failure_causes).toEqual({ protocol_error: 2 });
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('estimates tokens with a real tokenizer when the server sends no usage', async () => {
    const { summary, events } = await runAgainst({ base: 'fast', faults: { usage: false } }, {}, 4);
    expect(summary.tokens.completion).toBe(4 * 20);
    for (const e of ofType(events, 'request_end'))
      expect(e).toMatchObject({ completion_tokens: 20, tokens_estimated: true });
  });
});
