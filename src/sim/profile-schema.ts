import { z } from 'zod';

const nonNeg = z.number().finite().nonnegative();
const prob = z.number().min(0).max(1);

/** Rate-limit budgets, enforced as token buckets that refill continuously (as OpenAI's do). */
export const rateLimitSchema = z
  .object({
    requests_per_min: nonNeg.default(0).describe('Request budget per minute; 0 = unlimited.'),
    tokens_per_min: nonNeg
      .default(0)
      .describe('Token budget per minute (prompt + max completion tokens); 0 = unlimited.'),
    burst_s: z
      .number()
      .positive()
      .max(60)
      .default(60)
      .describe(
        'Bucket size in seconds of budget: 60 lets a full minute through at once; 1 enforces the per-second rate, ' +
          'as large APIs quantize limits.',
      ),
    random_429_p: prob.default(0).describe('Probability that any request is answered 429 regardless of budget.'),
    retry_after_s: nonNeg.default(1).describe('Retry-After for random 429s and queue overflow, in seconds.'),
    headers: z
      .boolean()
      .default(false)
      .describe(
        "Send OpenAI's x-ratelimit-{limit,remaining,reset}-{requests,tokens} headers on every answer (a budget of 0 " +
          'sends none for it).',
      ),
  })
  .strict();

/** Server errors by probability, optionally only inside periodic bursts. */
export const errorFaultSchema = z
  .object({
    p_500: prob.default(0).describe('Probability of HTTP 500 per request.'),
    p_502: prob.default(0).describe('Probability of HTTP 502 per request.'),
    p_503: prob.default(0).describe('Probability of HTTP 503 per request.'),
    burst_every_s: nonNeg
      .default(0)
      .describe('If > 0, the 5xx probabilities apply only inside bursts starting every N s.'),
    burst_len_s: nonNeg.default(0).describe('Length of each burst in seconds.'),
  })
  .strict();

export const resetFaultSchema = z
  .object({
    p: prob.default(0).describe('Probability a response is cut by a connection reset.'),
    after_tokens: z.number().int().nonnegative().default(8).describe('Tokens sent before the reset.'),
  })
  .strict();

export const stallFaultSchema = z
  .object({
    p: prob.default(0).describe('Probability a response stalls (no bytes) mid-stream.'),
    after_tokens: z.number().int().nonnegative().default(8).describe('Tokens sent before the stall.'),
    stall_ms: nonNeg.default(5000).describe('How long the stream sends no tokens.'),
    keepalive_ms: nonNeg.default(0).describe('If > 0, send an SSE comment (`: keep-alive`) this often while stalled.'),
  })
  .strict();

export const slowHeadersFaultSchema = z
  .object({
    p: prob.default(0).describe('Probability the status line is delayed.'),
    delay_ms: nonNeg.default(1000).describe('Delay before the status line.'),
  })
  .strict();

/** The server goes away and comes back on the same port (a crash and restart; `startSim` only). */
export const outageSchema = z
  .object({
    at_s: nonNeg
      .default(0)
      .describe('Seconds after start when every connection is dropped and the port stops listening; 0 = never.'),
    down_s: nonNeg.default(5).describe('How long the port refuses connections.'),
    loading_s: nonNeg
      .default(0)
      .describe(
        'After it is back, how long every request is answered 503 "Loading model" (as llama-server does while ' +
          'it loads).',
      ),
  })
  .strict();

export const faultsSchema = z
  .object({
    rate_limit: rateLimitSchema.default(rateLimitSchema.parse({})),
    errors: errorFaultSchema.default(errorFaultSchema.parse({})),
    reset: resetFaultSchema.default(resetFaultSchema.parse({})),
    stall: stallFaultSchema.default(stallFaultSchema.parse({})),
    slow_headers: slowHeadersFaultSchema.default(slowHeadersFaultSchema.parse({})),
    keep_alive: z.boolean().default(true).describe('false sends `Connection: close` on every response.'),
    admission_cost_ms: nonNeg
      .default(0)
      .describe(
        'Time each arriving request (even one refused) takes from the decode loop: the API frontend shares the ' +
          "engine's CPU, so floods of retries slow generation.",
      ),
    connection_cost_ms: nonNeg
      .default(0)
      .describe('Time each new connection (TLS handshake) takes from the decode loop.'),
    new_connection_ms: nonNeg
      .default(0)
      .describe('Extra delay before the first request on a new connection is processed (TLS handshake, auth), ms.'),
    usage: z.boolean().default(true).describe('false omits `usage` from every response, as some servers do.'),
    timings: z
      .boolean()
      .default(false)
      .describe(
        "Add llama.cpp's `timings` (prompt_ms from admission to the first token, predicted_ms after it) to every " +
          "answer: the server's own account, which leaves out its queue.",
      ),
    close_after_stream: z
      .boolean()
      .default(false)
      .describe(
        'Close the connection `close_after_stream_ms` after each streamed answer while still advertising ' +
          "keep-alive, as llama.cpp's llama-server does: a client that reuses the socket meets a closed connection " +
          'before any response byte.',
      ),
    close_after_stream_ms: nonNeg
      .default(4)
      .describe('Delay of that close after the last chunk, ms (llama-server: 3–5).'),
    outage: outageSchema.default(outageSchema.parse({})),
  })
  .strict();

/**
 * A simulator profile: a capacity model (continuous batching) plus seeded fault injection.
 * Field names are snake_case because profiles are written by hand in YAML.
 */
export const simProfileSchema = z
  .object({
    name: z.string().min(1).default('custom'),
    description: z.string().default(''),
    model: z.string().min(1).default('sim-model').describe('Model id listed by /v1/models.'),
    slots: z.number().int().positive().default(32).describe('Concurrent sequences (batch size).'),
    queue_limit: z.number().int().nonnegative().default(1024).describe('Requests that may wait for a slot.'),
    overflow_status: z
      .union([z.literal(429), z.literal(503)])
      .default(429)
      .describe('Status when the queue is full.'),
    prefill_ms_base: nonNeg.default(20).describe('Fixed prefill cost per request, ms.'),
    prefill_tokens_per_s: z.number().positive().default(20000).describe('Prompt tokens processed per second.'),
    step_ms_base: nonNeg.default(8).describe('Fixed cost of one decode step, ms.'),
    step_ms_per_seq: nonNeg.default(0.25).describe('Added step cost per active sequence, ms.'),
    tokens_per_step: z
      .number()
      .int()
      .positive()
      .default(1)
      .describe('Tokens each sequence advances per step (one SSE delta each, written together).'),
    jitter: z.number().min(0).max(0.9).default(0).describe('Relative ± jitter on prefill and step times, seeded.'),
    default_max_tokens: z
      .number()
      .int()
      .positive()
      .default(256)
      .describe('Completion length when the request sets none.'),
    reference_prompt_tokens: z.number().int().nonnegative().default(64).describe('Prompt size used to state capacity.'),
    faults: faultsSchema.default(faultsSchema.parse({})),
  })
  .strict();

/** Profile as written (all fields optional). */
export type SimProfileInput = z.input<typeof simProfileSchema>;
/** Profile with every default resolved. */
export type SimProfile = z.output<typeof simProfileSchema>;

/** A profile file's shape: any profile fields, optionally on top of a built-in named by `base`. */
export type SimProfileFile = SimProfileInput & { base?: string };
