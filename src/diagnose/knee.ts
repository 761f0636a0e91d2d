/** One stage of a sweep: a run at a fixed concurrency, summed up from its report. */
export interface SweepStage {
  level: number;
  /** The stage's run directory. */
  dir: string;
  /** Completion tokens per minute over the stage (the report's run average). */
  tpm: number;
  ttftP95Ms: number | null;
  ttftP99Ms: number | null;
  /** (attempts − requests) / attempts. */
  retryRate: number | null;
  successRate: number | null;
}

export interface Knee {
  /** The level to run at; null when no stage met the SLO with a low retry rate. */
  level: number | null;
  /** The TTFT p95 bound the stages were held to, ms. */
  sloTtftP95Ms: number;
  /** Whether the SLO was given or derived (3 × the lightest stage's TTFT p95). */
  sloDerived: boolean;
  why: string;
  /** Each stage's part in the choice, by level: chosen, or why not. */
  reasons: { level: number; reason: string }[];
}

/** A stage retrying more than this is fighting the server or a quota, whatever its throughput. @default 0.05 */
export const MAX_RETRY_RATE = 0.05;
/**
 * Throughputs within this share of the best count as the same: the lower level wins. 3%, not 5%:
 * against llama-server with 4 slots, 2 in flight gave 4.7% less than 4 and was chosen at 5%.
 */
export const SAME_TPM = 0.03;
/** Without an SLO, TTFT p95 may be this multiple of the lightest stage's. */
const DERIVED_SLO_FACTOR = 3;

/**
 * The knee of a sweep: the highest throughput among stages whose TTFT p95 meets the SLO and whose
 * retry rate stays under 5%, taking the lowest level within 3% of it (past the knee more in flight
 * adds only queueing). Pure: stages in, answer out.
 */
export function findKnee(stages: readonly SweepStage[], sloTtftP95Ms?: number): Knee {
  const lightest = [...stages].sort((a, b) => a.level - b.level).find((s) => s.ttftP95Ms !== null);
  const derived = sloTtftP95Ms === undefined;
  const slo = sloTtftP95Ms ?? (lightest ? lightest.ttftP95Ms! * DERIVED_SLO_FACTOR : Infinity);
  const missesSlo = (s: SweepStage) => s.ttftP95Ms === null || s.ttftP95Ms > slo;
  const retries = (s: SweepStage) => (s.retryRate ?? 0) > MAX_RETRY_RATE;
  const ok = stages.filter((s) => !missesSlo(s) && !retries(s));
  const sorted = [...stages].sort((a, b) => a.level - b.level);
  const unfit = (s: SweepStage) =>
    missesSlo(s)
      ? `TTFT p95 ${s.ttftP95Ms === null ? '–' : `${fmt(s.ttftP95Ms)} ms`} over the SLO (${fmt(slo)} ms)`
      : `${((s.retryRate ?? 0) * 100).toFixed(1)}% retries, over ${MAX_RETRY_RATE * 100}%`;
  if (ok.length === 0) {
    return {
      level: null,
      sloTtftP95Ms: slo,
      sloDerived: derived,
      why: `no stage kept TTFT p95 ≤ ${fmt(slo)} ms with under ${MAX_RETRY_RATE * 100}% retries`,
      reasons: sorted.map((s) => ({ level: s.level, reason: unfit(s) })),
    };
  }
  const best = Math.max(...ok.map((s) => s.tpm));
  const knee = ok.filter((s) => s.tpm >= best * (1 - SAME_TPM)).sort((a, b) => a.level - b.level)[0]!;
  const reasons = sorted.map((s) => {
    if (s === knee)
      return { level: s.level, reason: 'chosen: the lowest level within 3% of the best throughput that met the SLO' };
    if (!ok.includes(s)) return { level: s.level, reason: unfit(s) };
    const vs = (s.tpm / knee.tpm - 1) * 100;
    return {
      level: s.level,
      reason:
        s.level < knee.level
          ? `${Math.abs(vs).toFixed(1)}% less throughput than ${knee.level}`
          : vs >= 0
            ? `only ${vs.toFixed(1)}% more throughput than ${knee.level} (within ${SAME_TPM * 100}%): more in ` +
              `flight would only queue`
            : `${Math.abs(vs).toFixed(1)}% less throughput than ${knee.level}: more in flight gained nothing`,
    };
  });
  const higher = reasons.filter((r) => r.level > knee.level);
  return {
    level: knee.level,
    sloTtftP95Ms: slo,
    sloDerived: derived,
    why:
      `${fmt(knee.tpm)} tokens/min with TTFT p95 ${fmt(knee.ttftP95Ms!)} ms ≤ ${fmt(slo)} ms` +
      (derived ? ` (3 × the lightest stage's, as no --slo-ttft-p95-ms was given)` : '') +
      ` and ${((knee.retryRate ?? 0) * 100).toFixed(1)}% retries` +
      (higher.length
        ? `; ${higher.map((r) => `${r.level}: ${r.reason}`).join('; ')}`
        : '; no higher level was measured'),
    reasons,
  };
}

function fmt(x: number): string {
  return Math.round(x).toLocaleString('en-US');
}
