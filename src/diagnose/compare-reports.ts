import { BUCKETS, type Report } from './report-types.js';

export interface CompareRow {
  name: string;
  a: number | null;
  b: number | null;
  delta: number | null;
  delta_pct: number | null;
  /** Which direction is better for this figure. */
  better: 'higher' | 'lower';
  improved: boolean | null;
}

/** `shardline compare --json` (keys are a public contract: add, never rename). */
export interface Comparison {
  schema: 'shardline.compare/v1';
  a: { run_id: string | null; bound: string; dominant: string | null };
  b: { run_id: string | null; bound: string; dominant: string | null };
  rows: CompareRow[];
  stability: { judgement: 'improved' | 'regressed' | 'unstable' | 'unchanged'; reasons: string[] };
}

/** Thresholds for the stability judgement. */
export const COMPARE_THRESHOLDS = {
  throughputGain: 0.05,
  retryRateRise: 0.02,
  tailRise: 0.1,
  successDrop: 0.005,
} as const;

/**
 * Before/after table with deltas and a stability judgement: a throughput gain that comes with rising
 * retries, a rising tail or falling success is `unstable` — not something to ship. Pure.
 */
export function compareReports(a: Report, b: Report): Comparison {
  const perReq = (r: Report, v: number) => (r.requests.total > 0 ? v / r.requests.total : null);
  const rows: CompareRow[] = [
    row('tpm_peak', a.tpm.aggregate_peak, b.tpm.aggregate_peak, 'higher'),
    row('tpm_average', a.tpm.run_average, b.tpm.run_average, 'higher'),
    row('ttft_e2e_p95_ms', a.ttft_ms.e2e.p95, b.ttft_ms.e2e.p95, 'lower'),
    row('ttft_e2e_p99_ms', a.ttft_ms.e2e.p99, b.ttft_ms.e2e.p99, 'lower'),
    row('ttft_server_p95_ms', a.ttft_ms.server.p95, b.ttft_ms.server.p95, 'lower'),
    row('ttft_server_p99_ms', a.ttft_ms.server.p99, b.ttft_ms.server.p99, 'lower'),
    row('retry_rate', a.retries.rate, b.retries.rate, 'lower'),
    row('success_rate', a.requests.success_rate, b.requests.success_rate, 'higher'),
    row('connections_per_request', a.connections.per_request, b.connections.per_request, 'lower'),
    ...BUCKETS.map((k) => row(`${k}_ms_per_request`, perReq(a, a.buckets_ms[k]), perReq(b, b.buckets_ms[k]), 'lower')),
    ...endpointRows(a, b),
    ...upstreamRows(a, b),
  ];
  const T = COMPARE_THRESHOLDS;
  const get = (n: string) => rows.find((r) => r.name === n)!;
  const reasons: string[] = [];
  const tpm = get('tpm_average');
  const gain = tpm.a !== null && tpm.b !== null && tpm.a > 0 && tpm.b > tpm.a * (1 + T.throughputGain);
  const loss = tpm.a !== null && tpm.b !== null && tpm.a > 0 && tpm.b < tpm.a * (1 - T.throughputGain);
  const rr = get('retry_rate');
  const retriesUp = rr.a !== null && rr.b !== null && rr.b > rr.a + T.retryRateRise;
  const tail = get('ttft_e2e_p99_ms');
  const tailUp = tail.a !== null && tail.b !== null && tail.a > 0 && tail.b > tail.a * (1 + T.tailRise);
  const tailDown = tail.a !== null && tail.b !== null && tail.b < tail.a * (1 - T.tailRise);
  const sr = get('success_rate');
  const successDown = sr.a !== null && sr.b !== null && sr.b < sr.a - T.successDrop;
  if (gain) reasons.push(`throughput up ${fmtPct(tpm.delta_pct)} (run-average TPM ${fmt(tpm.a)} → ${fmt(tpm.b)})`);
  if (loss) reasons.push(`throughput down ${fmtPct(tpm.delta_pct)}`);
  if (retriesUp) reasons.push(`retry rate up ${pp(rr.a!)} → ${pp(rr.b!)}`);
  if (tailUp) reasons.push(`TTFT p99 up ${fmt(tail.a)} → ${fmt(tail.b)} ms`);
  if (tailDown) reasons.push(`TTFT p99 down ${fmt(tail.a)} → ${fmt(tail.b)} ms`);
  if (successDown) reasons.push(`success rate down ${pp(sr.a!)} → ${pp(sr.b!)}`);
  const worse = retriesUp || tailUp || successDown;
  let judgement: Comparison['stability']['judgement'];
  if (gain && worse) judgement = 'unstable';
  else if (loss || worse) judgement = 'regressed';
  else if (gain || tailDown) judgement = 'improved';
  else judgement = 'unchanged';
  return {
    schema: 'shardline.compare/v1',
    a: { run_id: a.run_id, bound: a.verdict.bound, dominant: a.verdict.dominant },
    b: { run_id: b.run_id, bound: b.verdict.bound, dominant: b.verdict.dominant },
    rows,
    stability: { judgement, reasons },
  };
}

/** Rows per endpoint both runs used, when either used more than chat: throughput and latency p95. */
function endpointRows(a: Report, b: Report): CompareRow[] {
  const ea = a.by_endpoint ?? {};
  const eb = b.by_endpoint ?? {};
  const names = Object.keys(ea).filter((n) => n in eb);
  if (names.length === 0 || (names.length === 1 && names[0] === 'chat')) return [];
  return names.flatMap((n) => [
    n === 'embeddings'
      ? row(`${n}_input_tpm`, ea[n]!.input_tpm, eb[n]!.input_tpm, 'higher')
      : row(`${n}_tpm`, ea[n]!.tpm, eb[n]!.tpm, 'higher'),
    row(`${n}_latency_p95_ms`, ea[n]!.latency_ms.p95, eb[n]!.latency_ms.p95, 'lower'),
  ]);
}

/**
 * Rows per server when both runs had several (by place in `--endpoint`'s list): throughput and the median
 * answer's time, so a replica that got slower between runs shows by itself.
 */
function upstreamRows(a: Report, b: Report): CompareRow[] {
  const ua = a.by_upstream ?? {};
  const ub = b.by_upstream ?? {};
  if (Object.keys(ua).length < 2 || Object.keys(ub).length < 2) return [];
  const keys = Object.keys(ua).filter((k) => k in ub);
  return keys.flatMap((k) => [
    row(`endpoint_${Number(k) + 1}_tpm`, ua[k]!.tpm, ub[k]!.tpm, 'higher'),
    row(`endpoint_${Number(k) + 1}_answer_p50_ms`, ua[k]!.answer_ms.p50, ub[k]!.answer_ms.p50, 'lower'),
  ]);
}

function row(name: string, a: number | null, b: number | null, better: 'higher' | 'lower'): CompareRow {
  const delta = a !== null && b !== null ? b - a : null;
  const deltaPct = a !== null && b !== null && a !== 0 ? ((b - a) / Math.abs(a)) * 100 : null;
  // Exact in the JSON; a difference below a billionth of the value is floating-point noise, not a change.
  const same = delta === null || Math.abs(delta) <= 1e-9 * Math.max(Math.abs(a ?? 0), Math.abs(b ?? 0), 1);
  const improved = same ? null : better === 'higher' ? delta > 0 : delta < 0;
  return { name, a, b, delta, delta_pct: deltaPct, better, improved };
}

function fmt(x: number | null): string {
  return x === null ? '–' : Math.round(x).toLocaleString('en-US');
}
function fmtPct(x: number | null): string {
  return x === null ? '–' : `${Math.abs(x).toFixed(1)}%`;
}
function pp(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}
