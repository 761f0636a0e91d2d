import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createServer } from 'node:http';
import { startObservingSim } from './helpers/observing-sim.js';
import type { AddressInfo } from 'node:net';
import { analyze, completionText, parseProfile, run, startSim, type RunningSim } from '../src/index.js';
import { filesUnder, loadEvents, loadResults, ofType, tempDir, writeInput } from './helpers/run-dir.js';

let sim: RunningSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const quiet = { progress: 'off' as const };

describe('shardline run against the simulator', () => {
  it('writes exactly one Batch-format result per input line, assembled from the stream', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast' }) });
    const dir = tempDir();
    const input = writeInput(dir, 120);
    const out = join(dir, 'out');
    const summary = await run({ input, endpoint: `${sim.url}/v1`, out, shards: 2, concurrency: 8, ...quiet });
    expect(summary.status).toBe('finished');
    expect(summary.exit_code).toBe(0);
    expect(summary.requests).toEqual({ total: 120, succeeded: 120, failed: 0, rejected: 0, skipped: 0, rerun: 0 });
    expect(summary.tokens.completion).toBe(120 * 16);
    const results = loadResults(out);
    expect(results).toHaveLength(120);
    expect(new Set(results.map((r) => r.custom_id)).size).toBe(120);
    for (const r of results) {
      expect(r.error).toBeNull();
      expect(r.response!.status_code).toBe(200);
      expect(r.response!.body.choices[0]!.message.content).toBe(completionText(16));
      expect(r.response!.body.usage!.completion_tokens).toBe(16);
    }
    const manifest = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
    expect(manifest).toMatchObject({ schema: 'shardline.run/v1', run_id: summary.run_id, status: 'finished' });
    expect(manifest.input.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('records the request lifecycle as events in one file per shard plus the coordinator', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast' }) });
    const dir = tempDir();
    const out = join(dir, 'out');
    await run({ input: writeInput(dir, 40), endpoint: `${sim.url}/v1`, out, shards: 2, concurrency: 4, ...quiet });
    expect(readdirSync(join(out, 'events')).sort()).toEqual([
      'coordinator.jsonl',
      'shard-000.jsonl',
      'shard-001.jsonl',
    ]);
    const events = loadEvents(out);
    for (const e of events) {
      expect(e.v).toBe(1);
      expect(typeof e.ts).toBe('number');
      expect(e.run).toBe(events[0]!.run);
    }
    const types = new Set(events.map((e) => e.type));
    for (const t of [
      'run_start',
      'shard_start',
      'enqueue',
      'attempt_start',
      'conn_open',
      'response_headers',
      'first_token',
      'attempt_end',
      'request_end',
      'shard_end',
      'run_end',
    ]) {
      expect(types, t).toContain(t);
    }
    for (const e of ofType(events, 'enqueue')) expect(e.shard).toBe(-1);
    const ends = ofType(events, 'request_end');
    expect(ends).toHaveLength(40);
    for (const e of ends) expect(e).toMatchObject({ outcome: 'succeeded', attempts: 1, completion_tokens: 16 });
    // Per request: enqueue < attempt_start < response_headers ≤ first_token < attempt_end ≤ request_end.
    const at = (type: string, id: string) =>
      events.find((e) => e.type === type && (e as { id?: string }).id === id)!.ts;
    for (const id of ['req-0', 'req-17', 'req-39']) {
      expect(at('enqueue', id)).toBeLessThanOrEqual(at('attempt_start', id));
      expect(at('attempt_start', id)).toBeLessThanOrEqual(at('response_headers', id));
      expect(at('response_headers', id)).toBeLessThanOrEqual(at('first_token', id));
      expect(at('first_token', id)).toBeLessThanOrEqual(at('attempt_end', id));
      expect(at('attempt_end', id)).toBeLessThanOrEqual(at('request_end', id));
    }
    // One socket per slot with keep-alive: never more connections than concurrency per shard.
    expect(ofType(events, 'conn_open').length).toBeLessThanOrEqual(8);
    // The client measures itself: shard CPU from shard_end, per attempt and per token.
    const report = await analyze([out]);
    const cpu = ofType(events, 'shard_end').reduce((a, e) => a + (e.cpu_user_ms ?? 0) + (e.cpu_system_ms ?? 0), 0);
    expect(report.client_cpu.shard_cpu_ms).toBeCloseTo(cpu, 2);
    expect(report.client_cpu.us_per_request).toBeCloseTo((cpu * 1000) / 40, 1);
  });

  it('sends requests streaming with include_usage, the model override, Authorization and extra headers', async () => {
    const observed = await startObservingSim();
    const seen = observed.seen;
    try {
      const dir = tempDir();
      const input = join(dir, 'in.jsonl');
      writeFileSync(
        input,
        [
          JSON.stringify({
            custom_id: 'a',
            body: { model: 'orig', messages: [{ role: 'user', content: 'x' }], max_tokens: 3, temperature: 0.2 },
          }),
          JSON.stringify({
            custom_id: 'b',
            body: { messages: [{ role: 'user', content: 'y' }], max_tokens: 3, stream: false },
          }),
        ].join('\n'),
      );
      const summary = await run({
        input,
        endpoint: `${observed.url}/v1`,
        out: join(dir, 'out'),
        model: 'override-model',
        apiKey: 'sk-test-key',
        headers: ['X-Team: search'],
        ...quiet,
      });
      expect(summary.requests.succeeded).toBe(2);
      expect(seen).toHaveLength(2);
      const a = seen.find((s) => s.body.max_tokens === 3 && s.body.temperature === 0.2)!;
      expect(a.body).toMatchObject({ model: 'override-model', stream: true, stream_options: { include_usage: true } });
      expect(a.headers.authorization).toBe('Bearer sk-test-key');
      expect(a.headers['x-team']).toBe('search');
      expect(a.headers['user-agent']).toMatch(/^shardline\//);
      // A body that asks for no streaming is honoured (the result is still a chat.completion).
      const b = seen.find((s) => s.body.stream === false)!;
      expect(b.body.stream_options).toBeUndefined();
      expect(
        loadResults(join(dir, 'out')).find((r) => r.custom_id === 'b')!.response!.body.choices[0]!.message.content,
      ).toBe(completionText(3));
    } finally {
      await observed.close();
    }
  });

  it('rejects malformed lines with their line numbers and runs the rest', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast' }) });
    const dir = tempDir();
    const input = join(dir, 'mixed.jsonl');
    const good = (i: number) =>
      JSON.stringify({ custom_id: `ok-${i}`, body: { messages: [{ role: 'user', content: 'x' }], max_tokens: 4 } });
    // Saved by a Windows editor: a byte-order mark before line 1, and CRLF line ends here and there.
    writeFileSync(
      input,
      [
        `\uFEFF${good(1)}\r`,
        '{"custom_id": "broken", ',
        JSON.stringify({ custom_id: 'nomsg', body: { model: 'm' } }),
        `${good(2)}\r`,
        good(1),
        '',
        JSON.stringify({ messages: [{ role: 'user', content: 'bare' }] }),
        JSON.stringify({ custom_id: 'big', body: { messages: [{ role: 'user', content: 'x'.repeat(1024 * 1024) }] } }),
        '[1,2]',
      ].join('\n'),
    );
    const out = join(dir, 'out');
    const summary = await run({ input, endpoint: `${sim.url}/v1`, out, ...quiet });
    expect(summary.requests).toMatchObject({ total: 3, succeeded: 3, rejected: 5 });
    expect(summary.exit_code).toBe(3);
    const rejects = readFileSync(join(out, 'rejects.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rejects.map((r) => r.line)).toEqual([2, 3, 5, 8, 9]);
    expect(rejects[0].reason).toMatch(/invalid JSON/);
    expect(rejects[1].reason).toMatch(/no messages/);
    expect(rejects[2].reason).toMatch(/duplicate id "ok-1"/);
    expect(rejects[3].reason).toMatch(/over the 1048576-byte limit/);
    expect(rejects[4].reason).toMatch(/expected a JSON object/);
    expect(
      loadResults(out)
        .map((r) => r.custom_id)
        .sort(),
    ).toEqual(['line-7', 'ok-1', 'ok-2']);
    const tolerant = await run({
      input,
      endpoint: `${sim.url}/v1`,
      out: join(dir, 'out2'),
      allowFailures: '5',
      ...quiet,
    });
    expect(tolerant.exit_code).toBe(0);
  });

  it('scrubs a credential that the server echoes back in an error', async () => {
    const secret = 'sk-echoed-back-0123456789';
    const server = createServer((req, res) => {
      req.resume();
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          error: {
            message:
              `Incorrect API key provided: ${String(req.headers.authorization)} / ` +
              `${String(req.headers['x-api-key'])}`,
          },
        }),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const dir = tempDir();
      const out = join(dir, 'out');
      const summary = await run({
        input: writeInput(dir, 2),
        endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
        out,
        apiKey: secret,
        headers: ['X-Api-Key: another-secret-value'],
        ...quiet,
      });
      expect(summary.failure_causes).toEqual({ http_4xx: 2 });
      const text =
        readFileSync(join(out, 'results.jsonl'), 'utf8') +
        readdirSync(join(out, 'events'))
          .map((f) => readFileSync(join(out, 'events', f), 'utf8'))
          .join('');
      expect(text).toContain('Incorrect API key provided: [redacted]');
      expect(text).not.toContain(secret);
      expect(text).not.toContain('another-secret-value');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('never writes the API key anywhere under the output directory', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast', faults: { errors: { p_500: 0.2 } } }) });
    const dir = tempDir();
    const out = join(dir, 'out');
    const secret = 'sk-live-DO-NOT-LEAK-4242';
    await run({
      input: writeInput(dir, 30),
      endpoint: `${sim.url}/v1?api-key=${secret}x`,
      out,
      apiKey: secret,
      headers: [`api-key: ${secret}`],
      retryBackoffS: 0.01,
      ...quiet,
    });
    const files = filesUnder(out);
    expect(files.length).toBeGreaterThanOrEqual(5);
    for (const f of files) expect(readFileSync(f, 'utf8'), f).not.toContain(secret);
  });
});
