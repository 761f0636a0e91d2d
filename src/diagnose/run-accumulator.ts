import { streams } from '../client/endpoints.js';
import { ENDPOINT_CODES, O, T, type EventRecord } from '../events/flat-event.js';
import type { MinuteBucket } from '../metrics/tpm.js';
import { LimitTimeline } from './limit-timeline.js';
import { NotableRequests } from './notable-requests.js';
import { BUCKETS } from './report-types.js';
import {
  ATTEMPT_CONNECT,
  ATTEMPT_START,
  B,
  BUCKET0,
  DECODE_END,
  DECODE_START,
  ENDPOINT,
  E2E_TTFT,
  FIRST_ENQUEUE,
  FIRST_TOKEN,
  PAUSE_START,
  POST_START,
  RequestTable,
  SERVER_TTFT,
  TPOT,
  WAIT_DOWN,
  WAIT_FREE,
  WAIT_START,
} from './request-table.js';
import { zeroBuckets, type Bin, type RunFacts, type ShareFacts, type UpstreamFacts } from './run-facts.js';

/** Endpoint codes (flat-event's) whose answers have no first token: embeddings and `other`. */
const PLAIN: readonly boolean[] = [false, ...ENDPOINT_CODES.map((n) => !streams(n))];

/** How a request id has ended so far (see RunAccumulator.done). */
const DONE_OK = 1;
const DONE_FAILED = 2;

/**
 * Consumes events in timestamp order and keeps: global in-flight, backlog and slot count (from
 * attempt_start/attempt_end, enqueue/attempt_start, shard_start/shard_end/shard_exit), the running
 * integral of "a slot was free" time — so a request's wait splits in O(1) into queue_wait (all
 * slots busy) and admission_gap (a slot was free) — and per-request state until request_end.
 */
export class RunAccumulator {
  private readonly f: RunFacts;
  /** Open requests' state by interned id; dropped at request_end. */
  private readonly reqs = new RequestTable();
  /**
   * How each interned id's requests ended so far: 0 not yet, DONE_OK, DONE_FAILED. A request counts
   * once, by its last request_end, as its result line does: a re-run (after a crash lost its result
   * line, or by --retry-failed) replaces the earlier outcome and tokens.
   */
  private done = new Uint8Array(1024);
  /** The counted request_end's tokens per interned id, to take back if the request ends again. */
  private endCompletion = new Float64Array(1024);
  private endPrompt = new Float64Array(1024);
  private endEstimated = new Uint8Array(1024);
  /** The cause counted for each failed id, to take back if the request runs again. */
  private readonly failedCause = new Map<number, string>();
  /** Sums of the BUCKETS over finished requests (a record is built at finish). */
  private readonly bucketSums = new Float64Array(BUCKETS.length);
  private readonly notable = new NotableRequests();
  private readonly limitByShard = new Map<number, number>();
  private readonly finalLimitByShard = new Map<number, number>();
  private readonly openByShard = new Map<number, number>();
  private readonly shardOfPid = new Map<number, number>();
  private readonly runIds = new Set<string>();
  private readonly gaugedShards = new Set<number>();
  private readonly gaugeCpu = new Map<number, number>();
  private limit = 0;
  private inFlight = 0;
  private backlog = 0;
  /** Running integral of the free share of capacity, in ms (see advance). */
  private freeMs = 0;
  /** Running integral of time the endpoint was down, in ms. */
  private downIntegralMs = 0;
  private lastTs = NaN;
  private readonly limits = new LimitTimeline();
  private firstTs = NaN;
  private runStart = NaN;
  private runEnd = NaN;
  private bin: Bin | undefined;
  /** Shards whose endpoint is down now, and when the run's outage began. */
  private readonly downShards = new Set<number>();
  private downSince = 0;
  /** Each shard's place in `--endpoint`'s list (from shard_start; 0 for a log of one endpoint). */
  private readonly upstreamOfShard = new Map<number, number>();
  /** Per upstream: its shards now down, and since when. */
  private readonly upstreamDown = new Map<number, { shards: Set<number>; sinceTs: number }>();
  /** Servers the shards send to, and how many of them are down now (kept, not counted per event). */
  private readonly upstreamsSeen = new Set<number>();
  /** The run's endpoints as its shards said (before every shard_start is read, the ones seen may be fewer). */
  private upstreamCount = 0;
  private upstreamsDownNow = 0;

  constructor(binMs = 1000) {
    this.f = {
      runIds: [],
      startMs: 0,
      endMs: 0,
      requests: 0,
      succeeded: 0,
      failed: 0,
      attempts: 0,
      firstAttempts: 0,
      pausedAttempts: 0,
      staleResends: 0,
      keepaliveOffShards: 0,
      keepaliveDisabledShards: 0,
      shards: 0,
      limitFinal: 0,
      limitSettled: 0,
      idleMs: 0,
      attemptErrorStatuses: {},
      outages: 0,
      downMs: 0,
      retries: 0,
      retryCauses: {},
      failureCauses: {},
      attemptErrorCauses: {},
      maxRetryAfterMs: 0,
      completionTokens: 0,
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
      connsOpened: 0,
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
      buckets: zeroBuckets(),
      limitMax: 0,
      maxInFlight: 0,
      inFlightIntegral: 0,
      backlogIntegral: 0,
      busyMs: 0,
      activeMs: 0,
      gapMs: 0,
      backloggedMs: 0,
      binMs,
      bins: [],
      limitSegments: [],
      badLines: 0,
      events: 0,
      byEndpoint: {},
      byUpstream: {},
      plainServerMs: [],
      slowest: [],
      recentErrors: [],
    };
  }

  private readonly minuteMap = new Map<number, MinuteBucket>();

  /** Take one event (in timestamp order). `e` is only read during the call. */
  add(e: EventRecord): void {
    const ts = e.ts;
    this.f.events++;
    if (Number.isNaN(this.firstTs)) {
      this.firstTs = ts;
      this.lastTs = ts;
    }
    // A run started again (a resume, a re-run over a finished directory) after a stretch with no
    // events at all: that stretch was no run's time. Averages over the window leave it out, and the
    // state a crash left (slots, a backlog) is not integrated over it.
    if (e.type === T.run_start && !Number.isNaN(this.runStart) && ts > this.lastTs) {
      this.f.idleMs += ts - this.lastTs;
      this.limits.note(this.lastTs, 0);
      this.lastTs = ts;
    }
    this.advance(ts);
    switch (e.type) {
      case T.run_start:
        this.gaugedShards.delete(-1);
        this.runIds.add(e.run);
        if (Number.isNaN(this.runStart)) this.runStart = ts;
        return;
      case T.run_end:
        this.runEnd = ts;
        return;
      case T.shard_start:
        return this.onShardStart(e);
      case T.limit:
        // An adaptive limit moved: slots count from here at the new size.
        if (!Number.isNaN(e.concurrency)) this.setLimit(e.shard, e.concurrency);
        return;
      case T.shard_end:
        return this.onShardEnd(e);
      case T.shard_exit:
        return this.onShardExit(e);
      case T.enqueue:
        if (e.rid >= 0) this.onEnqueue(ts, this.reqs.open(e.rid, ts), e.endpoint);
        return;
      case T.attempt_start:
        if (e.rid >= 0) this.onAttemptStart(e, ts, this.reqs.open(e.rid, ts));
        return;
      case T.gauge:
        return this.onGauge(e);
      case T.stale_connection:
        this.f.staleResends++;
        return;
      case T.keepalive_off:
        this.f.keepaliveOffShards++;
        return;
      case T.keepalive_disabled:
        this.f.keepaliveDisabledShards++;
        return;
      case T.endpoint_down:
        return this.onEndpointDown(e.shard, ts);
      case T.endpoint_up:
        return this.onEndpointUp(e.shard, ts);
    }
    // The rest belong to a request: its slot (-1 when the request is not open, e.g. a torn log).
    const r = this.reqs;
    const st = r.slot(e.rid);
    switch (e.type) {
      case T.conn_open:
        return this.onConnOpen(e, st);
      case T.first_token:
        if (st >= 0) r.set(st, FIRST_TOKEN, ts);
        return;
      case T.attempt_end:
        return this.onAttemptEnd(e, ts, st);
      case T.backoff:
        return this.onBackoff(e, st);
      case T.paused:
        this.f.pausedAttempts++;
        if (this.upstreamOfShard.has(e.shard)) this.upstream(this.upstreamOfShard.get(e.shard)!).pausedAttempts++;
        if (st >= 0) r.set(st, PAUSE_START, ts);
        return;
      case T.postprocess_start:
        if (st >= 0) r.set(st, POST_START, ts);
        return;
      case T.postprocess_end:
        if (st >= 0 && r.get(st, POST_START) >= 0) r.add(st, B.postprocess, ts - r.get(st, POST_START));
        return;
      case T.request_end:
        if (e.rid < 0) return;
        this.requestEnd(e, ts, st);
        r.close(e.rid);
        return;
    }
  }

  /**
   * A shard's endpoint went down. The run is down (dispatch paused on purpose) while every endpoint it
   * sends to is: with several, one down is that endpoint's outage, and the others carry the run.
   */
  private onEndpointDown(shard: number, ts: number): void {
    const wasDown = this.runDown();
    const up = this.upstreamOfShard.get(shard) ?? 0;
    let d = this.upstreamDown.get(up);
    if (!d) this.upstreamDown.set(up, (d = { shards: new Set(), sinceTs: ts }));
    if (d.shards.size === 0) {
      d.sinceTs = ts;
      this.upstream(up).outages++;
      this.upstreamsDownNow++;
    }
    d.shards.add(shard);
    this.downShards.add(shard);
    if (!wasDown && this.runDown()) {
      this.f.outages++;
      this.downSince = ts;
    }
  }

  private onEndpointUp(shard: number, ts: number): void {
    const wasDown = this.runDown();
    const up = this.upstreamOfShard.get(shard) ?? 0;
    const d = this.upstreamDown.get(up);
    if (d?.shards.delete(shard) && d.shards.size === 0) {
      this.upstream(up).downMs += ts - d.sinceTs;
      this.upstreamsDownNow--;
    }
    this.downShards.delete(shard);
    if (wasDown && !this.runDown()) this.f.downMs += ts - this.downSince;
  }

  /** Whether every endpoint the run sends to is down (a shard of each). Read for every event in an outage. */
  private runDown(): boolean {
    if (this.downShards.size === 0) return false;
    const upstreams = Math.max(this.upstreamsSeen.size, this.upstreamCount);
    return upstreams <= 1 || this.upstreamsDownNow >= upstreams;
  }

  /** An upstream's figures, made on first sight. */
  private upstream(index: number): UpstreamFacts {
    return (this.f.byUpstream[String(index)] ??= {
      url: '',
      shards: 0,
      requests: 0,
      succeeded: 0,
      failed: 0,
      completionTokens: 0,
      promptTokens: 0,
      attempts: 0,
      firstAttempts: 0,
      pausedAttempts: 0,
      limitMax: 0,
      limit: 0,
      outages: 0,
      downMs: 0,
      latency: [],
      ttft: [],
      answerMs: [],
    });
  }

  private onShardStart(e: EventRecord): void {
    if (!Number.isNaN(e.upstreamIndex)) {
      const u = this.upstream(e.upstreamIndex);
      if (!this.upstreamOfShard.has(e.shard)) u.shards++;
      this.upstreamOfShard.set(e.shard, e.upstreamIndex);
      this.upstreamsSeen.add(e.upstreamIndex);
      if (e.upstreams > this.upstreamCount) this.upstreamCount = e.upstreams;
      if (e.run) u.url = e.run;
    }
    this.gaugedShards.delete(e.shard);
    // A replacement starts a new process: bank what its predecessor's gauges showed.
    this.f.shardCpuMs += this.gaugeCpu.get(e.shard) ?? 0;
    this.gaugeCpu.delete(e.shard);
    this.shardOfPid.set(e.pid, e.shard);
    this.setLimit(e.shard, e.concurrency || 0);
  }

  private onShardEnd(e: EventRecord): void {
    this.setLimit(e.shard, 0);
    // The process's whole CPU, start-up included, replaces what its gauges summed.
    if (!Number.isNaN(e.cpuUserMs)) {
      this.f.shardCpuMs += e.cpuUserMs + (e.cpuSystemMs || 0);
      this.gaugeCpu.delete(e.shard);
    }
    if (!Number.isNaN(e.socketReads)) {
      this.f.socketReads += e.socketReads;
      this.f.socketReadShards++;
    }
  }

  private onShardExit(e: EventRecord): void {
    const shard = this.shardOfPid.get(e.pid);
    if (shard === undefined) return;
    this.setLimit(shard, 0);
    // Its open attempts never end: stop counting them as in flight.
    this.inFlight = Math.max(0, this.inFlight - (this.openByShard.get(shard) ?? 0));
    this.openByShard.set(shard, 0);
  }

  private onEnqueue(ts: number, st: number, endpoint: number): void {
    const r = this.reqs;
    if (endpoint > 0) r.set(st, ENDPOINT, endpoint);
    r.set(st, WAIT_START, ts);
    r.set(st, WAIT_FREE, this.freeMs);
    r.set(st, WAIT_DOWN, this.downIntegralMs);
    this.backlog++;
  }

  private onAttemptStart(e: EventRecord, ts: number, st: number): void {
    const r = this.reqs;
    if (r.get(st, WAIT_START) >= 0) {
      const gap = this.freeMs - r.get(st, WAIT_FREE);
      // While the endpoint was down dispatch was paused on purpose: that part of the wait is the outage's.
      const down = this.downIntegralMs - r.get(st, WAIT_DOWN);
      r.add(st, B.admission_gap, gap);
      r.add(st, B.endpoint_down, down);
      r.add(st, B.queue_wait, Math.max(0, ts - r.get(st, WAIT_START) - gap - down));
      r.set(st, WAIT_START, -1);
      this.backlog = Math.max(0, this.backlog - 1);
    }
    if (r.get(st, PAUSE_START) >= 0) {
      r.add(st, B.endpoint_down, ts - r.get(st, PAUSE_START));
      r.set(st, PAUSE_START, -1);
    }
    if (e.attempt === 1) this.f.firstAttempts++;
    r.set(st, ATTEMPT_START, ts);
    r.set(st, ATTEMPT_CONNECT, 0);
    r.set(st, FIRST_TOKEN, -1);
    this.inFlight++;
    if (this.inFlight > this.f.maxInFlight) this.f.maxInFlight = this.inFlight;
    this.openByShard.set(e.shard, (this.openByShard.get(e.shard) ?? 0) + 1);
    this.f.attempts++;
    const up = this.upstreamOfShard.get(e.shard);
    if (up !== undefined) {
      const u = this.upstream(up);
      u.attempts++;
      if (e.attempt === 1) u.firstAttempts++;
    }
  }

  private onConnOpen(e: EventRecord, st: number): void {
    const connectMs = e.connectMs || 0;
    this.f.connsOpened++;
    this.f.connectMs.push(connectMs);
    if (this.bin) this.bin.conns++;
    if (st >= 0) {
      this.reqs.add(st, ATTEMPT_CONNECT, connectMs);
      this.reqs.add(st, B.connect, connectMs);
    }
  }

  private onAttemptEnd(e: EventRecord, ts: number, st: number): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    this.openByShard.set(e.shard, Math.max(0, (this.openByShard.get(e.shard) ?? 0) - 1));
    const r = this.reqs;
    if (e.outcome === O.error) {
      this.onFailedAttempt(e);
      if (st >= 0 && r.get(st, ATTEMPT_START) >= 0)
        r.add(st, B.failed_attempts, ts - r.get(st, ATTEMPT_START) - r.get(st, ATTEMPT_CONNECT));
    } else if (st >= 0 && r.get(st, ATTEMPT_START) >= 0 && PLAIN[r.get(st, ENDPOINT)]) {
      // Embeddings, rerank and the like: no token stream, so no TTFT; the server's time is their latency,
      // which the diagnosis reads where TTFT is not defined.
      const serverMs = ts - r.get(st, ATTEMPT_START) - r.get(st, ATTEMPT_CONNECT);
      r.add(st, B.server_ttft, serverMs);
      this.f.plainServerMs.push(serverMs);
      this.f.ttftLoadInFlight.push(this.inFlight + 1);
      this.f.ttftLoadMs.push(serverMs);
    } else if (st >= 0 && r.get(st, ATTEMPT_START) >= 0) {
      const first = r.get(st, FIRST_TOKEN) >= 0 ? r.get(st, FIRST_TOKEN) : ts;
      r.set(st, SERVER_TTFT, first - r.get(st, ATTEMPT_START) - r.get(st, ATTEMPT_CONNECT));
      r.add(st, B.server_ttft, r.get(st, SERVER_TTFT));
      r.add(st, B.decode, ts - first);
      r.set(st, E2E_TTFT, first - r.get(st, FIRST_ENQUEUE));
      const n = e.completionTokens || 0;
      const last = Number.isNaN(e.lastTokenTs) ? ts : e.lastTokenTs;
      r.set(st, TPOT, n > 1 ? (last - first) / (n - 1) : -1);
      r.set(st, DECODE_START, first);
      r.set(st, DECODE_END, last);
      if (!Number.isNaN(e.serverQueueMs)) this.f.serverQueueMs.push(e.serverQueueMs);
      this.f.ttftLoadInFlight.push(this.inFlight + 1);
      this.f.ttftLoadMs.push(r.get(st, SERVER_TTFT));
    }
    if (e.outcome !== O.error && st >= 0 && r.get(st, ATTEMPT_START) >= 0) this.noteAnswer(e.shard, ts, st);
    if (st >= 0) r.set(st, ATTEMPT_START, -1);
  }

  /** A server's time for an answer (request sent → its end, connecting left out), by the server. */
  private noteAnswer(shard: number, ts: number, st: number): void {
    const up = this.upstreamOfShard.get(shard);
    if (up === undefined) return;
    this.upstream(up).answerMs.push(ts - this.reqs.get(st, ATTEMPT_START) - this.reqs.get(st, ATTEMPT_CONNECT));
  }

  private onFailedAttempt(e: EventRecord): void {
    const c = e.cause || 'unknown';
    this.f.attemptErrorCauses[c] = (this.f.attemptErrorCauses[c] ?? 0) + 1;
    if (!Number.isNaN(e.status))
      this.f.attemptErrorStatuses[e.status] = (this.f.attemptErrorStatuses[e.status] ?? 0) + 1;
    if (e.retryAfterMs > this.f.maxRetryAfterMs) this.f.maxRetryAfterMs = e.retryAfterMs;
    this.notable.noteFailedAttempt({
      rid: e.rid,
      attempt: e.attempt || 0,
      cause: c,
      status: Number.isNaN(e.status) ? null : e.status,
      error: e.error,
    });
  }

  private onBackoff(e: EventRecord, st: number): void {
    const cause = e.cause || 'unknown';
    this.f.retries++;
    this.f.retryCauses[cause] = (this.f.retryCauses[cause] ?? 0) + 1;
    if (this.bin) {
      this.bin.retries++;
      this.bin.retryCauses[cause] = (this.bin.retryCauses[cause] ?? 0) + 1;
    }
    if (st >= 0) this.reqs.add(st, B.retry_backoff, e.delayMs || 0);
  }

  private onGauge(e: EventRecord): void {
    // Coordinator and shard loops alike: any lagging client loop delays requests. A process's
    // first gauge covers its start-up (module loading, forking shards) and is left out, or it
    // would dominate the p99 of a short run.
    if (!this.gaugedShards.has(e.shard)) this.gaugedShards.add(e.shard);
    else {
      if (!Number.isNaN(e.loopLagMs)) this.f.loopLag.push(e.loopLagMs);
      if (e.shard >= 0) {
        if (!Number.isNaN(e.loopBusy)) this.f.loopBusy.push(e.loopBusy);
        if (!Number.isNaN(e.hostBusy)) this.f.hostBusy.push(e.hostBusy);
        if (!Number.isNaN(e.cpuWait)) this.f.cpuWait.push(e.cpuWait);
      }
    }
    if (!Number.isNaN(e.readHoldMs)) {
      this.f.holdGauges++;
      if (e.readHoldMs > 0) this.f.heldGauges++;
      if (e.readHoldMs > this.f.readHoldMaxMs) this.f.readHoldMaxMs = e.readHoldMs;
    }
    if (e.shard >= 0 && !Number.isNaN(e.cpuMs)) this.gaugeCpu.set(e.shard, (this.gaugeCpu.get(e.shard) ?? 0) + e.cpuMs);
  }

  /**
   * How the request with interned id `rid` counts: `undefined` if no request_end was read for it,
   * else its counted outcome and completion tokens (what its result line should say).
   */
  outcomeOf(rid: number): { succeeded: boolean; completionTokens: number } | undefined {
    const d = rid >= 0 && rid < this.done.length ? this.done[rid] : 0;
    if (!d) return undefined;
    return { succeeded: d === DONE_OK, completionTokens: this.endCompletion[rid]! };
  }

  private growDone(rid: number): void {
    const size = Math.max(rid + 1, this.done.length * 2);
    const grow = <A extends Uint8Array | Float64Array>(a: A, make: (n: number) => A): A => {
      const b = make(size);
      b.set(a);
      return b;
    };
    this.done = grow(this.done, (n) => new Uint8Array(n));
    this.endEstimated = grow(this.endEstimated, (n) => new Uint8Array(n));
    this.endCompletion = grow(this.endCompletion, (n) => new Float64Array(n));
    this.endPrompt = grow(this.endPrompt, (n) => new Float64Array(n));
  }

  /** The interned ids the report names (slowest requests, recent errors): look these up for finish. */
  ridsToName(): number[] {
    return this.notable.rids();
  }

  /** The facts, once every event is in. `names` maps ridsToName()'s ids to their strings. */
  finish(badLines: number, names: ReadonlyMap<number, string>): RunFacts {
    const f = this.f;
    f.runIds = [...this.runIds];
    f.startMs = Number.isNaN(this.runStart) ? this.firstTs : Math.min(this.runStart, this.firstTs);
    f.endMs = Number.isNaN(this.runEnd) ? this.lastTs : Math.max(this.runEnd, this.lastTs);
    if (Number.isNaN(f.startMs)) f.startMs = f.endMs = 0;
    // An outage still open when the log ends (a server that never came back) lasted until then.
    for (const [up, d] of this.upstreamDown)
      if (d.shards.size > 0) this.upstream(up).downMs += Math.max(0, f.endMs - d.sinceTs);
    if (this.runDown()) f.downMs += Math.max(0, f.endMs - this.downSince);
    f.minutes = [...this.minuteMap.values()];
    f.limitSegments = this.limits.segments;
    f.shards = this.finalLimitByShard.size;
    for (const l of this.finalLimitByShard.values()) f.limitFinal += l;
    for (const ms of this.gaugeCpu.values()) f.shardCpuMs += ms;
    BUCKETS.forEach((b, i) => (f.buckets[b] = this.bucketSums[i]!));
    Object.assign(f, this.notable.named(names));
    this.gaugeCpu.clear();
    f.badLines = badLines;
    return f;
  }

  private requestEnd(e: EventRecord, ts: number, st: number): void {
    const rid = e.rid;
    const r = this.reqs;
    const succeeded = e.outcome === O.succeeded;
    const tokens = e.completionTokens || 0;
    if (succeeded) {
      // TPM counts every succeeded request_end (work the server really did), as documented.
      const minute = Math.floor(ts / 60_000);
      let m = this.minuteMap.get(minute);
      if (!m) this.minuteMap.set(minute, (m = { minute, tokens: 0, perShard: new Map() }));
      m.tokens += tokens;
      m.perShard.set(e.shard, (m.perShard.get(e.shard) ?? 0) + tokens);
      this.spreadTokens(st, tokens, ts);
    }
    if (rid >= this.done.length) this.growDone(rid);
    const before = this.done[rid];
    const f = this.f;
    if (before === DONE_OK) {
      // A second success (re-run because its result line was lost in a crash): its result line is
      // the one kept, so its tokens replace the first's. Latency samples stay the first success's.
      f.succeeded--;
      f.completionTokens -= this.endCompletion[rid]!;
      f.promptTokens -= this.endPrompt[rid]!;
      if (this.endEstimated[rid]) f.estimatedTokens -= this.endCompletion[rid]!;
    } else if (before === DONE_FAILED) {
      f.failed--;
      const c = this.failedCause.get(rid)!;
      this.failedCause.delete(rid);
      if (--f.failureCauses[c]! === 0) delete f.failureCauses[c];
    } else f.requests++;
    this.done[rid] = succeeded ? DONE_OK : DONE_FAILED;
    this.endCompletion[rid] = succeeded ? tokens : 0;
    this.endPrompt[rid] = succeeded ? e.promptTokens || 0 : 0;
    this.endEstimated[rid] = succeeded && e.tokensEstimated ? 1 : 0;
    if (before === DONE_OK && succeeded) {
      f.succeeded++;
      f.completionTokens += tokens;
      f.promptTokens += e.promptTokens || 0;
      if (e.tokensEstimated) f.estimatedTokens += tokens;
      return;
    }
    if (st >= 0)
      this.notable.noteFinished(
        rid,
        ts - r.get(st, FIRST_ENQUEUE),
        e.attempts || 0,
        succeeded ? 'succeeded' : 'failed',
      );
    if (st >= 0) for (let i = 0; i < BUCKETS.length; i++) this.bucketSums[i]! += r.get(st, BUCKET0 + i);
    this.tallyEndpoint(e, ts, st, succeeded, tokens);
    this.tallyUpstream(e, ts, st, succeeded, tokens);
    if (succeeded) {
      f.succeeded++;
      f.completionTokens += tokens;
      f.promptTokens += e.promptTokens || 0;
      if (e.tokensEstimated) f.estimatedTokens += tokens;
      if (st >= 0 && r.get(st, SERVER_TTFT) >= 0) {
        f.serverTtft.push(r.get(st, SERVER_TTFT));
        f.e2eTtft.push(r.get(st, E2E_TTFT));
        f.e2eLatency.push(ts - r.get(st, FIRST_ENQUEUE));
        if (r.get(st, TPOT) >= 0) f.tpot.push(r.get(st, TPOT));
        this.bin?.ttft.push(r.get(st, SERVER_TTFT));
        const first = r.get(st, DECODE_START) >= 0 ? r.get(st, DECODE_START) : ts;
        this.limits.addTtft(first - r.get(st, SERVER_TTFT), r.get(st, SERVER_TTFT));
      } else if (st >= 0 && PLAIN[r.get(st, ENDPOINT)]) f.e2eLatency.push(ts - r.get(st, FIRST_ENQUEUE));
    } else {
      f.failed++;
      const c = e.cause || 'unknown';
      f.failureCauses[c] = (f.failureCauses[c] ?? 0) + 1;
      this.failedCause.set(rid, c);
    }
  }

  /** Count a request's end for its endpoint (the report's split by endpoint). */
  private tallyEndpoint(e: EventRecord, ts: number, st: number, succeeded: boolean, tokens: number): void {
    const name = ENDPOINT_CODES[(e.endpoint || 1) - 1] ?? 'chat';
    const b = (this.f.byEndpoint[name] ??= {
      requests: 0,
      succeeded: 0,
      failed: 0,
      completionTokens: 0,
      promptTokens: 0,
      items: 0,
      latency: [],
      ttft: [],
    });
    if (this.tallyShare(b, e, ts, st, succeeded, tokens)) b.items += Number.isNaN(e.items) ? 1 : e.items;
  }

  /** Count a request's end for the server its last attempt went to (the report's split by upstream). */
  private tallyUpstream(e: EventRecord, ts: number, st: number, succeeded: boolean, tokens: number): void {
    const up = this.upstreamOfShard.get(e.shard);
    if (up !== undefined) this.tallyShare(this.upstream(up), e, ts, st, succeeded, tokens);
  }

  /** Count a request's end in one split of the run; returns whether it succeeded. */
  private tallyShare(b: ShareFacts, e: EventRecord, ts: number, st: number, ok: boolean, tokens: number): boolean {
    b.requests++;
    if (!ok) {
      b.failed++;
      return false;
    }
    b.succeeded++;
    b.completionTokens += tokens;
    b.promptTokens += e.promptTokens || 0;
    if (st < 0) return true;
    b.latency.push(ts - this.reqs.get(st, FIRST_ENQUEUE));
    if (this.reqs.get(st, SERVER_TTFT) >= 0) b.ttft.push(this.reqs.get(st, SERVER_TTFT));
    return true;
  }

  /**
   * Per-second token chart: a request's tokens are spread evenly over its decode (first → last
   * token), as they were generated, rather than all landing in the second it ended. (TPM per
   * minute keeps its exact definition: counted at request_end.)
   */
  private spreadTokens(st: number, tokens: number, endTs: number): void {
    const bins = this.f.bins;
    const r = this.reqs;
    if (tokens <= 0) return;
    const from = st >= 0 && r.get(st, DECODE_START) >= 0 ? r.get(st, DECODE_START) : endTs;
    const to = st >= 0 && r.get(st, DECODE_END) >= from ? r.get(st, DECODE_END) : from;
    this.limits.addTokens(from, to, tokens);
    if (bins.length === 0) return;
    const t0 = bins[0]!.t;
    const binMs = this.f.binMs;
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

  private setLimit(shard: number, concurrency: number): void {
    // The limit each shard last ran with (an ending shard's 0 is not a limit it ran with).
    if (concurrency > 0) this.finalLimitByShard.set(shard, concurrency);
    const delta = concurrency - (this.limitByShard.get(shard) ?? 0);
    this.limit += delta;
    this.limitByShard.set(shard, concurrency);
    const up = this.upstreamOfShard.get(shard);
    if (up !== undefined) {
      const u = this.upstream(up);
      u.limit += delta;
      if (u.limit > u.limitMax) u.limitMax = u.limit;
    }
    if (this.limit > this.f.limitMax) this.f.limitMax = this.limit;
  }

  /**
   * The in-flight limit work could use: the shards' limits less those of shards whose server is down
   * (one of several servers down: its slots are out of rotation, not free slots while work waits).
   */
  private usableLimit(): number {
    if (this.downShards.size === 0) return this.limit;
    let down = 0;
    for (const s of this.downShards) down += this.limitByShard.get(s) ?? 0;
    return Math.max(0, this.limit - down);
  }

  /** Integrate state over [lastTs, ts) and roll timeline bins forward. */
  private advance(ts: number): void {
    const dt = ts - this.lastTs;
    if (dt > 0) {
      const f = this.f;
      const limit = this.usableLimit();
      const down = this.downShards.size > 0 && this.runDown();
      this.limits.note(this.lastTs, down ? 0 : limit);
      if (down) this.downIntegralMs += dt;
      else if (limit > 0) {
        f.activeMs += dt;
        f.inFlightIntegral += this.inFlight * dt;
        f.backlogIntegral += this.backlog * dt;
        if (this.backlog > 0) {
          f.backloggedMs += dt;
          f.limitSettled = limit;
        }
        if (this.inFlight >= limit) f.busyMs += dt;
        else {
          // Idle slots slow the queue by the share of capacity they are: with every slot free no
          // waiting request moves, with 1 of 64 free the queue drains 1/64 slower. Each waiting
          // request is charged that share of the time, so a slot free for a moment between two
          // requests is not billed in full to every request behind it.
          this.freeMs += (dt * (limit - this.inFlight)) / limit;
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
        this.bin = {
          t,
          backlog: this.backlog,
          inFlight: this.inFlight,
          limit: this.usableLimit(),
          tokens: 0,
          retries: 0,
          conns: 0,
          ttft: [],
          retryCauses: {},
          down: this.runDown(),
        };
        this.f.bins.push(this.bin);
      }
    }
  }
}
