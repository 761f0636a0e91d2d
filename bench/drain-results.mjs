// Shared by bench/distributed.mjs and bench/drain-ab.mjs: the coordinator's side of a distributed run
// alone. Results are loaded into a run's Redis stream as workers send them (batches of 512 lines with
// their facts), then read back and written to results.jsonl, counted, the stream trimmed behind them,
// the way a distributed run's coordinator drains it.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

// A result line as a `fast`-profile run writes it (8-token answer).
const LINE =
  '{"id":"batch_req_x","custom_id":"ID","response":{"status_code":200,"request_id":"c",' +
  '"body":{"choices":[{"index":0,"message":{"role":"assistant","content":" the of and to in is that for"},' +
  '"finish_reason":"length"}],"usage":{"prompt_tokens":8,"completion_tokens":8,"total_tokens":16}}},"error":null}';
const FACTS = { outcome: 'succeeded', attempts: 1, promptTokens: 8, completionTokens: 8, ttftMs: 2.5 };

/**
 * Drain `total` results with the build in `distDir` (a checkout's dist/) against the Redis at
 * `redisUrl`, writing to `outDir`. Resolves with the drain's wall seconds and its CPU µs per result
 * (this process, every thread), loading not counted.
 */
export async function drainResults(distDir, redisUrl, outDir, total) {
  const load = (path) => import(pathToFileURL(join(distDir, path)).href);
  const { RunChannel } = await load('runner/distributed/run-channel.js');
  const { DirResultSink } = await load('runner/output/dir-result-sink.js');
  const { IdInterner } = await load('events/id-interner.js');
  const { newRunTotals, tallyDone } = await load('runner/run-totals.js');
  const channel = new RunChannel(redisUrl);
  const runId = `drain-${process.pid}`;
  for (let i = 0; i < total; i += 512) {
    const batch = Array.from({ length: Math.min(512, total - i) }, (_, k) => ({
      id: `r${i + k}`,
      line: LINE.replace('ID', `r${i + k}`),
      facts: FACTS,
    }));
    await channel.sendResults(runId, batch);
  }
  const sink = new DirResultSink(outDir);
  const seen = new IdInterner(1 << 16);
  const totals = newRunTotals();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let after = '0';
  let got = 0;
  while (got < total) {
    const batch = await channel.readResults(runId, after, 500);
    for (const r of batch) {
      seen.internString(r.id);
      sink.writeResult(r.id, r.line);
      tallyDone(totals, r.facts);
      got++;
    }
    sink.flush();
    after = batch[batch.length - 1].streamId;
    await channel.trimResults(runId, after);
  }
  const s = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await sink.close();
  await channel.finish(runId);
  await channel.close();
  return { s, cpuUs: (cpu.user + cpu.system) / total };
}
