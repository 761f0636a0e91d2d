import { describe, expect, it } from 'vitest';
import {
  assemblerFor,
  CompletionsAssembler,
  plainBodyProblem,
  ResponsesAssembler,
} from '../src/client/endpoint-assemblers.js';
import { generates, inputItems, outputTextOf, streams } from '../src/client/endpoints.js';
import { estimateInputTokens } from '../src/client/token-estimate.js';
import { compareReports } from '../src/diagnose/compare-reports.js';
import { buildReport } from '../src/diagnose/build-report.js';
import { zeroBuckets, type EndpointFacts, type RunFacts } from '../src/diagnose/run-facts.js';
import { decodeFlatLine } from './helpers/flat-decode.js';
import { tokenCharge } from '../src/runner/pacing/rate-budget.js';
import { formatReport } from '../src/report/terminal-report.js';
import { apiBodyProblem, generates as simGenerates, inputTokens } from '../src/sim/sim-apis.js';
import { textTokens } from '../src/sim/token-text.js';

// The parts every endpoint goes through, each on its own: stream assemblers, body checks, token
// counts and charges, the flat event decoder's endpoint field, and the report's split by endpoint.

const sse = (o: unknown) => JSON.stringify(o);

describe('the completions stream assembler', () => {
  it('rebuilds a text_completion from its chunks, by choice, with usage and the first token counted', () => {
    const a = new CompletionsAssembler();
    const chunk = (index: number, text: string, finish: string | null = null) =>
      sse({
        id: 'cmpl-1',
        object: 'text_completion',
        created: 7,
        model: 'm',
        choices: [{ index, text, finish_reason: finish }],
      });
    expect(a.push(chunk(0, ''))).toBe(false);
    expect(a.push(chunk(0, 'Hel'))).toBe(true);
    expect(a.push(chunk(1, 'Other'))).toBe(true);
    expect(a.push(chunk(0, 'lo', 'length'))).toBe(true);
    expect(a.complete).toBe(true);
    expect(
      a.push(sse({ id: 'cmpl-1', choices: [], usage: { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 } })),
    ).toBe(false);
    expect(a.push('[DONE]')).toBe(false);
    expect(a.contentChunks).toBe(2);
    expect(a.toCompletion()).toEqual({
      id: 'cmpl-1',
      object: 'text_completion',
      created: 7,
      model: 'm',
      choices: [
        { index: 0, text: 'Hello', logprobs: null, finish_reason: 'length' },
        { index: 1, text: 'Other', logprobs: null, finish_reason: null },
      ],
      usage: { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 },
    });
  });

  it('calls bad JSON and an error event what they are', () => {
    expect(() => new CompletionsAssembler().push('{nope')).toThrow(/invalid JSON in stream/);
    expect(() => new CompletionsAssembler().push(sse({ error: { message: 'overloaded' } }))).toThrow(
      /error event in stream: overloaded/,
    );
    expect(new CompletionsAssembler().complete).toBe(false);
  });
});

describe('the Responses API event reader', () => {
  it('counts output_text deltas as tokens and keeps the completed response as the body', () => {
    const a = new ResponsesAssembler();
    const response = {
      id: 'resp_1',
      object: 'response',
      status: 'completed',
      output: [],
      usage: { input_tokens: 3, output_tokens: 2 },
    };
    expect(a.push(sse({ type: 'response.created', response: { ...response, status: 'in_progress' } }))).toBe(false);
    expect(a.push(sse({ type: 'response.output_text.delta', delta: 'Hi' }))).toBe(true);
    expect(a.push(sse({ type: 'response.output_text.delta', delta: '' }))).toBe(false);
    expect(a.push(sse({ type: 'response.output_text.delta', delta: '!' }))).toBe(true);
    expect(a.complete).toBe(false);
    expect(a.push(sse({ type: 'response.completed', response }))).toBe(false);
    expect(a.complete).toBe(true);
    expect(a.contentChunks).toBe(2);
    expect(a.toCompletion()).toEqual(response);
  });

  it('fails on response.failed and error events, naming the server’s message', () => {
    expect(() =>
      new ResponsesAssembler().push(
        sse({ type: 'response.failed', response: { error: { message: 'out of memory' } } }),
      ),
    ).toThrow(/response failed: out of memory/);
    expect(() => new ResponsesAssembler().push(sse({ type: 'error', message: 'rate limited' }))).toThrow(
      /error event in stream: rate limited/,
    );
  });

  it('is the assembler the responses endpoint gets; completions gets its own, chat the chat one', () => {
    expect(assemblerFor('responses')).toBeInstanceOf(ResponsesAssembler);
    expect(assemblerFor('completions')).toBeInstanceOf(CompletionsAssembler);
    expect(assemblerFor('chat').constructor.name).toBe('StreamAssembler');
  });
});

describe('plain answers', () => {
  it('must look like their endpoint’s answer', () => {
    expect(plainBodyProblem('embeddings', { object: 'list', data: [] })).toBeUndefined();
    expect(plainBodyProblem('embeddings', { choices: [] })).toBe('response has no data list');
    expect(plainBodyProblem('completions', { data: [] })).toBe('response has no choices');
    expect(plainBodyProblem('responses', { object: 'response', output: [] })).toBeUndefined();
    expect(plainBodyProblem('other', { anything: 1 })).toBeUndefined();
    expect(plainBodyProblem('other', [1, 2])).toBe('response body is not a JSON object');
  });

  it('give their text for counting when the server sent no usage', () => {
    expect(outputTextOf('completions', { choices: [{ text: 'a' }, { text: 'b' }] })).toBe('ab');
    expect(
      outputTextOf('responses', { output: [{ content: [{ type: 'output_text', text: 'x' }, { text: 'y' }] }] }),
    ).toBe('xy');
    expect(outputTextOf('responses', { output_text: 'direct' })).toBe('direct');
    expect(outputTextOf('embeddings', { data: [] })).toBe('');
  });

  it('know which endpoints stream and generate, and how many inputs a request has', () => {
    expect(['chat', 'completions', 'responses', 'embeddings', 'other'].map((k) => streams(k as never))).toEqual([
      true,
      true,
      true,
      false,
      false,
    ]);
    expect(generates('embeddings')).toBe(false);
    expect(inputItems({ input: ['a', 'b', 'c'] })).toBe(3);
    expect(inputItems({ input: 'a' })).toBe(1);
  });
});

describe('token counts and charges per endpoint', () => {
  it('estimates a non-chat body’s input from prompt or input, strings, lists and parts', async () => {
    expect(await estimateInputTokens(JSON.stringify({ input: 'hello world' }))).toBe(2);
    expect(await estimateInputTokens(JSON.stringify({ input: ['hello world', 'hello'] }))).toBe(3);
    expect(await estimateInputTokens(JSON.stringify({ prompt: [1, 2, 3] }))).toBe(3);
    expect(await estimateInputTokens(JSON.stringify({ input: [{ role: 'user', content: 'hello world' }] }))).toBe(2);
    expect(await estimateInputTokens('{}')).toBe(0);
  });

  it('charges --tpm for an embeddings request its input alone, a responses one its max_output_tokens', async () => {
    expect(await tokenCharge(JSON.stringify({ input: ['hello world', 'hello'] }), 'embeddings')).toEqual({
      promptTokens: 3,
      maxTokens: 0,
    });
    expect(await tokenCharge(JSON.stringify({ input: 'hello world', max_output_tokens: 50 }), 'responses')).toEqual({
      promptTokens: 2,
      maxTokens: 50,
    });
    const chat = await tokenCharge(
      JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 10, n: 2 }),
    );
    expect(chat.maxTokens).toBe(20);
  });
});

describe('the simulator’s endpoint rules', () => {
  it('names a missing field as OpenAI does, and prices input by characters', () => {
    expect(apiBodyProblem('embeddings', {})).toMatch(/Missing required parameter: 'input'/);
    expect(apiBodyProblem('embeddings', { input: 'x', stream: true })).toMatch(/'stream'/);
    expect(apiBodyProblem('completions', { prompt: 'x' })).toBeUndefined();
    expect(apiBodyProblem('rerank', { query: 'q' })).toMatch(/'documents'/);
    expect(textTokens('12345678')).toBe(2);
    expect(textTokens(['1234', '12345'])).toBe(3);
    // An embeddings request pays a little per input on top of its text.
    expect(inputTokens('embeddings', { input: ['1234', '1234'] })).toBe(4);
    expect(inputTokens('rerank', { query: '1234', documents: ['1234', '12345678'] })).toBe(4);
    expect(simGenerates('responses')).toBe(true);
    expect(simGenerates('score')).toBe(false);
  });
});

describe('the endpoint field of events', () => {
  it('decodes to the same code from bytes as from JSON.parse', () => {
    for (const name of ['completions', 'embeddings', 'responses', 'other']) {
      const line =
        '{"v":1,"ts":1000.5,"run":"r","shard":0,"type":"request_end","id":"a","outcome":"succeeded","attempts":1,' +
        `"completion_tokens":0,"prompt_tokens":5,"endpoint":"${name}","items":3}`;
      const { fast, slow } = decodeFlatLine(line);
      expect(fast.endpoint, name).toBe(slow.endpoint);
      expect(fast.endpoint, name).toBeGreaterThan(0);
      expect(fast.items).toBe(3);
    }
    expect(decodeFlatLine('{"v":1,"ts":1,"run":"r","shard":0,"type":"enqueue","id":"a","line":1}').fast.endpoint).toBe(
      0,
    );
  });
});

const endpointFacts = (over: Partial<EndpointFacts>): EndpointFacts => ({
  requests: 10,
  succeeded: 10,
  failed: 0,
  completionTokens: 0,
  promptTokens: 0,
  items: 10,
  latency: [100, 200],
  ttft: [],
  ...over,
});

function facts(byEndpoint: RunFacts['byEndpoint'], endMs = 60_000): RunFacts {
  return {
    runIds: ['r'],
    startMs: 0,
    endMs,
    idleMs: 0,
    requests: 20,
    succeeded: 20,
    failed: 0,
    attempts: 20,
    firstAttempts: 20,
    pausedAttempts: 0,
    staleResends: 0,
    keepaliveOffShards: 0,
    keepaliveDisabledShards: 0,
    shards: 1,
    limitFinal: 4,
    limitSettled: 4,
    attemptErrorStatuses: {},
    outages: 0,
    downMs: 0,
    retries: 0,
    retryCauses: {},
    failureCauses: {},
    attemptErrorCauses: {},
    maxRetryAfterMs: 0,
    completionTokens: 600,
    promptTokens: 0,
    estimatedTokens: 0,
    minutes: [],
    serverTtft: [],
    e2eTtft: [],
    e2eLatency: [],
    tpot: [],
    serverQueueMs: [],
    ttftLoadInFlight: [],
    ttftLoadMs: [],
    connectMs: [],
    connsOpened: 4,
    loopLag: [],
    loopBusy: [],
    hostBusy: [],
    cpuWait: [],
    socketReads: 0,
    socketReadShards: 0,
    holdGauges: 0,
    heldGauges: 0,
    readHoldMaxMs: 0,
    shardCpuMs: 0,
    buckets: { ...zeroBuckets(), server_ttft: 1000, decode: 1000 },
    limitMax: 4,
    maxInFlight: 4,
    inFlightIntegral: 0,
    backlogIntegral: 0,
    busyMs: 0,
    activeMs: 0,
    gapMs: 0,
    backloggedMs: 0,
    binMs: 1000,
    bins: [],
    limitSegments: [],
    badLines: 0,
    events: 100,
    byEndpoint,
    byUpstream: {},
    plainServerMs: [80, 90, 400],
    slowest: [],
    recentErrors: [],
  };
}

describe('the report’s split by endpoint', () => {
  const mixed = {
    chat: endpointFacts({ completionTokens: 600, ttft: [40, 50] }),
    embeddings: endpointFacts({ promptTokens: 1200, items: 160 }),
  };

  it('gives each endpoint its own throughput: completion tokens, or input tokens and inputs', () => {
    const r = buildReport(facts(mixed, 120_000));
    expect(r.by_endpoint.chat).toMatchObject({ requests: 10, tpm: 300, ttft_ms: { p50: 40 } });
    expect(r.by_endpoint.embeddings).toMatchObject({ input_tpm: 600, items: 160, ttft_ms: null });
    expect(r.by_endpoint.embeddings!.items_per_s).toBeCloseTo(160 / 120);
    expect(r.by_endpoint.embeddings!.latency_ms.p50).toBe(100);
    // No streamed answer at all: the plain answers' server time stands in for the TTFT floor.
    expect(r.detail.server_ttft_floor_ms).toBe(80);
  });

  it('is listed in the terminal report and compared row by row when a run is not chat alone', () => {
    const text = formatReport(buildReport(facts(mixed, 120_000)));
    expect(text).toMatch(/^chat {8}10 requests \(0 failed\); 300 completion tokens\/min/m);
    expect(text).toMatch(/^embeddings {2}10 requests \(0 failed\); 600 input tokens\/min, 1\.3 inputs\/s/m);
    const chatOnly = formatReport(buildReport(facts({ chat: mixed.chat })));
    expect(chatOnly).not.toMatch(/^chat {8}/m);
    const c = compareReports(buildReport(facts(mixed, 120_000)), buildReport(facts(mixed, 60_000)));
    expect(c.rows.find((r) => r.name === 'embeddings_input_tpm')).toMatchObject({ a: 600, b: 1200, improved: true });
    expect(c.rows.find((r) => r.name === 'chat_tpm')).toMatchObject({ a: 300, b: 600 });
    expect(c.rows.some((r) => r.name === 'chat_latency_p95_ms')).toBe(true);
  });
});
