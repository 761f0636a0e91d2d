import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { encode } from 'gpt-tokenizer/encoding/o200k_base';
import { builtinProfiles, completionText, parseProfile, startSim, type RunningSim } from '../src/index.js';
import { postChat, scrape } from './helpers/http.js';

let sim: RunningSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const quick = parseProfile({ base: 'realistic', prefill_ms_base: 1, step_ms_base: 1, step_ms_per_seq: 0, jitter: 0 });

describe('simulator wire format (official openai client)', () => {
  it('round-trips a non-streaming completion with exact usage', async () => {
    sim = await startSim({ profile: quick });
    const client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
    const res = await client.chat.completions.create({
      model: 'my-model',
      messages: [{ role: 'user', content: 'Say something deterministic.' }],
      max_tokens: 17,
    });
    expect(res.object).toBe('chat.completion');
    expect(res.model).toBe('my-model');
    expect(res.choices[0]!.message.content).toBe(completionText(17));
    expect(res.usage!.completion_tokens).toBe(17);
    expect(res.usage!.total_tokens).toBe(res.usage!.prompt_tokens + 17);
    expect(res.choices[0]!.finish_reason).toBe('length');
  });

  it('streams one delta per token, role first, usage chunk last', async () => {
    sim = await startSim({ profile: quick });
    const client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: 'hello' }],
      max_completion_tokens: 40,
      stream: true,
      stream_options: { include_usage: true },
    });
    const deltas: string[] = [];
    let role: string | undefined;
    let finish: string | null | undefined;
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      expect(chunk.object).toBe('chat.completion.chunk');
      const choice = chunk.choices[0];
      if (choice?.delta.role) role ??= choice.delta.role;
      if (choice?.delta.content) deltas.push(choice.delta.content);
      if (choice?.finish_reason) finish = choice.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(role).toBe('assistant');
    expect(deltas).toHaveLength(40);
    expect(deltas.join('')).toBe(completionText(40));
    expect(finish).toBe('length');
    expect(usage?.completion_tokens).toBe(40);
    // The words are single tokens in a real tokenizer, so estimated counts match usage exactly.
    expect(encode(deltas.join('')).length).toBe(40);
  });

  it('uses the profile default length and finish_reason stop when max_tokens is absent', async () => {
    sim = await startSim({ profile: { ...quick, default_max_tokens: 9 } });
    const client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
    const res = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] });
    expect(res.usage!.completion_tokens).toBe(9);
    expect(res.choices[0]!.finish_reason).toBe('stop');
  });

  it('lists models and answers health', async () => {
    sim = await startSim({ profile: builtinProfiles.get('fast')! });
    const client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['sim-model']);
    const health = await fetch(`${sim.url}/health`);
    expect(await health.json()).toEqual({ status: 'ok' });
  });

  it('answers errors in OpenAI shape with the right status', async () => {
    sim = await startSim({ profile: quick });
    const bad = await postChat(sim.url, '{not json');
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.text).error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_json' });
    const noMessages = await postChat(sim.url, { model: 'm' });
    expect(noMessages.status).toBe(400);
    expect(JSON.parse(noMessages.text).error.message).toMatch(/messages/);
    const badMax = await postChat(sim.url, { messages: [{ role: 'user', content: 'x' }], max_tokens: 0 });
    expect(badMax.status).toBe(400);
    expect(JSON.parse(badMax.text).error.message).toMatch(/max_tokens/);
    const notFound = await fetch(`${sim.url}/v1/nope`);
    expect(notFound.status).toBe(404);
    expect(((await notFound.json()) as { error: { code: string } }).error.code).toBe('unknown_url');

    const client = new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
    await expect(client.chat.completions.create({ model: 'm', messages: [] })).rejects.toMatchObject({ status: 400 });

    const m = await scrape(sim.url);
    expect(m.get('sim_requests_total{code="400"}')).toBe(4);
    expect(m.get('sim_requests_total{code="404"}')).toBe(1);
  });
});
