#!/usr/bin/env node
// Fixed 16 (the default), fixed at the knee, and `--concurrency auto`, side by side in one run
// against a simulator whose capacity knee is at 24 in flight (the `quota` profile without its quotas:
// 24 batch slots; past 24, requests wait in the server's queue and TTFT climbs).
//
//   node bench/adaptive.mjs [--requests 4000] [--rounds 1] [--max-tokens 32] [--slots 24]
//
// --slots 12: a knee at 12 instead (the issue "The verdict is true on a real server" asks auto for
// >= 95% of the TPM of the bound fixed at the knee with TTFT p99 <= 1.5x).
//
// Each round runs the three configurations in a rotated order, so drift on a noisy machine spreads
// over all of them. Reports completion TPM (run average), server TTFT p99 and retry rate per run, and
// the medians across rounds. Target (issue #14): auto within 10% of the best fixed bound's TPM with
// TTFT p99 no worse than 1.2× that bound's.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runShardline, startSimProcess } from './sim-process.mjs';
import { writeChatInput } from './chat-input.mjs';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '4000' },
    rounds: { type: 'string', default: '1' },
    'max-tokens': { type: 'string', default: '32' },
    slots: { type: 'string', default: '24' },
  },
});
const knee = Number(values.slots);
const CONFIGS = [
  { name: 'fixed 16 (default)', concurrency: '16' },
  { name: `fixed ${knee} (the knee)`, concurrency: String(knee) },
  { name: 'auto', concurrency: 'auto' },
];

const dir = mkdtempSync(join(tmpdir(), 'sl-bench-adaptive-'));
const profile = join(dir, 'knee.yaml');
writeFileSync(
  profile,
  `base: quota\nslots: ${knee}\nfaults:\n  rate_limit:\n    tokens_per_min: 0\n    requests_per_min: 0\n`,
);
const input = writeChatInput(join(dir, 'input.jsonl'), Number(values.requests), {
  model: 'm',
  maxTokens: Number(values['max-tokens']),
  content: (i) => `question ${i}`,
});

const sim = await startSimProcess(profile);
const rows = new Map(CONFIGS.map((c) => [c.name, []]));
try {
  for (let round = 0; round < Number(values.rounds); round++) {
    for (let k = 0; k < CONFIGS.length; k++) {
      const c = CONFIGS[(k + round) % CONFIGS.length];
      const out = join(dir, `r${round}-${c.concurrency}`);
      await runShardline([
        'run',
        input,
        '--endpoint',
        `${sim.url}/v1`,
        '--out',
        out,
        '--concurrency',
        c.concurrency,
        '--progress',
        'off',
      ]);
      const r = JSON.parse(await runShardline(['report', out, '--json']));
      const row = {
        tpm: r.tpm.run_average,
        ttftP99Ms: r.ttft_ms.server.p99,
        retryRate: r.retries.rate ?? 0,
        meanLimit: r.utilization.mean_in_flight,
      };
      rows.get(c.name).push(row);
      console.error(
        `round ${round + 1} ${c.name}: ${Math.round(row.tpm)} tok/min, TTFT p99 ${row.ttftP99Ms.toFixed(0)} ms, ` +
          `retries ${(row.retryRate * 100).toFixed(1)}%, mean in flight ${row.meanLimit.toFixed(1)}`,
      );
    }
  }
} finally {
  sim.stop();
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const summary = CONFIGS.map((c) => {
  const rs = rows.get(c.name);
  return {
    name: c.name,
    tpm: median(rs.map((r) => r.tpm)),
    ttftP99Ms: median(rs.map((r) => r.ttftP99Ms)),
    retryRate: median(rs.map((r) => r.retryRate)),
    meanInFlight: median(rs.map((r) => r.meanLimit)),
  };
});
// Against the bound fixed at the knee: past it a fixed bound may match its TPM while TTFT p99 soars
// (fixed 16 on a knee of 12: the same TPM, 11× the p99), so "the best TPM" is the wrong yardstick.
const best = summary.find((s) => s.name.startsWith(`fixed ${knee} `));
const auto = summary.find((s) => s.name === 'auto');
console.log(`| configuration | TPM | TTFT p99 ms | retries | mean in flight |`);
console.log(`|---|---|---|---|---|`);
for (const s of summary)
  console.log(
    `| ${s.name} | ${Math.round(s.tpm).toLocaleString('en-US')} | ${s.ttftP99Ms.toFixed(0)} | ` +
      `${(s.retryRate * 100).toFixed(1)}% | ${s.meanInFlight.toFixed(1)} |`,
  );
const tpmRatio = auto.tpm / best.tpm;
const p99Ratio = auto.ttftP99Ms / best.ttftP99Ms;
console.log(
  `\nauto vs the bound fixed at the knee (${best.name}): TPM ${(tpmRatio * 100).toFixed(1)}% (target ≥ 90%), TTFT ` +
    `p99 ${p99Ratio.toFixed(2)}× (target ≤ 1.2×): ${tpmRatio >= 0.9 && p99Ratio <= 1.2 ? 'met' : 'not met'}`,
);
