#!/usr/bin/env node
// One provider budget across workers, for minutes: three workers over Redis with `--tpm` at a
// provider's token quota (the simulator's quota profile at 90,000 tokens/min, x-ratelimit-* headers on),
// long enough to judge the steady state. Prints the share of attempts refused (429) and the share of the
// quota used after the first minute, from the merged events (prompt + completion tokens of the requests
// that ended in each second).
//
//   node bench/quota.mjs [--requests 6000] [--workers 3] [--tpm 90000] [--headers true|false]
//
// Targets (issue #25): < 1% of attempts answered 429, ≥ 85% of the quota used after the first minute.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startRedisProcess } from './redis-process.mjs';
import { runShardline, startSimProcess } from './sim-process.mjs';
import { writeChatInput } from './chat-input.mjs';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '6000' },
    workers: { type: 'string', default: '3' },
    tpm: { type: 'string', default: '90000' },
    headers: { type: 'string', default: 'true' },
  },
});
const dir = mkdtempSync(join(tmpdir(), 'sl-bench-quota-'));
const redis = await startRedisProcess('bench/quota.mjs', dir);
const tpm = Number(values.tpm);
const profile = join(dir, 'quota.yaml');
writeFileSync(
  profile,
  `base: quota\nname: quota-bench\nfaults:\n  rate_limit:\n    tokens_per_min: ${tpm}\n    requests_per_min: 60000\n` +
    `    burst_s: 1\n    headers: ${values.headers === 'true'}\n`,
);
const sim = await startSimProcess(profile);
const n = Number(values.requests);
const input = writeChatInput(join(dir, 'in.jsonl'), n, { maxTokens: 32, content: (i) => `question number ${i}` });
const out = join(dir, 'out');
try {
  await runShardline(
    [
      'run',
      input,
      '--endpoint',
      `${sim.url}/v1`,
      '--out',
      out,
      '--concurrency',
      '32',
      '--max-attempts',
      '20',
      '--progress',
      'off',
      '--redis',
      redis.url,
      '--local-workers',
      values.workers,
      '--tpm',
      String(tpm),
    ],
    { limitMs: 20 * 60_000 },
  );
  const perSecond = new Map();
  let attempts = 0;
  let refused = 0;
  let first = Infinity;
  let last = 0;
  const shards = new Set();
  for (const f of readdirSync(join(out, 'events')))
    for (const line of readFileSync(join(out, 'events', f), 'utf8').split('\n')) {
      if (line.includes('"attempt_end"')) {
        const e = JSON.parse(line);
        attempts++;
        if (e.status === 429) refused++;
        shards.add(e.shard);
      } else if (line.includes('"request_end"')) {
        const e = JSON.parse(line);
        const s = Math.floor(e.ts / 1000);
        perSecond.set(s, (perSecond.get(s) ?? 0) + (e.prompt_tokens ?? 0) + (e.completion_tokens ?? 0));
        first = Math.min(first, e.ts);
        last = Math.max(last, e.ts);
      }
    }
  // After the first minute, up to the last whole second before the tail (the last requests trickle).
  const from = Math.floor(first / 1000) + 60;
  const to = Math.floor(last / 1000) - 1;
  let tokens = 0;
  for (let s = from; s < to; s++) tokens += perSecond.get(s) ?? 0;
  const seconds = Math.max(0, to - from);
  const used = seconds > 0 ? (tokens / seconds) * 60 : NaN;
  const fmt = (x, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  console.log(
    `${values.workers} workers over Redis (${shards.size} shards answered), --tpm ${fmt(tpm)} against a ${fmt(tpm)} ` +
      `tokens/min quota (headers ${values.headers === 'true' ? 'on' : 'off'}), ${fmt(n)} requests, ` +
      `${fmt((last - first) / 1000, 1)} s of answers:`,
  );
  console.log(
    `  refused (429)        ${fmt(refused)} of ${fmt(attempts)} attempts = ${fmt((100 * refused) / attempts, 2)}% ` +
      `(target < 1%): ${refused / attempts < 0.01 ? 'met' : 'not met'}`,
  );
  console.log(
    `  quota used           ${fmt(used)} tokens/min over ${seconds} s after the first minute = ` +
      `${fmt((100 * used) / tpm, 1)}% (target ≥ 85%): ${used / tpm >= 0.85 ? 'met' : 'not met'}`,
  );
} finally {
  sim.stop();
  redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
