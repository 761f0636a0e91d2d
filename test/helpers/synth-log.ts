import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cause, ShardlineEvent } from '../../src/index.js';

/** A generated run: one shard with `limit` slots, a closed-loop backlog, and knobs for each failure mode. */
export interface SynthOptions {
  requests: number;
  limit: number;
  readAhead?: number;
  startMs?: number;
  /** Server TTFT as a function of the client's in-flight count when the attempt starts. */
  serverTtftMs?: (inFlight: number) => number;
  decodeMs?: number;
  tokens?: number;
  /** Fraction of attempts that open a new connection, and its cost. */
  newConnP?: number;
  connectMs?: number;
  /** Fraction of attempts that fail (then are retried after backoffMs). */
  failP?: number;
  failCause?: Cause;
  failStatus?: number;
  failMs?: number;
  backoffMs?: number;
  /** Fraction of requests that fail for good on their first attempt. */
  fatalP?: number;
  postprocessMs?: number;
  /** Delay between a slot freeing and the next request starting on it, while work waits. */
  dispatchDelayMs?: number;
  loopLagMs?: number;
  /** The shard gauges' machine CPU utilization (0–1); absent when not given, as in older logs. */
  hostBusy?: number;
  /** The shard gauges' cpu_wait (0–1); absent when not given. */
  cpuWait?: number;
  /** shard_end.socket_reads (raw transport); absent when not given. */
  socketReads?: number;
  seed?: number;
}

/** Generate events for a run and write them as a run directory; returns the directory. */
export function writeSynthRun(dir: string, o: SynthOptions): string {
  const events = synthEvents(o);
  mkdirSync(join(dir, 'events'), { recursive: true });
  const coord = events.filter((e) => e.shard === -1).map((e) => JSON.stringify(e));
  const shard = events.filter((e) => e.shard === 0).map((e) => JSON.stringify(e));
  writeFileSync(join(dir, 'events', 'coordinator.jsonl'), `${coord.join('\n')}\n`);
  writeFileSync(join(dir, 'events', 'shard-000.jsonl'), `${shard.join('\n')}\n`);
  return dir;
}

export function synthEvents(o: SynthOptions): ShardlineEvent[] {
  let seed = o.seed ?? 7;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const run = 'synth';
  const t0 = o.startMs ?? Date.UTC(2026, 10, 27, 12, 0, 0);
  const ev: ShardlineEvent[] = [];
  const push = (shard: number, ts: number, type: string, fields: object) =>
    ev.push({ v: 1, ts, run, shard, type, ...fields } as ShardlineEvent);
  const ttft = o.serverTtftMs ?? (() => 40);
  const decode = o.decodeMs ?? 400;
  const tokens = o.tokens ?? 100;
  const readAhead = o.readAhead ?? o.limit * 4;
  push(-1, t0, 'run_start', { config: {}, resumed: false, pid: 1 });
  push(0, t0 + 1, 'shard_start', { pid: 2, concurrency: o.limit });

  type Item = { id: string; attempt: number; ready: number };
  const backlog: Item[] = [];
  let next = 0;
  const topUp = (now: number) => {
    while (backlog.length < readAhead && next < o.requests) {
      const id = `r${next++}`;
      push(-1, now, 'enqueue', { id, line: next });
      backlog.push({ id, attempt: 1, ready: now });
    }
  };
  topUp(t0 + 1);
  const slots: number[] = Array.from({ length: o.limit }, () => t0 + 2);
  const ends: number[] = [];
  let done = 0;
  let inFlightEnds: number[] = [];
  while (done < o.requests) {
    // The earliest free slot takes the earliest ready item.
    slots.sort((a, b) => a - b);
    backlog.sort((a, b) => a.ready - b.ready);
    const item = backlog.shift();
    if (!item) break;
    const free = slots[0]!;
    const start = Math.max(free + (free > t0 + 2 ? (o.dispatchDelayMs ?? 0) : 0), item.ready) + 0.01;
    inFlightEnds = inFlightEnds.filter((e) => e > start);
    const inFlight = inFlightEnds.length + 1;
    push(0, start, 'attempt_start', { id: item.id, attempt: item.attempt });
    let t = start;
    if (rnd() < (o.newConnP ?? 0.01)) {
      t += o.connectMs ?? 2;
      push(0, t, 'conn_open', { connect_ms: o.connectMs ?? 2, id: item.id, attempt: item.attempt });
    }
    let end: number;
    if (rnd() < (o.fatalP ?? 0)) {
      end = t + 5;
      push(0, end, 'response_headers', { id: item.id, attempt: item.attempt, status: 500 });
      push(0, end + 0.01, 'attempt_end', {
        id: item.id,
        attempt: item.attempt,
        outcome: 'error',
        status: 500,
        cause: 'http_5xx',
      });
      push(0, end + 0.02, 'request_end', {
        id: item.id,
        outcome: 'failed',
        attempts: item.attempt,
        completion_tokens: 0,
        prompt_tokens: 0,
        cause: 'http_5xx',
      });
      done++;
    } else if (rnd() < (o.failP ?? 0)) {
      end = t + (o.failMs ?? 20);
      push(0, end, 'attempt_end', {
        id: item.id,
        attempt: item.attempt,
        outcome: 'error',
        status: o.failStatus ?? 429,
        cause: o.failCause ?? 'http_429',
      });
      const delay = o.backoffMs ?? 500;
      push(0, end + 0.01, 'backoff', {
        id: item.id,
        attempt: item.attempt,
        delay_ms: delay,
        cause: o.failCause ?? 'http_429',
      });
      push(-1, end + delay, 'enqueue', { id: item.id, line: 0, attempt: item.attempt + 1 });
      backlog.push({ id: item.id, attempt: item.attempt + 1, ready: end + delay });
    } else {
      const first = t + ttft(inFlight);
      push(0, first - 1, 'response_headers', { id: item.id, attempt: item.attempt, status: 200 });
      push(0, first, 'first_token', { id: item.id, attempt: item.attempt });
      end = first + decode;
      push(0, end, 'attempt_end', {
        id: item.id,
        attempt: item.attempt,
        outcome: 'ok',
        status: 200,
        completion_tokens: tokens,
        prompt_tokens: 20,
        last_token_ts: end,
      });
      let fin = end + 0.01;
      if (o.postprocessMs) {
        push(0, fin, 'postprocess_start', { id: item.id });
        fin += o.postprocessMs;
        push(0, fin, 'postprocess_end', { id: item.id });
      }
      push(0, fin + 0.01, 'request_end', {
        id: item.id,
        outcome: 'succeeded',
        attempts: item.attempt,
        completion_tokens: tokens,
        prompt_tokens: 20,
      });
      done++;
    }
    slots[0] = end + 0.02;
    inFlightEnds.push(end);
    ends.push(end);
    topUp(start);
  }
  const last = Math.max(...ends) + 50;
  for (let s = t0 + 1000; s < last; s += 1000) {
    push(-1, s, 'gauge', { backlog: 0, in_flight: 0, limit: o.limit, loop_lag_ms: 1, conns_open: 1 });
    push(0, s + 0.5, 'gauge', {
      backlog: 0,
      in_flight: 0,
      limit: o.limit,
      loop_lag_ms: o.loopLagMs ?? 2,
      conns_open: 1,
      ...(o.hostBusy !== undefined ? { host_busy: o.hostBusy } : {}),
      ...(o.cpuWait !== undefined ? { cpu_wait: o.cpuWait } : {}),
    });
  }
  push(0, last, 'shard_end', {
    requests: o.requests,
    ...(o.socketReads !== undefined ? { socket_reads: o.socketReads } : {}),
  });
  push(-1, last + 1, 'run_end', { status: 'finished', succeeded: 0, failed: 0, rejected: 0 });
  return ev.sort((a, b) => a.ts - b.ts);
}
