import type { PercentileSummary } from '../metrics/percentiles.js';
import { BUCKETS, type Report } from '../diagnose/report-types.js';
import { describeDisagreement } from '../diagnose/results-check.js';

/** The human summary `shardline report` prints. */
export function formatReport(r: Report): string {
  const out: string[] = [];
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  const p = (s: PercentileSummary) =>
    s.count
      ? `p50 ${f1(s.p50)}  p95 ${f1(s.p95)}  p99 ${f1(s.p99)}  max ${f1(s.max)} ms (n=${n(s.count)})`
      : 'no samples';
  out.push(
    `shardline report — run ${r.run_id ?? '(unknown)'}  ${r.window.start ?? ''} → ${r.window.end ?? ''} ` +
      `(${r.window.duration_s.toFixed(1)} s` +
      (r.window.idle_s ? ` running; ${r.window.idle_s.toFixed(1)} s idle before a resume, left out of rates` : '') +
      ')',
  );
  out.push('');
  out.push(
    r.verdict.bound === 'refused'
      ? 'VERDICT: REFUSED: nothing succeeded — the endpoint refused the job'
      : `VERDICT: ${r.verdict.bound.toUpperCase()}-bound` +
          (r.verdict.bound === 'healthy' ? ' (healthy)' : '') +
          (r.verdict.dominant ? `; dominant bucket: ${r.verdict.dominant}` : ''),
  );
  for (const f of r.verdict.findings) {
    out.push(`  [${f.severity}] ${f.mode}: ${f.evidence}`);
    out.push(`         → ${f.action}`);
  }
  if (r.verdict.findings.length === 0) out.push('  no failure mode found');
  out.push('');
  const rq = r.requests;
  out.push(
    `requests    ${n(rq.total)} total, ${n(rq.succeeded)} succeeded, ${n(rq.failed)} failed (success rate ` +
      `${rq.success_rate === null ? '–' : `${(rq.success_rate * 100).toFixed(2)}%`})`,
  );
  out.push(
    `attempts    ${n(r.attempts)}; retries ${n(r.retries.count)} (rate ${pctOrDash(r.retries.rate, 1)})${
      Object.keys(r.retries.causes).length
        ? ` — ${Object.entries(r.retries.causes)
            .map(([c, k]) => `${c} ${k}`)
            .join(', ')}`
        : ''
    }`,
  );
  out.push(
    `tokens      ${n(r.tokens.completion)} completion, ${n(r.tokens.prompt)} ` +
      `prompt${r.tokens.estimated ? `, ${n(r.tokens.estimated)} estimated` : ''}`,
  );
  out.push(
    `TPM         peak ${n(r.tpm.aggregate_peak)}${r.tpm.aggregate_peak_partial ? ' (partial minute, scaled)' : ''} ` +
      `at ${r.tpm.aggregate_peak_minute ?? '–'}; run average ${n(r.tpm.run_average)} completion tokens/min ` +
      `across shards`,
  );
  out.push(`TTFT        server ${p(r.ttft_ms.server)}`);
  out.push(`            e2e    ${p(r.ttft_ms.e2e)}`);
  out.push(`latency     e2e    ${p(r.latency_ms.e2e)}`);
  out.push(`TPOT               ${p(r.tpot_ms)}`);
  // A run that is not chat alone: each endpoint's own figures, in what its throughput counts.
  const endpoints = Object.entries(r.by_endpoint ?? {});
  if (endpoints.length > 1 || (endpoints.length === 1 && endpoints[0]![0] !== 'chat')) {
    for (const [name, e] of endpoints) {
      const throughput =
        name === 'embeddings'
          ? `${n(e.input_tpm)} input tokens/min, ${e.items_per_s.toFixed(1)} inputs/s`
          : name === 'other'
            ? `${e.items_per_s.toFixed(1)} requests/s`
            : `${n(e.tpm)} completion tokens/min`;
      out.push(
        `${name.padEnd(11)} ${n(e.requests)} requests (${n(e.failed)} failed); ${throughput}; latency ` +
          `${p(e.latency_ms)}${e.ttft_ms ? `; TTFT ${p(e.ttft_ms)}` : ''}`,
      );
    }
  }
  // A run over several servers: each one's share, speed and outages.
  const upstreams = Object.entries(r.by_upstream ?? {});
  if (upstreams.length > 1) {
    for (const [i, e] of upstreams) {
      out.push(
        `endpoint ${Number(i) + 1}  ${e.url}: ${n(e.requests)} requests (${(e.share * 100).toFixed(0)}%, ` +
          `${n(e.failed)} failed, ${n(e.retried_attempts)} retried attempts); ${n(e.tpm)} tok/min; answer ` +
          `${p(e.answer_ms)}${e.ttft_ms ? `; TTFT ${p(e.ttft_ms)}` : ''}; up to ${e.in_flight_limit} in flight` +
          (e.outages > 0 ? `; down ${e.outages}× (${e.down_s.toFixed(1)} s)` : ''),
      );
    }
  }
  const u = r.utilization;
  const settled = u.limit_settled && u.limit_settled !== u.limit_final ? `settled at ${u.limit_settled}, ` : '';
  const limit =
    u.limit_final && u.limit_final !== u.limit
      ? `${settled}${u.limit_final} at the end (at most ${u.limit})`
      : `${u.limit}`;
  out.push(
    `slots       limit ${limit}${u.shards > 1 ? ` over ${u.shards} shards` : ''}, mean in-flight ` +
      `${u.mean_in_flight.toFixed(1)}, mean backlog ${u.mean_backlog.toFixed(1)}, all busy ` +
      `${(u.busy_fraction * 100).toFixed(0)}% of the time, admission gaps ${u.admission_gap_s.toFixed(2)} s`,
  );
  const levels = r.detail.by_limit ?? [];
  if (levels.length > 1) {
    out.push(
      `            by limit: ${levels
        .filter((l) => l.seconds >= 1)
        .map((l) => `${l.limit} for ${l.seconds.toFixed(0)} s (${n(l.tpm)} tok/min, TTFT p50 ${f1(l.ttft_p50)} ms)`)
        .join('; ')}`,
    );
  }
  const c = r.connections;
  out.push(
    `connections ${n(c.opened)} opened (${c.per_request?.toFixed(2) ?? '–'} per request), ` +
      `connect ${p(c.connect_ms)}` +
      (c.stale_resends
        ? `; ${n(c.stale_resends)} stale (closed by the server) and sent again at once on a fresh one`
        : '') +
      (c.keepalive_off_shards
        ? `; the host closes connections after streamed answers without saying so: ${c.keepalive_off_shards} ` +
          `shard(s) stopped reusing them`
        : ''),
  );
  const o = r.outages;
  if (o.count > 0) {
    out.push(
      `outages     endpoint down ${o.count} time(s), ${o.down_s.toFixed(1)} s in all: dispatch paused; ` +
        `${n(o.paused_attempts)} attempts failed meanwhile, none charged to --max-attempts`,
    );
  }
  const loop = r.event_loop;
  const hold = loop.read_hold;
  out.push(
    `event loop  lag p99 ${loop.lag_p99_ms === null ? '–' : `${loop.lag_p99_ms.toFixed(1)} ms`}` +
      (loop.busy_p50 === null ? '' : `, shards busy ${(loop.busy_p50 * 100).toFixed(0)}% (median)`) +
      (loop.host_busy_p50 === null ? '' : `, machine CPU ${(loop.host_busy_p50 * 100).toFixed(0)}% busy`) +
      (loop.cpu_wait_p50 === null ? '' : `, waiting for a core ${(loop.cpu_wait_p50 * 100).toFixed(0)}% of the time`) +
      (hold && hold.held_fraction > 0
        ? `; reads held up to ${hold.max_ms} ms ${(hold.held_fraction * 100).toFixed(0)}% of the time`
        : ''),
  );
  const cpu = r.client_cpu;
  out.push(
    `client CPU  ${n(cpu.shard_cpu_ms)} ms in shards` +
      (cpu.us_per_request === null
        ? ''
        : ` (${n(cpu.us_per_request)} µs per attempt` +
          (cpu.us_per_completion_token === null
            ? ''
            : `, ${cpu.us_per_completion_token.toFixed(2)} µs per completion token`) +
          ')') +
      (cpu.reads_per_completion_token === null
        ? ''
        : `; ${cpu.reads_per_completion_token.toFixed(2)} socket reads per completion token`),
  );
  out.push('');
  const total = BUCKETS.reduce((a, k) => a + r.buckets_ms[k], 0);
  out.push('where request time went (summed over requests):');
  for (const k of BUCKETS) {
    const share = total > 0 ? r.buckets_ms[k] / total : 0;
    out.push(`  ${k.padEnd(16)} ${(share * 100).toFixed(1).padStart(5)}%  ${'█'.repeat(Math.round(share * 40))}`);
  }
  if (hold && hold.held_fraction > 0) {
    out.push('');
    out.push(
      `note: reads were held (--read-coalesce-ms) to spend less CPU per token; a stream's end was read up to ` +
        `${hold.max_ms} ms late, which is in its decode time`,
    );
  }
  const disagreement = r.results ? describeDisagreement(r.results) : undefined;
  if (disagreement) {
    out.push('');
    out.push(`warning: ${disagreement}`);
  }
  const bad = r.detail.bad_lines;
  if (bad > 0) {
    out.push('');
    out.push(
      `note: ${n(bad)} event line${bad === 1 ? ' was' : 's were'} not valid JSON and left out (a crash or a full ` +
        `disk can tear the last line of a file)`,
    );
  }
  return `${out.join('\n')}\n`;
}

function f1(x: number | null): string {
  return x === null ? '–' : x.toFixed(1);
}

/** A share as a percentage with `digits` decimals, or – when there is none. */
function pctOrDash(x: number | null, digits: number): string {
  return x === null ? '–' : `${(x * 100).toFixed(digits)}%`;
}
