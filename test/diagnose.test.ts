import { appendFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NotableRequests } from '../src/diagnose/notable-requests.js';
import { analyze, formatReport, type Mode, type Report } from '../src/index.js';
import { tempDir } from './helpers/run-dir.js';
import { writeSynthRun, type SynthOptions } from './helpers/synth-log.js';

async function diagnoseSynth(o: SynthOptions): Promise<Report> {
  return analyze([writeSynthRun(tempDir('sl-synth-'), o)]);
}

const modes = (r: Report): Mode[] => r.verdict.findings.map((f) => f.mode);

describe('diagnosis of generated event logs, one per failure mode', () => {
  it('a healthy run: no findings, model time dominates', async () => {
    const r = await diagnoseSynth({ requests: 200, limit: 16, readAhead: 2, serverTtftMs: () => 40, decodeMs: 400 });
    expect(r.verdict.findings).toEqual([]);
    expect(r.verdict.bound).toBe('healthy');
    expect(r.verdict.dominant).toBe('decode');
  });

  it('queueing: a fast server behind a full client bound — says what was measured, claims no headroom', async () => {
    const r = await diagnoseSynth({ requests: 300, limit: 4, readAhead: 200, serverTtftMs: () => 30, decodeMs: 400 });
    expect(modes(r)[0]).toBe('queueing');
    // One run at one bound cannot tell whether the server has room for more: not a control-plane fault.
    expect(r.verdict.bound).toBe('healthy');
    expect(r.verdict.dominant).toBe('queue_wait');
    const f = r.verdict.findings[0]!;
    expect(f.severity).toBe('medium');
    expect(f.action).toMatch(/the client bound was the limit of this run \(--concurrency 4\)/);
    expect(f.action).toMatch(/shardline sweep/);
    expect(f.action).not.toMatch(/headroom/);
    expect(f.evidence).toMatch(/server TTFT flat at 30 ms/);
  });

  it('admission gaps: slots left idle while work waits (the seed pattern)', async () => {
    const r = await diagnoseSynth({
      requests: 300,
      limit: 8,
      readAhead: 100,
      serverTtftMs: () => 30,
      decodeMs: 100,
      dispatchDelayMs: 150,
    });
    expect(modes(r)).toContain('admission_gap');
    const f = r.verdict.findings.find((x) => x.mode === 'admission_gap')!;
    expect(f.evidence).toMatch(/backlog stays high while in-flight is unstable/);
    expect(r.utilization.admission_gap_s).toBeGreaterThan(5);
    expect(r.verdict.bound).toBe('control-plane');
  });

  it('connection churn: a new connection for every attempt', async () => {
    const r = await diagnoseSynth({ requests: 200, limit: 16, readAhead: 2, newConnP: 1, connectMs: 30 });
    expect(modes(r)).toContain('connection_churn');
    expect(r.connections.per_request).toBe(1);
  });

  it('retry loop: 429s with backoff', async () => {
    const r = await diagnoseSynth({
      requests: 200,
      limit: 16,
      readAhead: 4,
      failP: 0.4,
      failCause: 'http_429',
      backoffMs: 800,
    });
    expect(modes(r)[0]).toBe('retry_loop');
    expect(r.retries.causes.http_429).toBeGreaterThan(50);
    expect(r.verdict.findings[0]!.action).toMatch(/rate limit/);
  });

  it('post-processing stall', async () => {
    const r = await diagnoseSynth({ requests: 200, limit: 16, readAhead: 2, postprocessMs: 900 });
    expect(modes(r)).toContain('postprocess_stall');
    expect(r.verdict.dominant).toBe('postprocess');
    expect(r.verdict.bound).toBe('control-plane');
  });

  it('event-loop stall on the client', async () => {
    const r = await diagnoseSynth({ requests: 200, limit: 16, readAhead: 2, loopLagMs: 250 });
    expect(modes(r)).toEqual(['event_loop_stall']);
    expect(r.event_loop.lag_p99_ms).toBe(250);
    expect(r.verdict.findings[0]!.action).toMatch(/--shards.*--transport raw/);
    expect(r.verdict.findings[0]!.evidence).not.toMatch(/machine/);
  });

  it('event-loop stall on a saturated machine: says the shards waited for a core, and not to add shards', async () => {
    const r = await diagnoseSynth({ requests: 200, limit: 16, readAhead: 2, loopLagMs: 250, hostBusy: 0.97 });
    expect(modes(r)).toEqual(['event_loop_stall']);
    expect(r.event_loop.host_busy_p50).toBe(0.97);
    const f = r.verdict.findings[0]!;
    expect(f.evidence).toMatch(/the shards also waited for a core \(medians: machine CPU 97% busy\)/);
    expect(f.action).toMatch(/^give the client CPU of its own/);
    expect(f.action).not.toMatch(/^add --shards/);
  });

  it('event-loop stall while the shards wait for a core: the same, from the run-queue wait', async () => {
    const r = await diagnoseSynth({
      requests: 200,
      limit: 16,
      readAhead: 2,
      loopLagMs: 250,
      hostBusy: 0.7,
      cpuWait: 0.3,
    });
    expect(r.event_loop.cpu_wait_p50).toBe(0.3);
    const f = r.verdict.findings[0]!;
    expect(f.evidence).toMatch(
      /the shards also waited for a core \(medians: waiting 30% of the time, machine CPU 70% busy\)/,
    );
    expect(f.action).toMatch(/^give the client CPU of its own/);
    // Neither signal high: the plain advice.
    const calm = await diagnoseSynth({
      requests: 200,
      limit: 16,
      readAhead: 2,
      loopLagMs: 250,
      hostBusy: 0.7,
      cpuWait: 0.05,
    });
    expect(calm.verdict.findings[0]!.action).toMatch(/^add --shards/);
  });

  it('event-loop stall where every token cost a read: the evidence says so', async () => {
    const r = await diagnoseSynth({ requests: 200, limit: 16, readAhead: 2, loopLagMs: 250, socketReads: 0 });
    expect(r.client_cpu.reads_per_completion_token).toBe(0);
    expect(r.verdict.findings[0]!.evidence).not.toMatch(/socket reads per token/);
    const tokens = r.tokens.completion;
    const perToken = await diagnoseSynth({
      requests: 200,
      limit: 16,
      readAhead: 2,
      loopLagMs: 250,
      socketReads: tokens,
    });
    expect(perToken.client_cpu.reads_per_completion_token).toBe(1);
    expect(perToken.verdict.findings[0]!.evidence).toMatch(
      /1\.00 socket reads per token: tokens mostly arrive one per read/,
    );
  });

  it('model saturation: server TTFT rises with the load the client puts on it', async () => {
    const r = await diagnoseSynth({
      requests: 400,
      limit: 32,
      readAhead: 8,
      serverTtftMs: (n) => 40 + 60 * Math.max(0, n - 8),
      decodeMs: 400,
    });
    expect(modes(r)).toContain('model_saturation');
    expect(modes(r)).not.toContain('queueing');
    expect(r.verdict.bound).toBe('model');
    expect(r.verdict.dominant).toBe('server_ttft');
  });

  it('behind a saturated server a long client queue is still model-bound', async () => {
    const r = await diagnoseSynth({
      requests: 400,
      limit: 32,
      readAhead: 64,
      serverTtftMs: (n) => 40 + 60 * Math.max(0, n - 8),
      decodeMs: 400,
    });
    expect(r.verdict.dominant).toBe('queue_wait');
    expect(r.verdict.bound).toBe('model');
    expect(modes(r)).toContain('model_saturation');
    expect(modes(r)).not.toContain('queueing');
  });

  it('errors: requests that fail for good', async () => {
    const r = await diagnoseSynth({ requests: 200, limit: 16, readAhead: 2, fatalP: 0.2 });
    expect(modes(r)).toContain('errors');
    expect(r.requests.failed).toBeGreaterThan(20);
    expect(r.requests.success_rate).toBeLessThan(0.9);
    expect(r.verdict.findings.find((f) => f.mode === 'errors')!.evidence).toMatch(/http_5xx/);
  });
});

describe('report figures from a generated log (hand-checkable)', () => {
  it('--json carries exact ratios, recomputable from the events, not rounded ones', async () => {
    const dir = writeSynthRun(tempDir(), {
      requests: 300,
      limit: 8,
      readAhead: 4,
      failP: 0.37,
      backoffMs: 5,
      fatalP: 0.13,
    });
    const events = readdirSync(join(dir, 'events')).flatMap((f) =>
      readFileSync(join(dir, 'events', f), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { type: string; id?: string; outcome?: string }),
    );
    const attempts = events.filter((e) => e.type === 'attempt_start').length;
    const ends = events.filter((e) => e.type === 'request_end');
    const requests = new Set(ends.map((e) => e.id)).size;
    const succeeded = ends.filter((e) => e.outcome === 'succeeded').length;
    const r = await analyze([dir]);
    expect(r.retries.rate).toBe((attempts - requests) / attempts);
    expect(r.retries.per_request).toBe((attempts - requests) / requests);
    expect(r.requests.success_rate).toBe(succeeded / requests);
    // The ratios are not round numbers: a 3-decimal rounding would have changed them.
    expect((r.retries.rate! * 1000) % 1).not.toBe(0);
    // Views still round.
    expect(formatReport(r)).toContain(`rate ${((r.retries.rate ?? 0) * 100).toFixed(1)}%`);
  });

  it('counts, retries, buckets and the JSON keys', async () => {
    const r = await diagnoseSynth({
      requests: 50,
      limit: 5,
      readAhead: 1,
      serverTtftMs: () => 100,
      decodeMs: 200,
      tokens: 10,
      newConnP: 0,
    });
    expect(r.schema).toBe('shardline.report/v1');
    expect(r.requests).toEqual({ total: 50, succeeded: 50, failed: 0, success_rate: 1 });
    expect(r.attempts).toBe(50);
    expect(r.retries).toMatchObject({ count: 0, rate: 0, per_request: 0 });
    expect(r.tokens.completion).toBe(500);
    // Every request: server TTFT exactly 100 ms, decode 200 ms, TPOT 200/9 ms.
    expect(r.ttft_ms.server).toMatchObject({ p50: 100, p99: 100, max: 100, count: 50 });
    expect(r.buckets_ms.server_ttft).toBeCloseTo(50 * 100, 3);
    expect(r.buckets_ms.decode).toBeCloseTo(50 * 200, 3);
    expect(r.tpot_ms.p50).toBeCloseTo(200 / 9, 3);
    for (const key of [
      'window',
      'requests',
      'attempts',
      'retries',
      'tokens',
      'tpm',
      'ttft_ms',
      'latency_ms',
      'tpot_ms',
      'utilization',
      'connections',
      'event_loop',
      'buckets_ms',
      'verdict',
    ]) {
      expect(r).toHaveProperty(key);
    }
    expect(r.utilization.limit).toBe(5);
    // The per-second token series spreads each request over its decode, and loses none.
    const perSecond = r.detail.per_second.reduce((a, b) => a + b.tokens, 0);
    expect(perSecond).toBeCloseTo(r.tokens.completion, 0);
    expect(r.detail.per_second.filter((b) => b.tokens > 0).length).toBeGreaterThan(1);
    // The generated log has no CPU figures: nothing is made up.
    expect(r.client_cpu).toEqual({
      shard_cpu_ms: 0,
      us_per_request: null,
      us_per_completion_token: null,
      reads_per_completion_token: null,
    });
  });
});

describe('queue_wait vs admission_gap (hand-computed)', () => {
  it('charges each waiting request the share of slots left free, not every free moment in full', async () => {
    // 4 slots, 5 requests enqueued at once. A, B, C start at 0 (1 slot free, D and E wait); D starts
    // at 100 (all busy); A ends at 200, and E starts at 300 (1 slot free meanwhile).
    //   D: 0–100 with 1 of 4 slots free → 25 ms admission_gap, 75 ms queue_wait.
    //   E: 0–100 ¼ free, 100–200 none, 200–300 ¼ free → 50 ms admission_gap, 250 ms queue_wait.
    const log = handLog();
    fiveOnFourSlots(log);
    const r = await log.analyzeLog(600);
    expect(r.buckets_ms.admission_gap).toBeCloseTo(25 + 50, 6);
    expect(r.buckets_ms.queue_wait).toBeCloseTo(75 + 250, 6);
    // The utilization figure stays plain time: a slot was free with work waiting for 0–100 and 200–300.
    expect(r.utilization.admission_gap_s).toBeCloseTo(0.2, 6);
    // Work waited 0–300 (E until 300), a slot free for 200 ms of it: exact time, not samples a second.
    expect(r.detail.not_work_conserving_fraction).toBeCloseTo(2 / 3, 6);
  });

  it('leaves the stretch before a run started again out of its duration and rates', async () => {
    // A run of one request, then the same run started again 10 s after its last event (a resume, or a
    // sweep re-run over a finished stage): the 10 s were no run's time.
    const { at, attempt, analyzeLog } = handLog();
    at(0, 0, 'shard_start', { pid: 2, concurrency: 4 });
    at(0, -1, 'enqueue', { id: 'A', line: 1 });
    attempt('A', 0, 200);
    at(250, -1, 'run_end', { status: 'finished', succeeded: 1, failed: 0, rejected: 0 });
    at(10_250, -1, 'run_start', { config: {}, resumed: true, pid: 3 });
    at(10_250, 0, 'shard_start', { pid: 4, concurrency: 4 });
    at(10_250, -1, 'enqueue', { id: 'B', line: 2 });
    attempt('B', 10_300, 10_500);
    const r = await analyzeLog(10_600);
    expect(r.window.idle_s).toBe(10);
    expect(r.window.duration_s).toBeCloseTo(0.6, 9);
    // 10 tokens over 0.6 s of running, not over 10.6 s of window.
    expect(r.tpm.run_average).toBeCloseTo(1000, 6);
    // Nor was it time at a limit: 4 slots for 0–250 and 10,250–10,600.
    expect(r.detail.by_limit.map((l) => [l.limit, l.seconds])).toEqual([[4, 0.6]]);
  });

  it('says where an adaptive limit settled: its level the last time work waited, not a cut in the tail', async () => {
    // auto: 4 slots, up to 6 at 50 ms while D and E wait; the backlog empties at 300 (E starts); a
    // cut to 3 at 450, with nothing left waiting, bound nothing.
    const log = handLog();
    log.at(50, 0, 'limit', { old: 4, new: 6, reason: 'probe', concurrency: 6 });
    fiveOnFourSlots(log);
    log.at(450, 0, 'limit', { old: 6, new: 3, reason: 'ttft_gradient', concurrency: 3 });
    const r = await log.analyzeLog(600);
    expect(r.utilization.limit_final).toBe(3);
    expect(r.utilization.limit_settled).toBe(6);
    // Time at each level, exact: 4 for 0–50, 6 for 50–450, 3 for the last 150 ms.
    expect(r.detail.by_limit.map((l) => [l.limit, l.seconds])).toEqual([
      [3, 0.15],
      [4, 0.05],
      [6, 0.4],
    ]);
    // TTFT filed under the level each attempt started at: A–C at 4, D and E at 6.
    expect(r.detail.by_limit.map((l) => l.ttft_p50)).toEqual([null, 10, 10]);
  });
});

describe('torn event files', () => {
  it('leaves out a line a crash tore, counts it, and says so in the printed report', async () => {
    const dir = writeSynthRun(tempDir('sl-torn-'), { requests: 20, limit: 4 });
    const clean = await analyze([dir]);
    appendFileSync(join(dir, 'events', 'shard-000.jsonl'), '{"v":1,"ts":1795780801000,"run":"synth","sha');
    const torn = await analyze([dir]);
    expect(torn.detail.bad_lines).toBe(1);
    expect(torn.requests).toEqual(clean.requests);
    expect(formatReport(torn)).toContain('note: 1 event line was not valid JSON and left out');
    expect(formatReport(clean)).not.toContain('note:');
  });
});

describe('the requests a report names', () => {
  it('keeps the 10 slowest (ties in arrival order) and the last 10 failed attempts, named once at the end', () => {
    const n = new NotableRequests();
    const e2e = [5, 50, 7, 50, 1, 90, 3, 8, 60, 2, 70, 4, 50.0004, 9];
    e2e.forEach((ms, rid) => n.noteFinished(rid, ms, 1, 'succeeded'));
    // 50.0004 rounds to 50.000 and ties with the earlier 50s, so it comes after them.
    expect(n.slowest.map((s) => [s.rid, s.e2e_ms])).toEqual([
      [5, 90],
      [10, 70],
      [8, 60],
      [1, 50],
      [3, 50],
      [12, 50],
      [13, 9],
      [7, 8],
      [2, 7],
      [0, 5],
    ]);
    for (let rid = 0; rid < 15; rid++)
      n.noteFailedAttempt({ rid, attempt: 1, cause: 'http_5xx', status: 503, error: `boom ${rid}` });
    expect(n.recentErrors.map((x) => x.rid)).toEqual([5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    const named = n.named(new Map(n.rids().map((rid) => [rid, `req-${rid}`])));
    expect(named.slowest[0]).toEqual({ id: 'req-5', e2e_ms: 90, attempts: 1, outcome: 'succeeded' });
    expect(named.recentErrors.at(-1)).toEqual({
      id: 'req-14',
      attempt: 1,
      cause: 'http_5xx',
      status: 503,
      error: 'boom 14',
    });
  });
});

/**
 * 4 slots, 5 requests enqueued at once: A, B, C start at 0 (D and E wait); D starts at 100; A ends at
 * 200, E starts at 300; B–E end at 500.
 */
function fiveOnFourSlots({ at, attempt }: ReturnType<typeof handLog>): void {
  at(0, 0, 'shard_start', { pid: 2, concurrency: 4 });
  for (const id of 'ABCDE') at(0, -1, 'enqueue', { id, line: 1 });
  attempt('A', 0, 200);
  attempt('B', 0, 500);
  attempt('C', 0, 500);
  attempt('D', 100, 500);
  attempt('E', 300, 500);
}

/** A hand-written event log of one shard: events at ms offsets, written out and analyzed. */
function handLog() {
  const t0 = Date.UTC(2026, 10, 27, 12, 0, 0);
  const ev: { shard: number; ts: number }[] = [];
  const at = (ms: number, shard: number, type: string, fields: object = {}) =>
    ev.push({ v: 1, ts: t0 + ms, run: 'h', shard, type, ...fields } as { shard: number; ts: number });
  at(0, -1, 'run_start', { config: {}, resumed: false, pid: 1 });
  const attempt = (id: string, start: number, end: number) => {
    at(start, 0, 'attempt_start', { id, attempt: 1 });
    at(start + 10, 0, 'first_token', { id, attempt: 1 });
    at(end, 0, 'attempt_end', {
      id,
      attempt: 1,
      outcome: 'ok',
      status: 200,
      completion_tokens: 5,
      prompt_tokens: 1,
      last_token_ts: t0 + end,
    });
    at(end, 0, 'request_end', { id, outcome: 'succeeded', attempts: 1, completion_tokens: 5, prompt_tokens: 1 });
  };
  const analyzeLog = async (endMs: number) => {
    at(endMs, 0, 'shard_end', { requests: 5 });
    at(endMs, -1, 'run_end', { status: 'finished', succeeded: 5, failed: 0, rejected: 0 });
    const dir = tempDir('sl-hand-');
    mkdirSync(join(dir, 'events'));
    const lines = (shard: number) =>
      `${ev
        .filter((e) => e.shard === shard)
        .sort((a, b) => a.ts - b.ts)
        .map((e) => JSON.stringify(e))
        .join('\n')}\n`;
    writeFileSync(join(dir, 'events', 'coordinator.jsonl'), lines(-1));
    writeFileSync(join(dir, 'events', 'shard-000.jsonl'), lines(0));
    return analyze([dir]);
  };
  return { at, attempt, analyzeLog };
}
