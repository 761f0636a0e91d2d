import type { ShardlineEvent } from '../events/event-types.js';
import type { MinuteBucket } from '../metrics/tpm.js';
import type { Bucket } from './report-types.js';

/** Per-request state while its events stream by; dropped at request_end. */
interface RequestState {
  firstEnqueue: number;
  waitStart: number;
  waitFree: number;
  attemptStart: number;
  attemptConnect: number;
  firstToken: number;
  postStart: number;
  b: Record<Bucket, number>;
  serverTtft: number;
  e2eTtft: number;
  tpot: number;
  /** First and last token of the successful attempt, to spread its tokens over the timeline. */
  decodeStart: number;
  decodeEnd: number;
}

/** Everything the report needs, gathered in one pass; arrays only where exact percentiles need them. */
export interface RunFacts {
  runIds: string[];
  startMs: number;
  endMs: number;
  requests: number;
  succeeded: number;
  failed: number;
  attempts: number;
  retries: number;
  retryCauses: Record<string, number>;
  failureCauses: Record<string, number>;
  attemptErrorCauses: Record<string, number>;
  completionTokens: number;
  promptTokens: number;
  estimatedTokens: number;
  minutes: MinuteBucket[];
  serverTtft: number[];
  e2eTtft: number[];
  e2eLatency: number[];
  tpot: number[];
  /** [in-flight at attempt start, server TTFT] for successful attempts. */
  ttftLoad: [number, number][];
  connectMs: number[];
  connsOpened: number;
  loopLag: number[];
  /** Shard CPU in ms: from shard_end where a shard ended cleanly, else the sum of its gauges. */
  shardCpuMs: number;
  buckets: Record<Bucket, number>;
  limitMax: number;
  maxInFlight: number;
  inFlightIntegral: number;
  backlogIntegral: number;
  busyMs: number;
  activeMs: number;
  gapMs: number;
  binMs: number;
  bins: Bin[];
  badLines: number;
  events: number;
  /** The 10 slowest finished requests by e2e latency. */
  slowest: { id: string; e2e_ms: number; attempts: number; outcome: string }[];
  /** The last 10 failed attempts with their messages. */
  recentErrors: { id: string; attempt: number; cause: string; status: number | null; error: string }[];
}

/** One timeline bin: state sampled at its start, counts within it. */
export interface Bin {
  t: number;
  backlog: number;
  inFlight: number;
  limit: number;
  tokens: number;
  retries: number;
  conns: number;
  ttft: number[];
  retryCauses: Record<string, number>;
}

const zeroBuckets = (): Record<Bucket, number> => ({
  queue_wait: 0,
  admission_gap: 0,
  connect: 0,
  retry_backoff: 0,
  failed_attempts: 0,
  server_ttft: 0,
  decode: 0,
  postprocess: 0,
});

/**
 * Consumes events in timestamp order and keeps: global in-flight, backlog and slot count (from
 * attempt_start/attempt_end, enqueue/attempt_start, shard_start/shard_end/shard_exit), the running
 * integral of "a slot was free" time — so a request's wait splits in O(1) into queue_wait (all
 * slots busy) and admission_gap (a slot was free) — and per-request state until request_end.
 */
export class RunAccumulator {
  private readonly f: RunFacts;
  private readonly open = new Map<string, RequestState>();
  private readonly done = new Set<string>();
  private readonly limitByShard = new Map<number, number>();
  private readonly openByShard = new Map<number, number>();
  private readonly shardOfPid = new Map<number, number>();
  private readonly runIds = new Set<string>();
  private readonly gaugedShards = new Set<number>();
  private readonly gaugeCpu = new Map<number, number>();
  private limit = 0;
  private inFlight = 0;
  private backlog = 0;
  private freeMs = 0;
  private lastTs = NaN;
  private firstTs = NaN;
  private runStart = NaN;
  private runEnd = NaN;
  private bin: Bin | undefined;

  constructor(binMs = 1000) {
    this.f = {
      runIds: [],
      startMs: 0,
      endMs: 0,
      requests: 0,
      succeeded: 0,
      failed: 0,
      attempts: 0,
      retries: 0,
      retryCauses: {},
      failureCauses: {},
      attemptErrorCauses: {},
      completionTokens: 0,
      promptTokens: 0,
      estimatedTokens: 0,
      minutes: [],
      serverTtft: [],
      e2eTtft: [],
      e2eLatency: [],
      tpot: [],
      ttftLoad: [],
      connectMs: [],
      connsOpened: 0,
      loopLag: [],
      shardCpuMs: 0,
      buckets: zeroBuckets(),
      limitMax: 0,
      maxInFlight: 0,
      inFlightIntegral: 0,
      backlogIntegral: 0,
      busyMs: 0,
      activeMs: 0,
      gapMs: 0,
      binMs,
      bins: [],
      badLines: 0,
      events: 0,
      slowest: [],
      recentErrors: [],
    };
  }

  private readonly minuteMap = new Map<number, MinuteBucket>();

  add(e: ShardlineEvent): void {
    const ts = e.ts;
    this.f.events++;
    if (Number.isNaN(this.firstTs)) {
      this.firstTs = ts;
      this.lastTs = ts;
    }
    this.advance(ts);
    switch (e.type) {
      case 'run_start':
        this.gaugedShards.delete(-1);
        this.runIds.add(e.run);
        if (Number.isNaN(this.runStart)) this.runStart = ts;
        break;
      case 'run_end':
        this.runEnd = ts;
        break;
      case 'shard_start':
        this.gaugedShards.delete(e.shard);
        // A replacement starts a new process: bank what its predecessor's gauges showed.
        this.f.shardCpuMs += this.gaugeCpu.get(e.shard) ?? 0;
        this.gaugeCpu.delete(e.shard);
        this.shardOfPid.set(e.pid, e.shard);
        this.setLimit(e.shard, e.concurrency);
        break;
      case 'shard_end':
        this.setLimit(e.shard, 0);
        // The process's whole CPU, start-up included, replaces what its gauges summed.
        if (e.cpu_user_ms !== undefined) {
          this.f.shardCpuMs += e.cpu_user_ms + (e.cpu_system_ms ?? 0);
          this.gaugeCpu.delete(e.shard);
        }
        break;
      case 'shard_exit': {
        const shard = this.shardOfPid.get(e.pid);
        if (shard !== undefined) {
          this.setLimit(shard, 0);
          // Its open attempts never end: stop counting them as in flight.
          this.inFlight = Math.max(0, this.inFlight - (this.openByShard.get(shard) ?? 0));
          this.openByShard.set(shard, 0);
        }
        break;
      }
      case 'enqueue': {
        const st = this.state(e.id, ts);
        st.waitStart = ts;
        st.waitFree = this.freeMs;
        this.backlog++;
        break;
      }
      case 'attempt_start': {
        const st = this.state(e.id, ts);
        if (st.waitStart >= 0) {
          const gap = this.freeMs - st.waitFree;
          st.b.admission_gap += gap;
          st.b.queue_wait += ts - st.waitStart - gap;
          st.waitStart = -1;
          this.backlog = Math.max(0, this.backlog - 1);
        }
        st.attemptStart = ts;
        st.attemptConnect = 0;
        st.firstToken = -1;
        this.inFlight++;
        if (this.inFlight > this.f.maxInFlight) this.f.maxInFlight = this.inFlight;
        this.openByShard.set(e.shard, (this.openByShard.get(e.shard) ?? 0) + 1);
        this.f.attempts++;
        break;
      }
      case 'conn_open': {
        this.f.connsOpened++;
        this.f.connectMs.push(e.connect_ms);
        if (this.bin) this.bin.conns++;
        const st = e.id === undefined ? undefined : this.open.get(e.id);
        if (st) {
          st.attemptConnect += e.connect_ms;
          st.b.connect += e.connect_ms;
        }
        break;
      }
      case 'first_token': {
        const st = this.open.get(e.id);
        if (st) st.firstToken = ts;
        break;
      }
      case 'attempt_end': {
        this.inFlight = Math.max(0, this.inFlight - 1);
        this.openByShard.set(e.shard, Math.max(0, (this.openByShard.get(e.shard) ?? 0) - 1));
        const st = this.open.get(e.id);
        if (e.outcome === 'error') {
          const c = e.cause ?? 'unknown';
          this.f.attemptErrorCauses[c] = (this.f.attemptErrorCauses[c] ?? 0) + 1;
          this.f.recentErrors.push({ id: e.id, attempt: e.attempt, cause: c, status: e.status ?? null, error: e.error ?? '' });
          if (this.f.recentErrors.length > 10) this.f.recentErrors.shift();
          if (st && st.attemptStart >= 0) st.b.failed_attempts += ts - st.attemptStart - st.attemptConnect;
        } else if (st && st.attemptStart >= 0) {
          const first = st.firstToken >= 0 ? st.firstToken : ts;
          st.serverTtft = first - st.attemptStart - st.attemptConnect;
          st.b.server_ttft += st.serverTtft;
          st.b.decode += ts - first;
          st.e2eTtft = first - st.firstEnqueue;
          const n = e.completion_tokens ?? 0;
          const last = e.last_token_ts ?? ts;
          st.tpot = n > 1 ? (last - first) / (n - 1) : -1;
          st.decodeStart = first;
          st.decodeEnd = last;
          this.f.ttftLoad.push([this.inFlight + 1, st.serverTtft]);
        }
        if (st) st.attemptStart = -1;
        break;
      }
      case 'backoff': {
        this.f.retries++;
        this.f.retryCauses[e.cause] = (this.f.retryCauses[e.cause] ?? 0) + 1;
        if (this.bin) {
          this.bin.retries++;
          this.bin.retryCauses[e.cause] = (this.bin.retryCauses[e.cause] ?? 0) + 1;
        }
        const st = this.open.get(e.id);
        if (st) st.b.retry_backoff += e.delay_ms;
        break;
      }
      case 'postprocess_start': {
        const st = this.open.get(e.id);
        if (st) st.postStart = ts;
        break;
      }
      case 'postprocess_end': {
        const st = this.open.get(e.id);
        if (st && st.postStart >= 0) st.b.postprocess += ts - st.postStart;
        break;
      }
      case 'request_end':
        this.requestEnd(e, ts);
        break;
      case 'gauge':
        // Coordinator and shard loops alike: any lagging client loop delays requests. A process's
        // first gauge covers its start-up (module loading, forking shards) and is left out, or it
        // would dominate the p99 of a short run.
        if (this.gaugedShards.has(e.shard)) this.f.loopLag.push(e.loop_lag_ms);
        else this.gaugedShards.add(e.shard);
        if (e.shard >= 0 && e.cpu_ms !== undefined) this.gaugeCpu.set(e.shard, (this.gaugeCpu.get(e.shard) ?? 0) + e.cpu_ms);
        break;
      default:
        break;
    }
  }

  finish(badLines = 0): RunFacts {
    const f = this.f;
    f.runIds = [...this.runIds];
    f.startMs = Number.isNaN(this.runStart) ? this.firstTs : Math.min(this.runStart, this.firstTs);
    f.endMs = Number.isNaN(this.runEnd) ? this.lastTs : Math.max(this.runEnd, this.lastTs);
    if (Number.isNaN(f.startMs)) f.startMs = f.endMs = 0;
    f.minutes = [...this.minuteMap.values()];
    for (const ms of this.gaugeCpu.values()) f.shardCpuMs += ms;
    this.gaugeCpu.clear();
    f.badLines = badLines;
    return f;
  }

  private requestEnd(e: ShardlineEvent<'request_end'>, ts: number): void {
    const st = this.open.get(e.id);
    this.open.delete(e.id);
    if (e.outcome === 'succeeded') {
      // TPM counts every succeeded request_end (work the server really did), as documented.
      const minute = Math.floor(ts / 60_000);
      let m = this.minuteMap.get(minute);
      if (!m) this.minuteMap.set(minute, (m = { minute, tokens: 0, perShard: new Map() }));
      m.tokens += e.completion_tokens;
      m.perShard.set(e.shard, (m.perShard.get(e.shard) ?? 0) + e.completion_tokens);
      this.spreadTokens(st, e.completion_tokens, ts);
    }
    if (this.done.has(e.id)) return;
    this.done.add(e.id);
    const f = this.f;
    f.requests++;
    if (st) this.trackSlowest(e.id, ts - st.firstEnqueue, e.attempts, e.outcome);
    if (st) for (const k in st.b) f.buckets[k as Bucket] += st.b[k as Bucket];
    if (e.outcome === 'succeeded') {
      f.succeeded++;
      f.completionTokens += e.completion_tokens;
      f.promptTokens += e.prompt_tokens;
      if (e.tokens_estimated) f.estimatedTokens += e.completion_tokens;
      if (st && st.serverTtft >= 0) {
        f.serverTtft.push(st.serverTtft);
        f.e2eTtft.push(st.e2eTtft);
        f.e2eLatency.push(ts - st.firstEnqueue);
        if (st.tpot >= 0) f.tpot.push(st.tpot);
        this.bin?.ttft.push(st.serverTtft);
      }
    } else {
      f.failed++;
      const c = e.cause ?? 'unknown';
      f.failureCauses[c] = (f.failureCauses[c] ?? 0) + 1;
    }
  }

  /**
   * Per-second token chart: a request's tokens are spread evenly over its decode (first → last
   * token), as they were generated, rather than all landing in the second it ended. (TPM per
   * minute keeps its exact definition: counted at request_end.)
   */
  private spreadTokens(st: RequestState | undefined, tokens: number, endTs: number): void {
    const bins = this.f.bins;
    if (bins.length === 0 || tokens <= 0) return;
    const t0 = bins[0]!.t;
    const binMs = this.f.binMs;
    const from = st && st.decodeStart >= 0 ? st.decodeStart : endTs;
    const to = st && st.decodeEnd >= from ? st.decodeEnd : from;
    const i0 = Math.max(0, Math.min(bins.length - 1, Math.floor((from - t0) / binMs)));
    const i1 = Math.max(i0, Math.min(bins.length - 1, Math.floor((to - t0) / binMs)));
    if (i0 === i1) {
      bins[i0]!.tokens += tokens;
      return;
    }
    const span = to - from;
    for (let i = i0; i <= i1; i++) {
      const lo = Math.max(from, t0 + i * binMs);
      const hi = Math.min(to, t0 + (i + 1) * binMs);
      bins[i]!.tokens += (tokens * Math.max(0, hi - lo)) / span;
    }
  }

  private trackSlowest(id: string, e2eMs: number, attempts: number, outcome: string): void {
    const s = this.f.slowest;
    if (s.length === 10 && e2eMs <= s[9]!.e2e_ms) return;
    s.push({ id, e2e_ms: Math.round(e2eMs * 1000) / 1000, attempts, outcome });
    s.sort((a, b) => b.e2e_ms - a.e2e_ms);
    if (s.length > 10) s.pop();
  }

  private state(id: string, ts: number): RequestState {
    let st = this.open.get(id);
    if (!st) {
      st = {
        firstEnqueue: ts,
        waitStart: -1,
        waitFree: 0,
        attemptStart: -1,
        attemptConnect: 0,
        firstToken: -1,
        postStart: -1,
        b: zeroBuckets(),
        serverTtft: -1,
        e2eTtft: -1,
        tpot: -1,
        decodeStart: -1,
        decodeEnd: -1,
      };
      this.open.set(id, st);
    }
    return st;
  }

  private setLimit(shard: number, concurrency: number): void {
    this.limit += concurrency - (this.limitByShard.get(shard) ?? 0);
    this.limitByShard.set(shard, concurrency);
    if (this.limit > this.f.limitMax) this.f.limitMax = this.limit;
  }

  /** Integrate state over [lastTs, ts) and roll timeline bins forward. */
  private advance(ts: number): void {
    const dt = ts - this.lastTs;
    if (dt > 0) {
      const f = this.f;
      if (this.limit > 0) {
        f.activeMs += dt;
        f.inFlightIntegral += this.inFlight * dt;
        f.backlogIntegral += this.backlog * dt;
        if (this.inFlight >= this.limit) f.busyMs += dt;
        else {
          this.freeMs += dt;
          if (this.backlog > 0) f.gapMs += dt;
        }
      }
      this.lastTs = ts;
    }
    const binStart = Math.floor(ts / this.f.binMs) * this.f.binMs;
    if (!this.bin || this.bin.t < binStart) {
      // Bins with no events repeat the state they started with.
      let t = this.bin ? this.bin.t + this.f.binMs : binStart;
      for (; t <= binStart; t += this.f.binMs) {
        this.bin = { t, backlog: this.backlog, inFlight: this.inFlight, limit: this.limit, tokens: 0, retries: 0, conns: 0, ttft: [], retryCauses: {} };
        this.f.bins.push(this.bin);
      }
    }
  }
}
