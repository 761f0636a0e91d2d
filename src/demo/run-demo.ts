import { rmSync, writeFileSync } from 'node:fs';
import { ensureDir } from '../util/ensure-dir.js';
import { join, resolve } from 'node:path';
import { analyze } from '../diagnose/analyze.js';
import { compareReports, type Comparison } from '../diagnose/compare-reports.js';
import type { Report } from '../diagnose/report-types.js';
import { sampleMinute } from '../provenance/sample.js';
import { verifySample, type VerifyResult } from '../provenance/verify.js';
import { run, type RunSummary } from '../runner/run.js';
import { builtinProfiles } from '../sim/builtin-profiles.js';
import { startSim } from '../sim/start-sim.js';
import type { RunOptionsInput } from '../config/run-options.js';

/** Options of `shardline demo`. */
export interface DemoOptions {
  /** Where both runs, the sample and the HTML report go. @default ./shardline-demo */
  out?: string;
  /** A smaller workload that finishes in well under 30 s. @default false */
  quick?: boolean;
  /** Requests per run. @default 600 (quick: 320) */
  requests?: number;
  /** @default 1 */
  seed?: number;
  /** Progress lines (stderr). */
  log?: (line: string) => void;
  /** Writes the HTML report; injected so the demo does not depend on the report stage's HTML. */
  writeHtml?: (path: string, a: Report, b: Report, comparison: Comparison, sample: unknown) => Promise<void> | void;
}

export interface DemoResult {
  out: string;
  naive: { summary: RunSummary; report: Report };
  shardline: { summary: RunSummary; report: Report };
  comparison: Comparison;
  samplePath: string;
  verification: VerifyResult;
  htmlPath: string | undefined;
}

/** The two configurations the demo contrasts, over the same workload against the same server. */
export const DEMO_CONFIGS: Record<'naive' | 'shardline', Partial<RunOptionsInput>> = {
  // One big worker, everything in flight at once, a new connection per request, and the
  // fixed-sleep retry loop hand-written clients run.
  naive: { shards: 1, concurrency: 100_000, keepAlive: false, retryMode: 'fixed', retryBackoffS: 0.5, maxAttempts: 60 },
  // Two shards with bounded in-flight sized to the server (slots + queue), keep-alive, backoff
  // with jitter that honours Retry-After.
  shardline: { shards: 2, concurrency: 32, keepAlive: true, retryMode: 'backoff', retryBackoffS: 0.5, maxAttempts: 20 },
};

/**
 * Reproduce the classic incident on the simulator's `incident` profile and fix it: run the same
 * workload with the naive configuration and with shardline's, then compare, diagnose, sample and
 * verify a minute. Every number comes from the two runs' events.
 */
export async function runDemo(o: DemoOptions = {}): Promise<DemoResult> {
  const out = resolve(o.out ?? 'shardline-demo');
  // Quick keeps the oversubscription that makes the incident (several times the server's 64 places)
  // with shorter answers, so it finishes in well under 30 s.
  const n = o.requests ?? (o.quick ? 320 : 600);
  const maxTokens = o.quick ? 64 : 128;
  const seed = o.seed ?? 1;
  const log = o.log ?? (() => {});
  ensureDir(out);
  const input = join(out, 'requests.jsonl');
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    lines.push(
      JSON.stringify({
        custom_id: `demo-${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: {
          model: 'demo-model',
          messages: [{ role: 'user', content: `Summarise ticket #${i} for the on-call engineer.` }],
          max_tokens: maxTokens,
        },
      }),
    );
  }
  writeFileSync(input, `${lines.join('\n')}\n`);
  const profile = builtinProfiles.get('incident')!;
  const runs: Partial<Record<'naive' | 'shardline', { summary: RunSummary; report: Report }>> = {};
  for (const name of ['naive', 'shardline'] as const) {
    const dir = join(out, name);
    rmSync(dir, { recursive: true, force: true }); // a fresh run, never a resume of an old demo
    // A fresh server per run, so neither inherits the other's queue or connections.
    const sim = await startSim({ profile, seed });
    log(`demo: ${name} run — ${n} requests against the '${profile.name}' simulator profile (${sim.url})`);
    try {
      const summary = await run({
        input,
        endpoint: `${sim.url}/v1`,
        out: dir,
        seed,
        progress: 'off',
        ...DEMO_CONFIGS[name],
      });
      log(
        `demo: ${name}: ${summary.requests.succeeded} succeeded, ${summary.requests.failed} failed, ` +
          `${summary.retries} retries in ${summary.duration_s.toFixed(1)} s`,
      );
      runs[name] = { summary, report: await analyze([dir]) };
    } finally {
      await sim.close();
    }
  }
  const naive = runs.naive!;
  const shardline = runs.shardline!;
  const comparison = compareReports(naive.report, shardline.report);
  writeFileSync(join(out, 'compare.json'), `${JSON.stringify(comparison, null, 2)}\n`);
  const sample = await sampleMinute(join(out, 'shardline'));
  const samplePath = join(out, 'sample.json');
  writeFileSync(samplePath, `${JSON.stringify(sample, null, 2)}\n`);
  const verification = await verifySample(samplePath);
  let htmlPath: string | undefined;
  if (o.writeHtml) {
    htmlPath = join(out, 'report.html');
    await o.writeHtml(htmlPath, naive.report, shardline.report, comparison, sample);
  }
  return { out, naive, shardline, comparison, samplePath, verification, htmlPath };
}
