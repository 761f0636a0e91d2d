import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { BatchEngine, type Sequence } from './batch-engine.js';
import type { SimProfile } from './profile-schema.js';
import { createRng, type Rng } from '../util/rng.js';
import { SimMetrics, type FaultKind, type RejectionReason, type RequestTiming } from './sim-metrics.js';
import { SimResponse, type ResponseHost } from './sim-response.js';
import { IoTurnClock } from './io-turn-clock.js';
import { TokenBucket } from './token-bucket.js';
import { countPromptTokens } from './token-text.js';
import { sendError, sendJson } from './http-replies.js';
import { apiBodyProblem, generates, inputTokens, PlainResponse, SIM_API_PATHS, type SimApi } from './sim-apis.js';

/** Options of an in-process simulator. */
export interface SimCoreOptions {
  profile: SimProfile;
  /** Seed for every random decision (faults, jitter). @default 1 */
  seed?: number;
  /** Monotonic clock in ms. @default performance.now */
  now?: () => number;
}

/** Plain counters mirrored from /metrics, for in-process callers. */
export interface SimStats {
  requests: number;
  completionTokens: number;
  connections: number;
  byStatus: Record<string, number>;
  rejections: Record<RejectionReason, number>;
  faults: Record<FaultKind, number>;
  active: number;
  queued: number;
}

/** When a request reached the server (see RequestTiming). */
interface Arrival {
  arrivalMs: number;
  ioTurnMs: number;
  api: SimApi;
}

/** Id prefixes as OpenAI writes them, per endpoint. */
const ID_PREFIX: Record<SimApi, string> = {
  chat: 'chatcmpl',
  completions: 'cmpl',
  responses: 'resp',
  embeddings: 'emb',
  rerank: 'rerank',
  score: 'score',
};

const MAX_BODY_BYTES = 8 * 1024 * 1024;
const TIMING_CAP = 200_000;

/**
 * The simulator as a plain request handler (`handle(req, res)`), so tests can drive it in-process
 * and `startSim` only binds it to a port.
 */
export class SimCore implements ResponseHost {
  readonly profile: SimProfile;
  readonly metrics: SimMetrics;
  readonly engine: BatchEngine;
  readonly now: () => number;
  private readonly rng: Rng;
  private readonly startMs: number;
  private readonly requestBucket: TokenBucket;
  private readonly tokenBucket: TokenBucket;
  private nextId = 0;
  private readonly timings: RequestTiming[] = [];
  private timingCount = 0;
  private readonly counts: SimStats;
  private readonly turnClock: IoTurnClock;

  constructor(options: SimCoreOptions) {
    this.profile = options.profile;
    this.now = options.now ?? (() => performance.now());
    this.rng = createRng(options.seed ?? 1);
    // Jitter gets its own stream so fault draws stay aligned with request order whatever the timing.
    this.engine = new BatchEngine(this.profile, createRng((options.seed ?? 1) + 0x5bd1e995), this.now);
    this.startMs = this.now();
    this.turnClock = new IoTurnClock(this.now);
    const rl = this.profile.faults.rate_limit;
    this.requestBucket = new TokenBucket(rl.requests_per_min, this.startMs, rl.burst_s);
    this.tokenBucket = new TokenBucket(rl.tokens_per_min, this.startMs, rl.burst_s);
    this.counts = {
      requests: 0,
      completionTokens: 0,
      connections: 0,
      byStatus: {},
      rejections: { queue_full: 0, rate_limit_requests: 0, rate_limit_tokens: 0, random_429: 0 },
      faults: { http_500: 0, http_502: 0, http_503: 0, reset: 0, stall: 0, slow_headers: 0 },
      active: 0,
      queued: 0,
    };
    this.metrics = new SimMetrics(this.profile, {
      active: () => this.engine.active,
      queued: () => this.engine.queued,
      tokens: () => this.engine.tokensGenerated,
    });
  }

  /** Count a new TCP connection (wire to the server's `connection` event). */
  readonly onConnection = (socket: Socket): void => {
    this.counts.connections++;
    this.metrics.connections.inc();
    if (this.profile.faults.new_connection_ms > 0) this.freshSockets.add(socket);
    if (this.profile.faults.connection_cost_ms > 0) this.engine.steal(this.profile.faults.connection_cost_ms);
  };
  /** Sockets whose first request has not been served yet (for `new_connection_ms`). */
  private readonly freshSockets = new WeakSet<Socket>();
  /** Sockets this server is about to close (`close_after_stream`): a request on one is never read. */
  private readonly closingSockets = new WeakSet<Socket>();
  /** Until when (this.now()) every request is answered 503 "Loading model" (after an outage). */
  private loadingUntilMs = -1;

  /** @internal called by SimResponse after a streamed answer (`close_after_stream`). */
  closeSoon(socket: Socket): void {
    this.closingSockets.add(socket);
    setTimeout(() => socket.destroy(), this.profile.faults.close_after_stream_ms);
  }

  /** Answer 503 "Loading model" to every request for `ms` from now, as llama-server does while it loads. */
  setLoading(ms: number): void {
    this.loadingUntilMs = this.now() + ms;
  }

  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    // The server has already decided to close this connection: it never reads what came on it.
    if (this.closingSockets.has(req.socket)) return;
    if (this.loadingUntilMs >= 0 && this.now() < this.loadingUntilMs) {
      this.countStatus(503);
      return sendJson(res, 503, { error: { code: 503, message: 'Loading model', type: 'unavailable_error' } });
    }
    const q = req.url?.indexOf('?') ?? -1;
    const path = q >= 0 ? req.url!.slice(0, q) : (req.url ?? '/');
    // Arrival is when the request's head was parsed, so the body read counts as server time.
    const api = req.method === 'POST' ? SIM_API_PATHS[path] : undefined;
    if (api) {
      const arrival = this.now();
      return this.readBody(req, res, { arrivalMs: arrival, ioTurnMs: this.turnClock.read(arrival), api });
    }
    if (req.method === 'GET' && path === '/v1/models') {
      return sendJson(res, 200, {
        object: 'list',
        data: [{ id: this.profile.model, object: 'model', created: 0, owned_by: 'shardline-sim' }],
      });
    }
    if (req.method === 'GET' && path === '/health') return sendJson(res, 200, { status: 'ok' });
    // Simulator-only diagnostics: per-request server timings, so a benchmark can subtract the
    // server's own TTFT from what a client measured.
    if (req.method === 'GET' && path === '/sim/timings') {
      // epochOffsetMs turns these clock readings into epoch ms (when the clock is performance.now).
      return sendJson(res, 200, { timings: this.requestTimings(), epochOffsetMs: performance.timeOrigin });
    }
    if (req.method === 'GET' && path === '/metrics') {
      void this.metrics.registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
        res.end(text);
      });
      return;
    }
    this.countStatus(404);
    sendError(res, 404, 'invalid_request_error', 'unknown_url', `Unknown request URL: ${req.method} ${path}.`);
  };

  /** Snapshot of the counters. */
  stats(): SimStats {
    return {
      ...this.counts,
      byStatus: { ...this.counts.byStatus },
      rejections: { ...this.counts.rejections },
      faults: { ...this.counts.faults },
      completionTokens: this.engine.tokensGenerated,
      active: this.engine.active,
      queued: this.engine.queued,
    };
  }

  /** Per-request server timings of finished requests (the most recent 200,000). */
  requestTimings(): RequestTiming[] {
    return this.timings.slice();
  }

  close(): void {
    this.engine.close();
  }

  /** @internal called by SimResponse */
  recordTiming(t: RequestTiming): void {
    this.timings[this.timingCount++ % TIMING_CAP] = t;
  }
  /** @internal */
  countStatus(code: number | 'reset'): void {
    this.counts.requests++;
    this.counts.byStatus[code] = (this.counts.byStatus[code] ?? 0) + 1;
    this.metrics.requests.inc({ code: String(code) });
  }
  /** @internal */
  countFault(kind: FaultKind): void {
    this.counts.faults[kind]++;
    this.metrics.faults.inc({ fault: kind });
  }

  /**
   * OpenAI's rate-limit headers, when the profile asks for them: what is left of each budget and when it is full again.
   */
  private rateLimitHeaders(): Record<string, string> {
    const rl = this.profile.faults.rate_limit;
    if (!rl.headers) return {};
    const now = this.now();
    const h: Record<string, string> = {};
    for (const [kind, perMin, bucket] of [
      ['requests', rl.requests_per_min, this.requestBucket],
      ['tokens', rl.tokens_per_min, this.tokenBucket],
    ] as const) {
      if (perMin <= 0) continue;
      const { remaining, resetMs } = bucket.peek(now);
      h[`x-ratelimit-limit-${kind}`] = String(perMin);
      h[`x-ratelimit-remaining-${kind}`] = String(remaining);
      h[`x-ratelimit-reset-${kind}`] = formatResetDuration(resetMs);
    }
    return h;
  }

  private reject(res: ServerResponse, reason: RejectionReason, status: number, retryAfterMs: number): void {
    this.counts.rejections[reason]++;
    this.metrics.rejections.inc({ reason });
    this.countStatus(status);
    const headers = {
      'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))),
      'retry-after-ms': String(Math.ceil(retryAfterMs)),
      ...this.rateLimitHeaders(),
    };
    const type = status === 429 ? 'rate_limit_error' : 'server_error';
    sendError(
      res,
      status,
      type,
      reason,
      `Request refused (${reason}); retry after ${Math.ceil(retryAfterMs)} ms.`,
      headers,
      !this.profile.faults.keep_alive,
    );
  }

  private readBody(req: IncomingMessage, res: ServerResponse, at: Arrival): void {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY_BYTES) chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) {
        this.countStatus(413);
        return sendError(
          res,
          413,
          'invalid_request_error',
          'body_too_large',
          `Request body is ${size} bytes; the limit is ${MAX_BODY_BYTES}.`,
        );
      }
      this.onBody(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), res, at);
    });
  }

  private onBody(raw: Buffer, res: ServerResponse, at: Arrival): void {
    let body: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(raw.toString('utf8'));
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      body = parsed as Record<string, unknown>;
    } catch {
      this.countStatus(400);
      return sendError(
        res,
        400,
        'invalid_request_error',
        'invalid_json',
        'We could not parse the JSON body of your request: expected a JSON object.',
      );
    }
    const problem = at.api === 'chat' ? validateChatBody(body) : apiBodyProblem(at.api, body);
    if (problem) {
      this.countStatus(400);
      return sendError(res, 400, 'invalid_request_error', 'invalid_value', problem);
    }
    if (this.profile.faults.admission_cost_ms > 0) this.engine.steal(this.profile.faults.admission_cost_ms);
    // Always draw the same number of values per request, so fault sampling is stable across profiles.
    const rng = this.rng;
    const u = { slow: rng(), r429: rng(), r5xx: rng(), reset: rng(), stall: rng() };
    const f = this.profile.faults;
    // A new connection's first request pays the setup cost (a TLS handshake and auth, say) first.
    const socket = res.socket;
    if (socket && this.freshSockets.has(socket)) {
      this.freshSockets.delete(socket);
      setTimeout(() => {
        if (!res.destroyed) this.afterSetup(body, res, at, u);
      }, f.new_connection_ms);
      return;
    }
    this.afterSetup(body, res, at, u);
  }

  private afterSetup(
    body: Record<string, unknown>,
    res: ServerResponse,
    at: Arrival,
    u: Record<'slow' | 'r429' | 'r5xx' | 'reset' | 'stall', number>,
  ): void {
    const f = this.profile.faults;
    if (u.slow < f.slow_headers.p) {
      this.countFault('slow_headers');
      setTimeout(() => {
        if (!res.destroyed) this.admit(body, res, at, u);
      }, f.slow_headers.delay_ms);
      return;
    }
    this.admit(body, res, at, u);
  }

  private admit(
    body: Record<string, unknown>,
    res: ServerResponse,
    at: Arrival,
    u: Record<'r429' | 'r5xx' | 'reset' | 'stall', number>,
  ): void {
    const f = this.profile.faults;
    const now = this.now();
    const api = at.api;
    const promptTokens = api === 'chat' ? countPromptTokens(body.messages as unknown[]) : inputTokens(api, body);
    // Embeddings and scoring generate nothing: one step after their prefill.
    const maxTokens = !generates(api)
      ? 1
      : ((body.max_completion_tokens ??
          body.max_output_tokens ??
          body.max_tokens ??
          this.profile.default_max_tokens) as number);
    if (u.r429 < f.rate_limit.random_429_p)
      return this.reject(res, 'random_429', 429, f.rate_limit.retry_after_s * 1000);
    const byReq = this.requestBucket.take(1, now);
    if (!byReq.ok) return this.reject(res, 'rate_limit_requests', 429, byReq.retryAfterMs);
    const byTok = this.tokenBucket.take(promptTokens + (generates(api) ? maxTokens : 0), now);
    if (!byTok.ok) return this.reject(res, 'rate_limit_tokens', 429, byTok.retryAfterMs);
    const e = f.errors;
    const sinceS = (now - this.startMs) / 1000;
    const inBurst = e.burst_every_s <= 0 || sinceS % e.burst_every_s < e.burst_len_s;
    if (inBurst && u.r5xx < e.p_500 + e.p_502 + e.p_503) {
      const status = u.r5xx < e.p_500 ? 500 : u.r5xx < e.p_500 + e.p_502 ? 502 : 503;
      this.countFault(`http_${status}` as FaultKind);
      this.countStatus(status);
      return sendError(
        res,
        status,
        'server_error',
        `injected_${status}`,
        `Injected HTTP ${status}.`,
        {},
        !f.keep_alive,
      );
    }
    if (!this.engine.canAccept())
      return this.reject(res, 'queue_full', this.profile.overflow_status, f.rate_limit.retry_after_s * 1000);

    this.metrics.promptTokens.inc(promptTokens);
    const id = `${ID_PREFIX[api]}-sim${(this.nextId++).toString(36)}`;
    const model = typeof body.model === 'string' ? body.model : this.profile.model;
    const streamOpts = body.stream_options as { include_usage?: unknown } | undefined;
    const response = !generates(api)
      ? new PlainResponse(this, res, api, body, { id, model, promptTokens, headers: this.rateLimitHeaders() })
      : new SimResponse(this, res, {
          api,
          id,
          model,
          stream: body.stream === true,
          // The Responses API always ends its stream with usage; chat and completions when asked.
          includeUsage: (api === 'responses' || streamOpts?.include_usage === true) && f.usage,
          usage: f.usage,
          promptTokens,
          finishReason:
            body.max_completion_tokens !== undefined ||
            body.max_tokens !== undefined ||
            body.max_output_tokens !== undefined
              ? 'length'
              : 'stop',
          headers: this.rateLimitHeaders(),
        });
    const seq: Sequence = {
      promptTokens,
      maxTokens,
      sink: response,
      arrivalMs: at.arrivalMs,
      ioTurnMs: at.ioTurnMs,
      emitted: 0,
      resetAt: u.reset < f.reset.p && f.reset.after_tokens < maxTokens ? f.reset.after_tokens : -1,
      stallAt: u.stall < f.stall.p && f.stall.after_tokens < maxTokens ? f.stall.after_tokens : -1,
      stallMs: f.stall.stall_ms,
      stalledUntil: 0,
      cancelled: false,
      admittedMs: -1,
      firstTokenMs: -1,
    };
    response.start(seq);
    this.engine.submit(seq);
  }
}

/** A duration as OpenAI writes x-ratelimit-reset-*: `1s`, `6m0s`, `20ms`. */
export function formatResetDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = ms / 1000;
  if (s < 60) return `${Number(s.toFixed(3))}s`;
  return `${Math.floor(s / 60)}m${Number((s % 60).toFixed(3))}s`;
}

function validateChatBody(body: Record<string, unknown>): string | undefined {
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    return "Missing required parameter: 'messages' (a non-empty array).";
  }
  for (const key of ['max_tokens', 'max_completion_tokens'] as const) {
    const v = body[key];
    if (v !== undefined && v !== null && (typeof v !== 'number' || !Number.isInteger(v) || v < 1)) {
      return `Invalid '${key}': expected an integer >= 1, got ${JSON.stringify(v)}.`;
    }
    if (v === null) delete body[key];
  }
  if (body.stream !== undefined && typeof body.stream !== 'boolean') return "Invalid 'stream': expected a boolean.";
  return undefined;
}
