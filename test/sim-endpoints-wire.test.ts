import { afterEach, describe, expect, it } from 'vitest';
import { completionText, parseProfile, startSim, type RunningSim } from '../src/index.js';

// The simulator's new endpoints on the wire, read as raw HTTP: what a client that is not the openai
// SDK (shardline's own) sees, byte for byte.

let sim: RunningSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function post(path: string, body: unknown): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(`${sim!.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

const events = (text: string) =>
  text
    .split('\n\n')
    .filter(Boolean)
    .map((block) => {
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1] ?? '';
      return { event, data };
    });

describe('the simulator’s endpoints on the wire', () => {
  it('streams completions as text_completion chunks, a token each, then finish, usage and [DONE]', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast' }), seed: 1 });
    const r = await post('/v1/completions', {
      prompt: 'hello',
      max_tokens: 3,
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/text\/event-stream/);
    const ev = events(r.text);
    expect(ev.at(-1)!.data).toBe('[DONE]');
    const chunks = ev.slice(0, -1).map((e) => JSON.parse(e.data) as Record<string, unknown>);
    expect(chunks.every((c) => c.object === 'text_completion')).toBe(true);
    const texts = chunks.flatMap((c) => (c.choices as { text: string }[]).map((x) => x.text));
    expect(texts.join('')).toBe(completionText(3));
    const finish = chunks.flatMap((c) => (c.choices as { finish_reason: string | null }[]).map((x) => x.finish_reason));
    expect(finish.filter(Boolean)).toEqual(['length']);
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { completion_tokens: 3 } });
  });

  it('streams responses as typed events ending with response.completed, and no [DONE]', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast' }), seed: 1 });
    const r = await post('/v1/responses', { input: 'hi', max_output_tokens: 4, stream: true });
    const ev = events(r.text);
    expect(ev.map((e) => e.event)).toEqual([
      'response.created',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.completed',
    ]);
    for (const e of ev) expect((JSON.parse(e.data) as { type: string }).type).toBe(e.event);
    const done = JSON.parse(ev.at(-1)!.data) as { response: Record<string, unknown> };
    expect(done.response).toMatchObject({
      object: 'response',
      status: 'completed',
      usage: { output_tokens: 4 },
      output: [{ type: 'message', role: 'assistant', content: [{ type: 'output_text', text: completionText(4) }] }],
    });
    const plain = await post('/v1/responses', { input: 'hi', max_output_tokens: 4 });
    expect(JSON.parse(plain.text)).toMatchObject({ object: 'response', usage: { input_tokens: 1, output_tokens: 4 } });
  });

  it('answers embeddings with every vector, as floats or as base64 float32s of the same values', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast' }), seed: 1 });
    const floats = JSON.parse((await post('/v1/embeddings', { input: ['a', 'b'], dimensions: 4 })).text) as {
      data: { index: number; embedding: number[] }[];
      usage: { prompt_tokens: number; total_tokens: number };
    };
    expect(floats.data.map((d) => d.index)).toEqual([0, 1]);
    expect(floats.data.map((d) => d.embedding.length)).toEqual([4, 4]);
    expect(floats.usage).toEqual({ prompt_tokens: 4, total_tokens: 4 });
    const b64 = JSON.parse(
      (await post('/v1/embeddings', { input: ['a', 'b'], dimensions: 4, encoding_format: 'base64' })).text,
    ) as { data: { embedding: string }[] };
    const bytes = Buffer.from(b64.data[1]!.embedding, 'base64');
    const decoded = Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
    expect(decoded).toHaveLength(4);
    decoded.forEach((v, i) => expect(v).toBeCloseTo(floats.data[1]!.embedding[i]!, 5));
  });

  it('scores documents for rerank and score, and refuses what an endpoint cannot take', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast' }), seed: 1 });
    const rerank = JSON.parse((await post('/v1/rerank', { query: 'q', documents: ['x', 'y', 'z'] })).text) as {
      results: { index: number; relevance_score: number }[];
    };
    expect(rerank.results.map((r) => r.index)).toEqual([0, 1, 2]);
    const score = JSON.parse((await post('/v1/score', { text_1: 'q', text_2: ['x'] })).text) as { data: unknown[] };
    expect(score.data).toHaveLength(1);
    for (const [path, body, message] of [
      ['/v1/embeddings', {}, /'input'/],
      ['/v1/completions', { max_tokens: 2 }, /'prompt'/],
      ['/v1/responses', { input: [] }, /'input'/],
      ['/v1/rerank', { query: 'q' }, /'documents'/],
    ] as const) {
      const r = await post(path, body);
      expect(r.status, path).toBe(400);
      expect((JSON.parse(r.text) as { error: { message: string } }).error.message, path).toMatch(message);
    }
    expect((await post('/v1/moderations', { input: 'x' })).status).toBe(404);
  });

  it('charges embeddings their input against a token budget, and counts them in its stats', async () => {
    sim = await startSim({
      profile: parseProfile({ base: 'fast', faults: { rate_limit: { tokens_per_min: 60, burst_s: 60 } } }),
      seed: 1,
    });
    // ~40 characters an input: 10 tokens plus 1 of framing, 11 each; five fit in 60, the sixth does not.
    const input = ['x'.repeat(40)];
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await post('/v1/embeddings', { input })).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    expect(sim.stats().byStatus['200']).toBe(5);
  });
});
