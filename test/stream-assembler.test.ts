import { describe, expect, it } from 'vitest';
import { fastContent, StreamAssembler } from '../src/client/stream-assembler.js';
import { estimateCompletionTokens, estimateTokens } from '../src/client/token-estimate.js';

const chunk = (choices: object[], extra: object = {}) =>
  JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 7, model: 'm', choices, ...extra });

describe('StreamAssembler', () => {
  it('assembles every choice of an n > 1 stream by its index, in order', () => {
    const a = new StreamAssembler();
    const feed = [
      chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]),
      chunk([{ index: 1, delta: { role: 'assistant', content: '' }, finish_reason: null }]),
      chunk([{ index: 0, delta: { content: 'Hel' }, logprobs: null, finish_reason: null }]),
      chunk([{ index: 1, delta: { content: 'Bon' }, logprobs: null, finish_reason: null }]),
      chunk([{ index: 1, delta: { content: 'jour' }, logprobs: null, finish_reason: null }]),
      chunk([{ index: 0, delta: { content: 'lo' }, logprobs: null, finish_reason: null }]),
      chunk([{ index: 1, delta: {}, finish_reason: 'stop' }]),
      chunk([{ index: 0, delta: {}, finish_reason: 'length' }]),
      chunk([], { usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 } }),
      '[DONE]',
    ];
    const tokens = feed.map((d) => a.push(d));
    expect(tokens).toEqual([false, false, true, true, true, true, false, false, false, false]);
    // The first choice's chunks are what TTFT and content-chunk counts are about.
    expect(a.contentChunks).toBe(2);
    expect(a.complete).toBe(true);
    expect(a.toCompletion()).toEqual({
      id: 'c1',
      object: 'chat.completion',
      created: 7,
      model: 'm',
      choices: [
        { index: 0, message: { role: 'assistant', content: 'Hello' }, finish_reason: 'length' },
        { index: 1, message: { role: 'assistant', content: 'Bonjour' }, finish_reason: 'stop' },
      ],
      usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
    });
  });

  it('reads a plain first-choice token without JSON.parse, and leaves every other shape to it', () => {
    expect(fastContent(chunk([{ index: 0, delta: { content: ' tok' }, logprobs: null, finish_reason: null }]))).toBe(
      ' tok',
    );
    expect(
      fastContent(chunk([{ index: 1, delta: { content: ' tok' }, logprobs: null, finish_reason: null }])),
    ).toBeUndefined();
    expect(fastContent(chunk([{ index: 0, delta: { content: 'a\\"b' }, finish_reason: null }]))).toBeUndefined();
    expect(fastContent(chunk([{ index: 0, delta: { content: 'x' }, finish_reason: 'stop' }]))).toBeUndefined();
  });
});

describe('completion token estimate (servers that send no usage)', () => {
  it('counts the content, reasoning and tool-call arguments of every choice', async () => {
    const one = await estimateTokens('Hello world, how are you?');
    const two = await estimateTokens('Bonjour tout le monde');
    const args = await estimateTokens('{"city":"Paris"}');
    expect(one).toBeGreaterThan(3);
    const total = await estimateCompletionTokens({
      choices: [
        { message: { content: 'Hello world, how are you?' } },
        { message: { content: 'Bonjour tout le monde' } },
        { message: { content: null, tool_calls: [{ function: { arguments: '{"city":"Paris"}' } }] } },
        { message: { content: '', reasoning_content: 'Hello world, how are you?' } },
      ],
    });
    expect(total).toBe(one + two + args + one);
  });
});

describe('reasoning models', () => {
  it('keeps the reasoning a model streams before its answer, and starts the answer at its first content', () => {
    const a = new StreamAssembler();
    const tokens = [
      chunk([{ index: 0, delta: { role: 'assistant', reasoning_content: 'The user greets; ' }, finish_reason: null }]),
      chunk([{ index: 0, delta: { reasoning_content: 'greet back.' }, finish_reason: null }]),
      chunk([{ index: 0, delta: { content: 'Hi!' }, finish_reason: null }]),
      chunk([{ index: 0, delta: {}, finish_reason: 'stop' }]),
    ].map((d) => a.push(d));
    expect(tokens).toEqual([false, false, true, false]);
    expect(a.toCompletion().choices[0]!.message).toEqual({
      role: 'assistant',
      content: 'Hi!',
      reasoning_content: 'The user greets; greet back.',
    });
    // Servers that name the field `reasoning` (newer vLLM) are read the same way.
    const b = new StreamAssembler();
    b.push(chunk([{ index: 0, delta: { reasoning: 'think' }, finish_reason: null }]));
    b.push(chunk([{ index: 0, delta: { content: 'ok' }, finish_reason: 'stop' }]));
    expect(b.toCompletion().choices[0]!.message.reasoning_content).toBe('think');
  });
});
