import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { bodyProblem, endpointOfUrl, usageOf } from '../src/client/endpoints.js';
import { analyze, parseProfile, run, startSim, sweep, type RunningSim } from '../src/index.js';
import { parseRequestLine, type RejectedLine, type RequestSpec } from '../src/input/request-line.js';
import { expectBooksAgree } from './helpers/books.js';
import { CLI, runCli } from './helpers/cli.js';
import { loadEvents, ofType, tempDir } from './helpers/run-dir.js';
import { readFileSync } from 'node:fs';

// Every OpenAI Batch endpoint beside chat: the line's url chooses it, the simulator serves it (and
// the official openai client takes its answers), and a job mixing them gets one Batch output line
// per request with the figures that fit each endpoint.

let sim: RunningSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const parse = (text: string, url?: string) =>
  parseRequestLine(
    { lineNo: 1, text, bytes: text.length },
    { maxLineBytes: 1 << 20, ...(url ? { url: endpointOfUrl(url) } : {}) },
  );

describe('the url of a line chooses its endpoint', () => {
  it('maps Batch urls to endpoints, any other POST path under /v1/ to a pass-through', () => {
    expect(endpointOfUrl('/v1/chat/completions')).toEqual({ kind: 'chat', path: 'chat/completions' });
    expect(endpointOfUrl('/chat/completions')).toEqual({ kind: 'chat', path: 'chat/completions' });
    expect(endpointOfUrl('/v1/embeddings')).toEqual({ kind: 'embeddings', path: 'embeddings' });
    expect(endpointOfUrl('/v1/completions')?.kind).toBe('completions');
    expect(endpointOfUrl('/v1/responses')?.kind).toBe('responses');
    expect(endpointOfUrl('/v1/rerank')).toEqual({ kind: 'other', path: 'rerank' });
    for (const bad of ['/v2/chat', 'http://x/v1/embeddings', '/v1/../admin', '/rerank', ''])
      expect(endpointOfUrl(bad), bad).toBeUndefined();
  });

  it('checks each body for what its endpoint needs, naming the missing field', () => {
    expect(bodyProblem('embeddings', {})).toMatch(/^no input/);
    expect(bodyProblem('completions', { prompt: [] })).toMatch(/^no prompt/);
    expect(bodyProblem('responses', { input: 'x' })).toBeUndefined();
    expect(bodyProblem('other', {})).toBeUndefined();
    const batch = (url: string, body: object) => JSON.stringify({ custom_id: 'a', method: 'POST', url, body });
    expect((parse(batch('/v1/embeddings', { model: 'e' })) as RejectedLine).reason).toMatch(/no input: body\.input/);
    expect((parse(batch('/v1/completions', { input: 'x' })) as RejectedLine).reason).toMatch(/no prompt/);
    expect((parse(batch('/v2/x', { input: 'x' })) as RejectedLine).reason).toMatch(/url must be a POST path under/);
  });

  it('streams generation endpoints (usage asked for where the API has the option), never embeddings', () => {
    const batch = (url: string, body: object) => JSON.stringify({ custom_id: 'a', method: 'POST', url, body });
    const comp = parse(batch('/v1/completions', { prompt: 'p' })) as RequestSpec;
    expect(comp).toMatchObject({ endpoint: 'completions', stream: true });
    expect(JSON.parse(comp.body)).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    const resp = parse(batch('/v1/responses', { input: 'p' })) as RequestSpec;
    expect(JSON.parse(resp.body)).toEqual({ input: 'p', stream: true });
    const emb = parse(batch('/v1/embeddings', { input: ['a', 'b', 'c'] })) as RequestSpec;
    expect(emb).toMatchObject({ endpoint: 'embeddings', stream: false, items: 3 });
    expect(JSON.parse(emb.body)).toEqual({ input: ['a', 'b', 'c'] });
    const rerank = parse(batch('/v1/rerank', { query: 'q', documents: ['d'] })) as RequestSpec;
    expect(rerank).toMatchObject({ endpoint: 'other', path: 'rerank', stream: false });
    // A chat line stays as lean as before: no endpoint field on the hot path.
    const chat = parse(batch('/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }] })) as RequestSpec;
    expect('endpoint' in chat).toBe(false);
  });

  it('takes bare bodies as chat when they have messages, else for the run’s --url', () => {
    expect(parse('{"input":"x"}', '/v1/embeddings')).toMatchObject({ id: 'line-1', endpoint: 'embeddings' });
    expect(parse('{"prompt":"x"}', '/v1/completions')).toMatchObject({ endpoint: 'completions' });
    expect('endpoint' in (parse('{"messages":[{"role":"user","content":"x"}]}', '/v1/embeddings') as object)).toBe(
      false,
    );
    expect((parse('{"input":"x"}') as RejectedLine).reason).toMatch(/no messages/);
  });

  it('reads usage the way each endpoint names it', () => {
    expect(usageOf('responses', { usage: { input_tokens: 4, output_tokens: 9 } })).toEqual({
      prompt: 4,
      completion: 9,
    });
    expect(usageOf('embeddings', { usage: { prompt_tokens: 12, total_tokens: 12 } })).toEqual({
      prompt: 12,
      completion: 0,
    });
    expect(usageOf('completions', {})).toEqual({ prompt: undefined, completion: undefined });
  });
});

describe('the simulator’s new endpoints, through the official openai client', () => {
  it('answers completions, embeddings and responses, streamed and not, as the client expects', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast' }), seed: 2 });
    const client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'unused' });
    const completion = await client.completions.create({ model: 'm', prompt: 'hello there', max_tokens: 4 });
    expect(completion.object).toBe('text_completion');
    expect(completion.choices[0]!.text.length).toBeGreaterThan(0);
    expect(completion.usage).toMatchObject({ completion_tokens: 4 });
    let streamed = '';
    const stream = await client.completions.create({ model: 'm', prompt: 'x', max_tokens: 4, stream: true });
    for await (const chunk of stream) streamed += chunk.choices[0]?.text ?? '';
    expect(streamed).toBe(completion.choices[0]!.text);
    // The client asks for base64 vectors by default and decodes them.
    const emb = await client.embeddings.create({ model: 'e', input: ['one', 'two', 'three'], dimensions: 16 });
    expect(emb.data.map((d) => d.embedding.length)).toEqual([16, 16, 16]);
    expect(emb.usage.prompt_tokens).toBeGreaterThan(0);
    const floats = await client.embeddings.create({ model: 'e', input: 'one', encoding_format: 'float' });
    expect(floats.data[0]!.embedding[1]).toBeCloseTo(emb.data[0]!.embedding[1]!, 5);
    const response = await client.responses.create({ model: 'm', input: 'hi', max_output_tokens: 5 });
    expect(response.output_text).toBe(streamed + (response.output_text.slice(streamed.length) ?? ''));
    expect(response.usage).toMatchObject({ output_tokens: 5 });
    const events: string[] = [];
    let text = '';
    const rs = await client.responses.create({ model: 'm', input: 'hi', max_output_tokens: 5, stream: true });
    for await (const ev of rs) {
      events.push(ev.type);
      if (ev.type === 'response.output_text.delta') text += ev.delta;
    }
    expect(events[0]).toBe('response.created');
    expect(events.at(-1)).toBe('response.completed');
    expect(text).toBe(response.output_text);
  });
});

/** A job of all four endpoints and a rerank pass-through, `n` lines round-robin. */
function mixedJob(dir: string, n: number): string {
  const path = join(dir, 'mixed.jsonl');
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const line = (url: string, body: object) => JSON.stringify({ custom_id: `r${i}`, method: 'POST', url, body });
    const k = i % 5;
    if (k === 0)
      lines.push(line('/v1/chat/completions', { messages: [{ role: 'user', content: `q${i}` }], max_tokens: 6 }));
    if (k === 1) lines.push(line('/v1/completions', { prompt: `p${i}`, max_tokens: 6 }));
    if (k === 2) lines.push(line('/v1/embeddings', { input: [`a ${i}`, `b ${i}`, `c ${i}`] }));
    if (k === 3) lines.push(line('/v1/responses', { input: `r${i}`, max_output_tokens: 6 }));
    if (k === 4) lines.push(line('/v1/rerank', { query: 'q', documents: ['x', 'y'] }));
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

const results = (out: string) =>
  readFileSync(join(out, 'results.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map(
      (l) =>
        JSON.parse(l) as {
          custom_id: string;
          response: { status_code: number; body: Record<string, unknown> } | null;
          error: unknown;
        },
    );

describe('a job mixing every endpoint', () => {
  it('gives one Batch output line per request, each endpoint’s body, and figures matching the events', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast' }), seed: 3 });
    const dir = tempDir();
    const out = join(dir, 'out');
    const summary = await run({ input: mixedJob(dir, 50), endpoint: `${sim.url}/v1`, out, progress: 'off' });
    expect(summary.requests).toMatchObject({ total: 50, succeeded: 50, failed: 0 });
    const byId = new Map(results(out).map((r) => [r.custom_id, r]));
    expect(byId.size).toBe(50);
    const body = (i: number) => byId.get(`r${i}`)!.response!.body;
    expect(body(0)).toMatchObject({ object: 'chat.completion' });
    expect((body(1).choices as { text: string }[])[0]!.text).toMatch(/\S/);
    expect(body(1).object).toBe('text_completion');
    expect(body(2)).toMatchObject({ object: 'list' });
    expect((body(2).data as { embedding: number[] }[]).map((d) => d.embedding.length)).toEqual([32, 32, 32]);
    expect(body(3)).toMatchObject({ object: 'response', status: 'completed', usage: { output_tokens: 6 } });
    expect((body(4).results as unknown[]).length).toBe(2);

    const report = await analyze([out]);
    const ends = ofType(loadEvents(out), 'request_end');
    for (const name of ['chat', 'completions', 'embeddings', 'responses', 'other']) {
      const mine = ends.filter((e) => (e.endpoint ?? 'chat') === name);
      const fig = report.by_endpoint[name]!;
      expect(fig.requests, name).toBe(mine.length);
      expect(fig.requests, name).toBe(10);
      expect(fig.completion_tokens, name).toBe(mine.reduce((a, e) => a + e.completion_tokens, 0));
      expect(fig.prompt_tokens, name).toBe(mine.reduce((a, e) => a + e.prompt_tokens, 0));
    }
    expect(report.by_endpoint.chat!.completion_tokens).toBe(60);
    expect(report.by_endpoint.embeddings!.items).toBe(30);
    expect(report.by_endpoint.embeddings!.completion_tokens).toBe(0);
    // Only streamed answers have a TTFT; embeddings and rerank are measured by latency.
    expect(report.by_endpoint.embeddings!.ttft_ms).toBeNull();
    expect(report.by_endpoint.other!.ttft_ms).toBeNull();
    expect(report.by_endpoint.responses!.ttft_ms?.p50).not.toBeNull();
    expect(report.ttft_ms.server.count).toBe(30);
    expect(report.latency_ms.e2e.count).toBe(50);
    // Every first_token belongs to a streamed endpoint's request.
    const streamedIds = new Set(
      ends.filter((e) => ['chat', 'completions', 'responses'].includes(e.endpoint ?? 'chat')).map((e) => e.id),
    );
    expect(ofType(loadEvents(out), 'first_token').every((e) => streamedIds.has(e.id))).toBe(true);
    await expectBooksAgree(out);
  });

  it('survives kill -9 and a resume with exactly one result per line', async () => {
    sim = await startSim({
      profile: parseProfile({ base: 'fast', step_ms_base: 4, step_ms_per_seq: 0, tokens_per_step: 1 }),
    });
    const dir = tempDir();
    const out = join(dir, 'out');
    const n = 150;
    const args = ['run', mixedJob(dir, n), '--endpoint', `${sim.url}/v1`, '--out', out, '--concurrency', '4'];
    const child = spawn(process.execPath, [CLI, ...args, '--progress', 'off'], { stdio: 'ignore' });
    const gone = new Promise((r) => child.once('exit', r));
    // Killed once some results are written (or after 5 s on a slow machine), never at a fixed moment.
    for (let i = 0; i < 250; i++) {
      if (
        existsSync(join(out, 'results.jsonl')) &&
        readFileSync(join(out, 'results.jsonl'), 'utf8').split('\n').length > 20
      )
        break;
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGKILL');
    await gone;
    const final = await runCli([...args, '--progress', 'off']);
    expect(final.code, final.stderr).toBe(0);
    const ids = results(out).map((r) => r.custom_id);
    expect(ids).toHaveLength(n);
    expect(new Set(ids).size).toBe(n);
    expect(results(out).every((r) => r.error === null)).toBe(true);
  });
});

describe('sweep and auto on an embeddings job', () => {
  it('measures each level by input tokens/min and server latency, as no answer has a token or a TTFT', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast', slots: 2 }), seed: 4 });
    const dir = tempDir();
    const input = join(dir, 'emb.jsonl');
    const line = (i: number) => JSON.stringify({ input: [`doc ${i}`, `more ${i}`] });
    writeFileSync(input, `${Array.from({ length: 80 }, (_, i) => line(i)).join('\n')}\n`);
    const result = await sweep({
      input,
      run: { endpoint: `${sim.url}/v1`, url: '/v1/embeddings' },
      out: join(dir, 'sweep'),
      levels: [1, 4],
      requestsPerStage: 40,
    });
    for (const s of result.stages) {
      expect(s.tpm, `level ${s.level}`).toBeGreaterThan(0);
      expect(s.ttftP95Ms, `level ${s.level}`).not.toBeNull();
    }
    expect(result.knee.level).not.toBeNull();
    const auto = await run({
      input,
      endpoint: `${sim.url}/v1`,
      url: '/v1/embeddings',
      out: join(dir, 'auto'),
      concurrency: 'auto:1-8:2',
      progress: 'off',
    });
    expect(auto.requests.succeeded).toBe(80);
  });
});
