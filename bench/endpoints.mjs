#!/usr/bin/env node
// Several endpoints: does one run over three servers of different capacities get what the three give
// alone? Three simulator processes (8, 16 and 32 slots, the `realistic` step costs), each run alone with
// `--concurrency auto`, then one run over all three (`--endpoint` three times); the figure is the
// combined run's completion tokens/min over the sum of the three alone, rounds alternating, medians.
//
//   node bench/endpoints.mjs [--requests 1500] [--rounds 3]
//
// Target (issue #25): the run over three reaches ≥ 90% of the sum of what each sustains alone.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { run } from '../dist/index.js';
import { startSimProcess } from './sim-process.mjs';
import { writeChatInput } from './chat-input.mjs';

const { values } = parseArgs({
  options: { requests: { type: 'string', default: '1500' }, rounds: { type: 'string', default: '3' } },
});
const dir = mkdtempSync(join(tmpdir(), 'sl-bench-endpoints-'));
const slots = [8, 16, 32];
const sims = [];
for (const s of slots) {
  const file = join(dir, `slots-${s}.yaml`);
  writeFileSync(file, `base: realistic\nname: slots-${s}\nslots: ${s}\nqueue_limit: 4096\n`);
  sims.push(await startSimProcess(file));
}
const input = (n) => writeChatInput(join(dir, `in-${n}.jsonl`), n, { maxTokens: 64, stream: true });
const n = Number(values.requests);
// Alone, each server gets the share of the job the combined run would give it (by slots), so every
// run lasts about as long and start-up weighs the same.
const alone = slots.map((s) => input(Math.round((n * s) / slots.reduce((a, b) => a + b, 0))));
const all = input(n);
let k = 0;
async function tpm(endpoints, path) {
  const out = join(dir, `out-${k++}`);
  const s = await run({ input: path, endpoint: endpoints, out, concurrency: 'auto', progress: 'off' });
  if (s.requests.failed > 0) throw new Error(`${s.requests.failed} failed`);
  rmSync(out, { recursive: true, force: true });
  return s.tokens.completion / (s.duration_s / 60);
}
const rows = [];
try {
  for (let r = 0; r < Number(values.rounds); r++) {
    const each = [];
    for (let i = 0; i < sims.length; i++) each.push(await tpm(`${sims[i].url}/v1`, alone[i]));
    const together = await tpm(
      sims.map((s) => `${s.url}/v1`),
      all,
    );
    rows.push({ each, together, ratio: together / each.reduce((a, b) => a + b, 0) });
  }
} finally {
  for (const s of sims) s.stop();
  rmSync(dir, { recursive: true, force: true });
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (x, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
console.log(
  `three servers (${slots.join(', ')} slots, realistic steps), --concurrency auto, ${fmt(n)} requests × 64 tokens ` +
    `streamed, medians of ${values.rounds} rounds:`,
);
slots.forEach((s, i) =>
  console.log(`  ${s}-slot server alone        ${fmt(median(rows.map((r) => r.each[i])))} tok/min`),
);
console.log(`  sum of the three alone      ${fmt(median(rows.map((r) => r.each.reduce((a, b) => a + b, 0))))} tok/min`);
console.log(`  one run over all three      ${fmt(median(rows.map((r) => r.together)))} tok/min`);
const ratio = median(rows.map((r) => r.ratio));
console.log(
  `  → ${fmt(ratio * 100, 1)}% of the sum (rounds: ${rows.map((r) => `${fmt(r.ratio * 100, 1)}%`).join(', ')}; ` +
    `target ≥ 90%): ${ratio >= 0.9 ? 'met' : 'not met'}`,
);
