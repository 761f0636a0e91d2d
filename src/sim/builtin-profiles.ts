import { simProfileSchema, type SimProfile, type SimProfileInput } from './profile-schema.js';

const realistic: SimProfileInput = {
  name: 'realistic',
  description: 'A mid-size GPU server: 64 slots, ~2,800 tokens/s at full batch.',
  slots: 64,
  queue_limit: 512,
  prefill_ms_base: 25,
  prefill_tokens_per_s: 25_000,
  step_ms_base: 10,
  step_ms_per_seq: 0.2,
  jitter: 0.1,
};

const inputs: SimProfileInput[] = [
  {
    name: 'fast',
    description: 'Near-zero latency, huge capacity: whatever is slow is the client.',
    slots: 4096,
    queue_limit: 100_000,
    prefill_ms_base: 0,
    prefill_tokens_per_s: 1e12,
    step_ms_base: 0,
    step_ms_per_seq: 0.0005,
    tokens_per_step: 16,
  },
  realistic,
  {
    name: 'saturated',
    description: 'Few slots and a long server queue: the model is the bottleneck.',
    slots: 8,
    queue_limit: 4096,
    prefill_ms_base: 40,
    prefill_tokens_per_s: 10_000,
    step_ms_base: 12,
    step_ms_per_seq: 0.5,
    jitter: 0.1,
  },
  {
    ...realistic,
    name: 'flaky',
    description: 'Realistic capacity with 5xx (8%), resets mid-stream (3%) and 3 s stalls (2%).',
    faults: {
      errors: { p_500: 0.03, p_502: 0.02, p_503: 0.03 },
      reset: { p: 0.03, after_tokens: 16 },
      stall: { p: 0.02, after_tokens: 8, stall_ms: 3000 },
    },
  },
  {
    ...realistic,
    name: 'rate-limited',
    description:
      'Realistic capacity behind 3,000 req/min and 120k tokens/min enforced per second, plus 2% random 429s.',
    faults: {
      rate_limit: { requests_per_min: 3000, tokens_per_min: 120_000, burst_s: 1, random_429_p: 0.02, retry_after_s: 1 },
    },
  },
  {
    ...realistic,
    name: 'churn',
    description:
      'Realistic capacity, but every response closes its connection and 10% of status lines are 200 ms late.',
    faults: { keep_alive: false, slow_headers: { p: 0.1, delay_ms: 200 } },
  },
  {
    name: 'quota',
    description:
      "A hosted API's quota and a capacity knee: 24 slots (TTFT climbs past 24 in flight), 1,500 requests and " +
      "60,000 tokens a minute, 429s with Retry-After and x-ratelimit-* headers, like OpenAI's.",
    slots: 24,
    queue_limit: 4096,
    prefill_ms_base: 20,
    prefill_tokens_per_s: 25_000,
    step_ms_base: 8,
    step_ms_per_seq: 0.25,
    jitter: 0.1,
    default_max_tokens: 64,
    faults: { rate_limit: { requests_per_min: 1500, tokens_per_min: 60_000, burst_s: 10, headers: true } },
  },
  {
    name: 'incident',
    description:
      'The classic incident: 48 slots, a short queue answered 429 when full, 2% 5xx, costly new connections, a ' +
      'frontend that steals decode time.',
    slots: 48,
    queue_limit: 16,
    overflow_status: 429,
    prefill_ms_base: 25,
    prefill_tokens_per_s: 25_000,
    step_ms_base: 10,
    step_ms_per_seq: 0.2,
    jitter: 0.1,
    default_max_tokens: 128,
    faults: {
      errors: { p_500: 0.01, p_503: 0.01 },
      new_connection_ms: 150,
      admission_cost_ms: 0.3,
      connection_cost_ms: 0.5,
      rate_limit: { retry_after_s: 1 },
    },
  },
];

/** The named profiles `--profile` accepts, resolved, in listing order. */
export const builtinProfiles: ReadonlyMap<string, SimProfile> = new Map(
  inputs.map((p) => {
    const resolved = simProfileSchema.parse(p);
    return [resolved.name, resolved] as const;
  }),
);
