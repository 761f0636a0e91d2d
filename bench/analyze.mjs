#!/usr/bin/env node
// Report throughput on a large generated event log: events/s and peak memory, at two sizes, so the
// growth of memory with events is visible (it should be only what exact percentiles need).
// Side by side on the same files: `analyze()` as shipped (decoding on a second thread for logs
// this size), `analyze()` on one thread, and a floor for the obvious approach: reading the lines
// and JSON.parse-ing each, with no aggregation at all.
//
//   node bench/analyze.mjs [--events 5000000] [--small 1000000] [--shards 4]
//
// Last row: sampleMinute() on the same files, what `shardline sample` and `report --html` add.
//
// Each measurement runs in a fresh child process (so peak RSS is that run's own).
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '5000000' },
    small: { type: 'string', default: '1000000' },
    shards: { type: 'string', default: '4' },
    child: { type: 'string' },
    mode: { type: 'string', default: 'shipped' },
  },
});

if (values.child) {
  // Child mode: measure one way of reading one directory and print figures as JSON.
  const t0 = performance.now();
  /** Where the sample's timing ends (counting the lines for its rate is not part of it). */
  let sampledAt;
  let events;
  let requests = null;
  if (values.mode === 'json-parse') {
    const { createReadStream, readdirSync } = await import('node:fs');
    const { createInterface } = await import('node:readline');
    events = 0;
    for (const f of readdirSync(join(values.child, 'events'))) {
      for await (const line of createInterface({
        input: createReadStream(join(values.child, 'events', f)),
        crlfDelay: Infinity,
      })) {
        if (line && JSON.parse(line).ts > 0) events++;
      }
    }
  } else if (values.mode === 'sample') {
    // What `shardline sample` (and `report --html`, for its page) adds: hashing every file and
    // tallying every minute's succeeded request_end lines.
    const { sampleMinute } = await import('../dist/index.js');
    await sampleMinute(values.child);
    sampledAt = performance.now();
    const { readdirSync, readFileSync } = await import('node:fs');
    events = 0;
    for (const f of readdirSync(join(values.child, 'events')))
      events += readFileSync(join(values.child, 'events', f), 'latin1').split('\n').length - 1;
  } else {
    const { analyze } = await import('../dist/index.js');
    const report = await analyze([values.child], { parallel: values.mode === 'shipped' ? 'auto' : false });
    events = report.detail.events;
    requests = report.requests.total;
  }
  const s = ((sampledAt ?? performance.now()) - t0) / 1000;
  console.log(JSON.stringify({ seconds: s, events, requests, maxRssMb: process.resourceUsage().maxRSS / 1024 }));
  process.exit(0);
}

/**
 * Write a plausible run: per request enqueue, attempt_start, response_headers, first_token, attempt_end, request_end (+
 * some conn_open, retries), gauges each second.
 */
async function generate(dir, targetEvents, shards) {
  mkdirSync(join(dir, 'events'), { recursive: true });
  const run = 'bench';
  const coord = createWriteStream(join(dir, 'events', 'coordinator.jsonl'));
  const files = Array.from({ length: shards }, (_, i) =>
    createWriteStream(join(dir, 'events', `shard-${String(i).padStart(3, '0')}.jsonl`)),
  );
  const write = (stream, line) =>
    stream.write(line) ? Promise.resolve() : new Promise((r) => stream.once('drain', r));
  let events = 0;
  let t = Date.UTC(2026, 10, 27, 12, 0, 0);
  const perShardClock = Array.from({ length: shards }, () => t);
  await write(
    coord,
    `{"v":1,"ts":${t},"run":"${run}","shard":-1,"type":"run_start","config":{},"resumed":false,"pid":1}\n`,
  );
  for (let s = 0; s < shards; s++)
    await write(
      files[s],
      `{"v":1,"ts":${t + 1},"run":"${run}","shard":${s},"type":"shard_start","pid":${100 + s},"concurrency":64}\n`,
    );
  events += 1 + shards;
  let id = 0;
  // Closed loop, as the runner reads: a request is read (enqueued) only once the one READ_AHEAD
  // before it has started, so the backlog stays bounded however long the run.
  const READ_AHEAD = 4 * 64 * shards;
  const starts = [];
  let nextGauge = t + 1000;
  while (events < targetEvents) {
    const s = id % shards;
    const rid = `r${id++}`;
    t = Math.max(t, starts[id - 1 - READ_AHEAD] ?? t);
    const enq = t;
    t += 0.35;
    let buf = '';
    let c = `{"v":1,"ts":${enq.toFixed(3)},"run":"${run}","shard":-1,"type":"enqueue","id":"${rid}","line":${id}}\n`;
    events++;
    const start = Math.max(perShardClock[s], enq + 5);
    starts.push(start);
    let a = start;
    buf +=
      `{"v":1,"ts":${a.toFixed(3)},"run":"${run}","shard":${s},"type":"attempt_start","id":"${rid}",` +
      `"attempt":1}\n`;
    events++;
    let attempt = 1;
    if (id % 20 === 0) {
      a += 30;
      buf +=
        `{"v":1,"ts":${a.toFixed(3)},"run":"${run}","shard":${s},"type":"attempt_end","id":"${rid}",` +
        `"attempt":1,"outcome":"error","cause":"http_429","status":429}\n`;
      buf +=
        `{"v":1,"ts":${(a + 0.01).toFixed(3)},"run":"${run}","shard":${s},"type":"backoff","id":"${rid}",` +
        `"attempt":1,"delay_ms":200,"cause":"http_429"}\n`;
      a += 200;
      c +=
        `{"v":1,"ts":${a.toFixed(3)},"run":"${run}","shard":-1,"type":"enqueue","id":"${rid}","line":${id},` +
        `"attempt":2}\n`;
      a += 1;
      attempt = 2;
      buf +=
        `{"v":1,"ts":${a.toFixed(3)},"run":"${run}","shard":${s},"type":"attempt_start","id":"${rid}",` +
        `"attempt":2}\n`;
      events += 4;
    }
    if (id % 50 === 0) {
      buf +=
        `{"v":1,"ts":${(a + 0.5).toFixed(3)},"run":"${run}","shard":${s},"type":"conn_open","connect_ms":0.5,` +
        `"id":"${rid}","attempt":${attempt}}\n`;
      events++;
    }
    const first = a + 40 + (id % 17);
    buf +=
      `{"v":1,"ts":${(first - 1).toFixed(3)},"run":"${run}","shard":${s},"type":"response_headers",` +
      `"id":"${rid}","attempt":${attempt},"status":200}\n`;
    buf +=
      `{"v":1,"ts":${first.toFixed(3)},"run":"${run}","shard":${s},"type":"first_token","id":"${rid}",` +
      `"attempt":${attempt}}\n`;
    const end = first + 300 + (id % 101);
    buf +=
      `{"v":1,"ts":${end.toFixed(3)},"run":"${run}","shard":${s},"type":"attempt_end","id":"${rid}",` +
      `"attempt":${attempt},"outcome":"ok","status":200,"completion_tokens":128,"prompt_tokens":40,` +
      `"last_token_ts":${end.toFixed(3)}}\n`;
    buf +=
      `{"v":1,"ts":${(end + 0.01).toFixed(3)},"run":"${run}","shard":${s},"type":"request_end","id":"${rid}",` +
      `"outcome":"succeeded","attempts":${attempt},"completion_tokens":128,"prompt_tokens":40}\n`;
    events += 4;
    // Shard files must be sorted: a shard's next request starts after this one ends (64 slots modelled as a spread).
    perShardClock[s] = start + (end - start) / 64;
    while (t >= nextGauge) {
      c +=
        `{"v":1,"ts":${nextGauge},"run":"${run}","shard":-1,"type":"gauge","backlog":10,"in_flight":200,` +
        `"limit":256,"loop_lag_ms":2,"conns_open":256}\n`;
      nextGauge += 1000;
      events++;
    }
    await write(coord, c);
    await write(files[s], buf);
  }
  await Promise.all([coord, ...files].map((f) => new Promise((r) => f.end(r))));
  return events;
}

// Shard lines are generated in start order, but each file must be sorted by ts: sort them once.
async function sortFiles(dir) {
  const { readdirSync, readFileSync, writeFileSync } = await import('node:fs');
  for (const f of readdirSync(join(dir, 'events'))) {
    const p = join(dir, 'events', f);
    const lines = readFileSync(p, 'utf8').split('\n').filter(Boolean);
    const keyed = lines.map((l) => [Number(l.slice(13, l.indexOf(',', 13))), l]);
    keyed.sort((a, b) => a[0] - b[0]);
    writeFileSync(p, `${keyed.map((k) => k[1]).join('\n')}\n`);
  }
}

const root = mkdtempSync(join(tmpdir(), 'sl-analyze-'));
const sizes = [Number(values.small), Number(values.events)];
const modes = [
  ['shipped', 'analyze()'],
  ['serial', 'analyze() on one thread'],
  ['json-parse', 'readline + JSON.parse only'],
  ['sample', 'sampleMinute() (hash + tally)'],
];
console.log(`report throughput bench — node ${process.version}, ${Number(values.shards)} shard files + coordinator`);
try {
  for (const n of sizes) {
    const dir = join(root, String(n));
    const events = await generate(dir, n, Number(values.shards));
    await sortFiles(dir);
    const measured = modes.map(([mode, label]) => {
      const out = JSON.parse(
        execFileSync(
          process.execPath,
          ['--max-old-space-size=8192', new URL(import.meta.url).pathname, '--child', dir, '--mode', mode],
          { encoding: 'utf8' },
        ),
      );
      return { label, ...out, rate: out.events / out.seconds };
    });
    const requests = measured[0].requests;
    console.log(`${events.toLocaleString('en-US')} events (${requests.toLocaleString('en-US')} requests):`);
    for (const m of measured) {
      console.log(
        `  ${m.label.padEnd(28)} ${m.seconds.toFixed(2).padStart(6)} s ` +
          `${Math.round(m.rate).toLocaleString('en-US').padStart(10)} events/s ` +
          `(${(m.rate / measured[0].rate).toFixed(2)}× analyze()), peak RSS ${Math.round(m.maxRssMb)} MB`,
      );
    }
    rmSync(dir, { recursive: true, force: true });
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
