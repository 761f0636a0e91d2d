#!/usr/bin/env node
// Does a freed slot start its next request at once? Shard prefetch (items a shard holds beyond its
// free slots) side by side in one run: none (pure pull: every freed slot waits for an IPC round
// trip to the coordinator), concurrency/8 (shardline before the third session) and one per slot
// (the default now), against the simulator in its own process.
//
//   node bench/dispatch.mjs [--requests 3000] [--rounds 2]
//
// Reports, from each run's own event log (analyze()): requests/s, mean in-flight over the limit, and
// the seconds during which a slot was free while work waited (admission gaps).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { analyze, run } from '../dist/index.js';
import { startSimProcess } from './sim-process.mjs';

const { values } = parseArgs({
  options: { requests: { type: 'string', default: '3000' }, rounds: { type: 'string', default: '2' } },
});
const n = Number(values.requests);
const rounds = Number(values.rounds);
const work = mkdtempSync(join(tmpdir(), 'sl-dispatch-'));
const input = join(work, 'in.jsonl');
writeFileSync(
  input,
  `${Array.from({ length: n }, (_, i) =>
    JSON.stringify({ custom_id: `r${i}`, body: { messages: [{ role: 'user', content: `q ${i}` }], max_tokens: 20 } }),
  ).join('\n')}\n`,
);

const scenarios = [
  // No server latency: requests last a few ms, so an IPC round trip is a large share of each.
  { name: 'fast profile, 20-token answers, concurrency 8', profile: 'fast', concurrency: 8 },
  { name: 'fast profile, 20-token answers, concurrency 64', profile: 'fast', concurrency: 64 },
  // A server that takes ~25 ms per answer and has room for every slot.
  {
    name: '5 ms decode steps (4 tokens each), 20-token answers, concurrency 64',
    profile: 'base: fast\nname: steps\ntokens_per_step: 4\nstep_ms_base: 5\nstep_ms_per_seq: 0\nprefill_ms_base: 0\n',
    concurrency: 64,
  },
];
const variants = [
  ['none (pure pull)', () => 0],
  ['concurrency/8', (c) => Math.ceil(c / 8)],
  ['one per slot (default)', () => undefined],
];

const fmt = (x, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
console.log(
  `shardline dispatch bench — node ${process.version}, ${new Date().toISOString()}, ${n} requests per run, ` +
    `${rounds} rounds, 1 shard`,
);
for (const sc of scenarios) {
  let profile = sc.profile;
  if (profile.includes('\n')) {
    profile = join(work, 'steps.yaml');
    writeFileSync(profile, sc.profile);
  }
  const sim = await startSimProcess(profile);
  console.log(`\n## ${sc.name}`);
  const rows = new Map(variants.map(([name]) => [name, []]));
  try {
    await run({
      input,
      endpoint: `${sim.url}/v1`,
      out: join(work, `warm-${Math.random()}`),
      concurrency: sc.concurrency,
      progress: 'off',
    });
    // Variants alternate within each round, so drift in the machine hits them alike.
    for (let r = 0; r < rounds; r++) {
      for (const [name, prefetchOf] of variants) {
        const out = join(work, `out-${Math.random().toString(36).slice(2)}`);
        const prefetch = prefetchOf(sc.concurrency);
        const t0 = performance.now();
        const s = await run({
          input,
          endpoint: `${sim.url}/v1`,
          out,
          concurrency: sc.concurrency,
          progress: 'off',
          ...(prefetch !== undefined ? { prefetch } : {}),
        });
        const wallS = (performance.now() - t0) / 1000;
        if (s.requests.succeeded !== n) throw new Error(`${name}: ${s.requests.succeeded}/${n} succeeded`);
        const u = (await analyze([out])).utilization;
        rows.get(name).push({ rps: n / wallS, inFlight: u.mean_in_flight / u.limit, gapS: u.admission_gap_s });
      }
    }
  } finally {
    sim.stop();
  }
  for (const [name, xs] of rows) {
    const mean = (k) => xs.reduce((a, x) => a + x[k], 0) / xs.length;
    console.log(
      `${name.padEnd(24)} ${fmt(mean('rps')).padStart(6)} req/s   in flight ` +
        `${fmt(mean('inFlight') * 100, 1).padStart(5)}% of the limit   admission gaps ${fmt(mean('gapS'), 3)} s` +
        `   (runs: ${xs.map((x) => `${fmt(x.rps)} req/s ${fmt(x.inFlight * 100, 0)}%`).join(', ')})`,
    );
  }
}
