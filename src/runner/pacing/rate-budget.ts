import { estimateInputTokens, estimatePromptTokens } from '../../client/token-estimate.js';
import type { EndpointKind } from '../../client/endpoints.js';

/** What a provider's x-ratelimit-* headers said about one budget, when an answer arrived. */
export interface QuotaObservation {
  kind: 'requests' | 'tokens';
  /** x-ratelimit-limit-*: the budget per minute, when sent (OpenAI does; Azure may not). */
  limit: number | undefined;
  /** x-ratelimit-remaining-*. */
  remaining: number;
  /** x-ratelimit-reset-*: ms until the budget is full again, when sent. */
  resetMs: number | undefined;
  /** When the answer's headers arrived (event clock, ms). */
  ts: number;
}

/** What the coordinator paces enqueues with: a run's own budget (RateBudget) or one shared by workers. */
export interface Budget {
  /** Whether any budget is in force (nothing waits otherwise). */
  readonly active: boolean;
  /** Whether requests must be costed in tokens (a token budget is set). */
  readonly countsTokens: boolean;
  /** Charge a request of `tokens` and return 0 when there is room now; else charge nothing, return ms to wait. */
  tryTake(tokens: number, nowMs: number): number;
  /** Correct a charge once the answer's usage is known (positive `deltaTokens` charges more). */
  adjust(deltaTokens: number): void;
  /** A provider's rate-limit headers. */
  observe(q: QuotaObservation): void;
}

export interface RateBudgetOptions {
  /** Requests per minute for the whole run; undefined = no request budget. */
  rpm?: number | undefined;
  /** Tokens per minute (prompt + max_tokens) for the whole run; undefined = no token budget. */
  tpm?: number | undefined;
}

interface Bucket {
  /** Budget units per ms. */
  perMs: number;
  /** May go negative: a request larger than the bucket is let through and paid off before the next. */
  level: number;
  capacity: number;
  lastMs: number;
}

interface ServerView {
  remaining: number;
  at: number;
  perMs: number | undefined;
  resetMs: number | undefined;
  /** Charged here since `at`: requests the server had not counted when it answered. */
  chargedSince: number;
}

/** Waits longer than this are re-checked, so a fresher header can shorten them. */
const MAX_WAIT_MS = 1000;

/**
 * A run's provider budgets (`--rpm`, `--tpm`), shared by every shard because the coordinator
 * enqueues each request only once the budget has room for it. Each budget is a token bucket that
 * refills continuously at its per-minute rate and holds at most one second of it, so requests go out evenly
 * rather than in a burst the provider's own bucket might refuse. Once a budget is set, the
 * provider's x-ratelimit-remaining-* headers count too: the budget is what both allow, so a quota
 * shared with other clients (or smaller than the flag says) is still respected.
 */
export class RateBudget implements Budget {
  private readonly own: Partial<Record<'requests' | 'tokens', Bucket>> = {};
  private readonly server: Partial<Record<'requests' | 'tokens', ServerView>> = {};

  constructor(options: RateBudgetOptions, nowMs: number) {
    if (options.rpm !== undefined) this.own.requests = bucket(options.rpm, nowMs);
    if (options.tpm !== undefined) this.own.tokens = bucket(options.tpm, nowMs);
  }

  /** Whether any budget is in force (nothing waits otherwise). */
  get active(): boolean {
    return this.own.requests !== undefined || this.own.tokens !== undefined;
  }

  /** Whether requests must be costed in tokens (a token budget is set). */
  get countsTokens(): boolean {
    return this.own.tokens !== undefined;
  }

  /**
   * Charge a request costing `tokens` if every budget has room now and return 0; otherwise charge
   * nothing and return the ms to wait before asking again.
   */
  tryTake(tokens: number, nowMs: number): number {
    if (!this.active) return 0;
    let wait = 0;
    for (const [kind, cost] of [
      ['requests', 1],
      ['tokens', tokens],
    ] as const) {
      const b = this.own[kind];
      if (b) {
        refill(b, nowMs);
        if (b.level <= 0) wait = Math.max(wait, (-b.level + 1e-6) / b.perMs);
      }
      const s = this.server[kind];
      if (s) {
        const avail = serverAvailable(s, nowMs);
        if (avail < cost)
          wait = Math.max(wait, s.perMs ? (cost - avail) / s.perMs : (s.resetMs ?? MAX_WAIT_MS) - (nowMs - s.at));
      }
    }
    if (wait > 0) return Math.min(MAX_WAIT_MS, Math.max(1, wait));
    this.charge('requests', 1);
    this.charge('tokens', tokens);
    return 0;
  }

  /** Correct a charge once the answer's usage is known (positive `deltaTokens` charges more). */
  adjust(deltaTokens: number): void {
    if (deltaTokens !== 0) this.charge('tokens', deltaTokens);
  }

  /** A provider's rate-limit headers: the newest observation of each budget replaces the older. */
  observe(q: QuotaObservation): void {
    if (!this.active) return;
    const s = this.server[q.kind];
    if (s && s.at > q.ts) return;
    this.server[q.kind] = {
      remaining: q.remaining,
      at: q.ts,
      perMs: q.limit !== undefined && q.limit > 0 ? q.limit / 60_000 : undefined,
      resetMs: q.resetMs,
      chargedSince: 0,
    };
  }

  private charge(kind: 'requests' | 'tokens', amount: number): void {
    const b = this.own[kind];
    if (b) b.level = Math.min(b.capacity, b.level - amount);
    const s = this.server[kind];
    if (s) s.chargedSince += amount;
  }
}

/**
 * Starts empty: the first second is paced like the rest. Against a provider whose bucket starts
 * full, that second of slack absorbs the drift between this run's token estimates and the
 * provider's own count until usage corrects them (with a full start, the quota profile refused
 * 1.3% of attempts a second in; empty, none).
 */
function bucket(perMin: number, nowMs: number): Bucket {
  const capacity = perMin / 60;
  return { perMs: perMin / 60_000, level: 0, capacity, lastMs: nowMs };
}

function refill(b: Bucket, nowMs: number): void {
  b.level = Math.min(b.capacity, b.level + (nowMs - b.lastMs) * b.perMs);
  b.lastMs = nowMs;
}

/** What the provider would have left now: its last count, refilled at its rate, less what was sent since. */
function serverAvailable(s: ServerView, nowMs: number): number {
  const refilled =
    s.perMs !== undefined
      ? (nowMs - s.at) * s.perMs
      : s.resetMs !== undefined && nowMs - s.at >= s.resetMs
        ? Infinity
        : 0;
  return s.remaining + refilled - s.chargedSince;
}

/**
 * A duration as OpenAI writes x-ratelimit-reset-* (`1s`, `6m0s`, `20ms`, `1h2m3.5s`) or a plain
 * number of seconds; undefined when it is neither.
 */
export function parseResetDuration(text: string): number | undefined {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/gy;
  let ms = 0;
  let end = 0;
  for (let m = re.exec(t); m; m = re.exec(t)) {
    const v = Number(m[1]);
    ms += m[2] === 'ms' ? v : m[2] === 's' ? v * 1000 : m[2] === 'm' ? v * 60_000 : v * 3_600_000;
    end = re.lastIndex;
  }
  return end > 0 && end === t.length ? ms : undefined;
}

/** The rate-limit state an answer's headers carry (none when the provider sends no x-ratelimit-remaining-*). */
export function quotaFromHeaders(
  headers: Record<string, string | string[] | undefined>,
  ts: number,
): QuotaObservation[] {
  const out: QuotaObservation[] = [];
  for (const kind of ['requests', 'tokens'] as const) {
    const remaining = Number(first(headers[`x-ratelimit-remaining-${kind}`]));
    if (!Number.isFinite(remaining) || first(headers[`x-ratelimit-remaining-${kind}`]) === undefined) continue;
    const limit = Number(first(headers[`x-ratelimit-limit-${kind}`]));
    const reset = first(headers[`x-ratelimit-reset-${kind}`]);
    out.push({
      kind,
      limit: Number.isFinite(limit) && limit > 0 ? limit : undefined,
      remaining,
      resetMs: reset === undefined ? undefined : parseResetDuration(reset),
      ts,
    });
  }
  return out;
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** What a request costs a token budget before it runs: its prompt (o200k) and its max_tokens, if set. */
export async function tokenCharge(
  bodyJson: string,
  endpoint: EndpointKind = 'chat',
): Promise<{ promptTokens: number; maxTokens: number | undefined }> {
  // Embeddings and other endpoints produce no tokens: their charge is their input alone.
  if (endpoint === 'embeddings' || endpoint === 'other')
    return { promptTokens: await estimateInputTokens(bodyJson), maxTokens: 0 };
  const body = JSON.parse(bodyJson) as {
    max_tokens?: unknown;
    max_completion_tokens?: unknown;
    max_output_tokens?: unknown;
    n?: unknown;
  };
  const max = body.max_completion_tokens ?? body.max_tokens ?? body.max_output_tokens;
  const n = typeof body.n === 'number' && body.n > 1 ? body.n : 1;
  return {
    promptTokens: endpoint === 'chat' ? await estimatePromptTokens(bodyJson) : await estimateInputTokens(bodyJson),
    maxTokens: typeof max === 'number' ? max * n : undefined,
  };
}
