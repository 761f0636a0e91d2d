/**
 * The report page's style and script, inlined into every HTML report. The script reads the data
 * block and builds the page with DOM APIs and textContent only, so no string from the data (ids,
 * prompts, error messages) is ever parsed as markup.
 */
export const PAGE_STYLE = `
:root { --fg:#1d232b; --muted:#5b6675; --line:#dde3ea; --bg:#fbfcfd; --high:#c0392b; --medium:#d68910; --low:#2e86c1;
  --ok:#1e8449; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, Segoe UI, Roboto, sans-serif; color: var(--fg);
  background: var(--bg); }
header { padding: 18px 28px 8px; border-bottom: 1px solid var(--line); background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; } h3 { font-size: 14px;
  margin: 18px 0 6px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.sub { color: var(--muted); margin: 0; }
main { padding: 0 28px 40px; max-width: 1280px; }
section.run { border-top: 1px solid var(--line); margin-top: 24px; }
.verdict { border-left: 5px solid var(--muted); background: #fff; padding: 10px 14px; margin: 10px 0; }
.verdict.control-plane { border-color: var(--high); } .verdict.model { border-color: var(--medium); }
  .verdict.healthy { border-color: var(--ok); }
.verdict .bound { font-size: 16px; font-weight: 600; }
.finding { margin: 8px 0 0; } .finding .sev { display: inline-block; min-width: 58px; font-weight: 600;
  text-transform: uppercase; font-size: 11px; }
.sev.high { color: var(--high); } .sev.medium { color: var(--medium); } .sev.low { color: var(--low); }
.finding .action { color: var(--muted); margin-left: 62px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 8px; }
.kpi { background: #fff; border: 1px solid var(--line); padding: 8px 10px; } .kpi .v { font-size: 17px;
  font-weight: 600; } .kpi .k { color: var(--muted); font-size: 12px; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 14px; }
.chart { background: #fff; border: 1px solid var(--line); padding: 6px; }
table { border-collapse: collapse; background: #fff; width: 100%; } td, th { border: 1px solid var(--line);
  padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f5f8; font-weight: 600; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; word-break: break-all; }
.better { color: var(--ok); } .worse { color: var(--high); }
.judgement { font-size: 16px; font-weight: 600; } .judgement.unstable, .judgement.regressed { color: var(--high); }
  .judgement.improved { color: var(--ok); }
`;

export const PAGE_SCRIPT = String.raw`
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('shardline-data').textContent);
  var PALETTE = ['#2e86c1', '#c0392b', '#27ae60', '#d68910', '#8e44ad', '#16a085', '#7f8c8d', '#e67e22'];
  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text); return e; }
  // Appends the children in order and returns the last one (the usual "create and keep" case).
  function append(parent) { var last = null;
    for (var i = 1; i < arguments.length; i++) if (arguments[i]) last = parent.appendChild(arguments[i]); return last; }
  function fmt(x, d) { if (x === null || x === undefined || !isFinite(x)) return '–';
    return Number(x).toLocaleString('en-US', { maximumFractionDigits: d === undefined ? 0 : d }); }
  function pct(x) { return x === null || x === undefined ? '–' : (x * 100).toFixed(1) + '%'; }

  document.getElementById('title').textContent = data.title;
  document.getElementById('subtitle').textContent = 'shardline ' + data.version +
    ' · every figure recomputed from raw events · ' + data.runs.map(function (r) { return r.label + ': run ' +
    (r.report.run_id || '?'); }).join(' · ');
  var main = document.getElementById('main');

  function chart(parent, title, xs, series, opts) {
    var box = append(parent, el('div', 'chart'));
    box.setAttribute('data-chart', title);
    var width = Math.max(520, Math.min(620, (main.clientWidth || 1200) / 2 - 30));
    var cfg = {
      title: title, width: width, height: 240,
      // A run shorter than a bin has a single point: give the axis a sensible span around it.
      scales: { x: { time: !(opts && opts.notime), range: function (u, min, max) { return min === max ? [min - 30,
        max + 30] : [min, max]; } } },
      series: [{}].concat(series.map(function (s, i) {
        var o = { label: s.label, stroke: s.color || PALETTE[i % PALETTE.length], width: 1.5, spanGaps: false };
        if (s.fill) o.fill = s.fill;
        if (s.bars) o.paths = uPlot.paths.bars({ size: [0.6, 60] });
        return o;
      })),
      axes: [{}, { size: 60 }],
      legend: { live: false },
    };
    if (xs.length === 0) { xs = [0]; series = series.map(function () { return { values: [null] }; }); }
    new uPlot(cfg, [xs].concat(series.map(function (s) { return s.values; })), box);
  }

  function runSection(run) {
    var r = run.report, d = r.detail;
    var sec = append(main, el('section', 'run'));
    append(sec, el('h2', null, run.label + ' — run ' + (r.run_id || '?')));
    append(sec, el('p', 'sub', (r.window.start || '') + ' → ' + (r.window.end || '') + ' (' + fmt(r.window.duration_s,
      1) + ' s)'));
    var v = append(sec, el('div', 'verdict ' + r.verdict.bound));
    v.setAttribute('data-verdict', r.verdict.bound);
    append(v, el('div', 'bound', 'Verdict: ' + r.verdict.bound + '-bound' +
      (r.verdict.dominant ? ' — dominant bucket: ' + r.verdict.dominant : '')));
    if (r.verdict.findings.length === 0) append(v, el('div', 'finding', 'No failure mode found.'));
    r.verdict.findings.forEach(function (f) {
      var p = append(v, el('div', 'finding'));
      p.setAttribute('data-mode', f.mode);
      append(p, el('span', 'sev ' + f.severity, f.severity), el('strong', null, f.mode + ': '), el('span', null,
        f.evidence));
      append(v, el('div', 'finding action', '→ ' + f.action));
    });

    var g = append(sec, el('div', 'grid'));
    [['requests', fmt(r.requests.total) + ' (' + fmt(r.requests.failed) + ' failed)'], ['success rate',
      pct(r.requests.success_rate)],
     ['retry rate', pct(r.retries.rate)], ['TPM peak' + (r.tpm.aggregate_peak_partial ? ' (partial min.)' : ''),
       fmt(r.tpm.aggregate_peak)],
     ['TPM run average', fmt(r.tpm.run_average)], ['TTFT e2e p95 / p99 ms', fmt(r.ttft_ms.e2e.p95) + ' / ' +
       fmt(r.ttft_ms.e2e.p99)],
     ['TTFT server p95 ms', fmt(r.ttft_ms.server.p95)], ['connections / request', fmt(r.connections.per_request, 2)],
       ['stale connections re-sent', fmt(r.connections.stale_resends)], ['endpoint down s', fmt(r.outages.down_s, 1)],
     ['in-flight (mean / limit)', fmt(r.utilization.mean_in_flight, 1) + ' / ' + r.utilization.limit],
       ['event-loop lag p99 ms', fmt(r.event_loop.lag_p99_ms, 1)],
     ['client CPU µs / attempt', fmt(r.client_cpu.us_per_request)], ['client CPU µs / token',
       fmt(r.client_cpu.us_per_completion_token, 2)],
     ['shard loop busy / waiting for a core', pct(r.event_loop.busy_p50) + ' / ' + pct(r.event_loop.cpu_wait_p50)]
    ].forEach(function (kv) { var k = append(g, el('div', 'kpi')); append(k, el('div', 'v', kv[1]), el('div', 'k',
      kv[0])); });

    // A run that is not chat alone: each endpoint's own figures, in what its throughput counts.
    var eps = Object.keys(r.by_endpoint || {});
    if (eps.length > 1 || (eps.length === 1 && eps[0] !== 'chat')) {
      append(sec, el('h3', null, 'By endpoint'));
      var et = table(sec, ['endpoint', 'requests', 'failed', 'throughput', 'latency p95 ms', 'TTFT p95 ms'],
        eps.map(function (name) {
          var e = r.by_endpoint[name];
          var tp = name === 'embeddings' ? fmt(e.input_tpm) + ' input tok/min, ' + fmt(e.items_per_s, 1) + ' inputs/s'
            : name === 'other' ? fmt(e.items_per_s, 1) + ' req/s' : fmt(e.tpm) + ' tok/min';
          var ttft = e.ttft_ms ? fmt(e.ttft_ms.p95) : '–';
          return [name, fmt(e.requests), fmt(e.failed), tp, fmt(e.latency_ms.p95), ttft];
        }), [1, 2, 4, 5]);
      et.setAttribute('data-table', 'by-endpoint');
    }

    // A run over several servers: each one's share, speed and outages.
    var ups = Object.keys(r.by_upstream || {});
    if (ups.length > 1) {
      append(sec, el('h3', null, 'By server'));
      var ut = table(sec, ['server', 'requests', 'share', 'failed', 'tok/min', 'answer p50 ms', 'TTFT p95 ms',
        'in flight', 'down s'],
        ups.map(function (i) {
          var u = r.by_upstream[i];
          return [(Number(i) + 1) + ' ' + u.url, fmt(u.requests), pct(u.share), fmt(u.failed), fmt(u.tpm),
            fmt(u.answer_ms.p50), u.ttft_ms ? fmt(u.ttft_ms.p95) : '–', fmt(u.in_flight_limit), fmt(u.down_s, 1)];
        }), [1, 2, 3, 4, 5, 6, 7, 8]);
      ut.setAttribute('data-table', 'by-upstream');
    }

    append(sec, el('h3', null, 'Throughput, latency, work conservation'));
    var charts = append(sec, el('div', 'charts'));
    // Aggregate completion TPM per UTC minute, stacked by shard.
    var minutes = r.tpm.per_minute;
    var shards = {};
    minutes.forEach(function (m) { Object.keys(m.per_shard).forEach(function (s) { shards[s] = true; }); });
    var shardIds = Object.keys(shards).sort(function (a, b) { return Number(a) - Number(b); });
    var mx = minutes.map(function (m) { return Date.parse(m.minute) / 1000; });
    var stacked = [];
    var running = minutes.map(function () { return 0; });
    shardIds.forEach(function (s) { running = running.map(function (v, i) { return v +
      (minutes[i].per_shard[s] || 0); }); stacked.push({ label: 'shards ≤ ' + s, values: running.slice(),
      bars: true }); });
    stacked.reverse().forEach(function (s, i) {
      s.color = PALETTE[i % PALETTE.length]; s.fill = PALETTE[i % PALETTE.length] + '99'; });
    chart(charts, 'Aggregate completion TPM per minute (stacked by shard)', mx, stacked);
    var ps = d.per_second;
    var binS = ps.length > 1 ? (ps[1].t - ps[0].t) / 1000 : 1;
    var px = ps.map(function (b) { return b.t / 1000; });
    chart(charts, 'Completion tokens/s', px, [{ label: 'tokens/s', values: ps.map(function (b) {
      return b.tokens / binS; }), fill: '#2e86c133' }]);
    chart(charts, 'Server TTFT over time (ms)', px, [
      { label: 'p50', values: ps.map(function (b) { return b.ttft_p50; }) },
      { label: 'p95', values: ps.map(function (b) { return b.ttft_p95; }) },
      { label: 'p99', values: ps.map(function (b) { return b.ttft_p99; }) }]);
    var tl = r.utilization.timeline;
    var tx = tl.map(function (p) { return Date.parse(p.t) / 1000; });
    chart(charts, 'Backlog vs in-flight vs limit', tx, [
      { label: 'backlog', values: tl.map(function (p) { return p.backlog; }) },
      { label: 'in-flight', values: tl.map(function (p) { return p.in_flight; }) },
      { label: 'limit', values: tl.map(function (p) { return p.limit; }), color: '#7f8c8d' }]);
    var causes = {};
    d.retry_causes_over_time.forEach(function (b) { Object.keys(b.causes).forEach(function (c) {
      causes[c] = true; }); });
    var byT = {};
    d.retry_causes_over_time.forEach(function (b) { byT[b.t] = b.causes; });
    var causeNames = Object.keys(causes).sort();
    chart(charts, 'Retries by cause over time', px, (causeNames.length ? causeNames : ['retries']).map(function (c) {
      return { label: c, values: ps.map(function (b) { return (byT[b.t] && byT[b.t][c]) || 0; }) };
    }));
    chart(charts, 'Connections opened over time', px, [{ label: 'connections opened', values: ps.map(function (b) {
      return b.conns; }), bars: true }]);

    append(sec, el('h3', null, 'Where request time went (summed over requests)'));
    decomposition(sec, r.buckets_ms);

    if (d.slowest.length) {
      append(sec, el('h3', null, 'Slowest requests'));
      table(sec, ['id', 'e2e ms', 'attempts', 'outcome'], d.slowest.map(function (s) { return [s.id, fmt(s.e2e_ms),
        s.attempts, s.outcome]; }), [1, 2]);
    }
    if (d.recent_errors.length) {
      append(sec, el('h3', null, 'Last failed attempts'));
      table(sec, ['id', 'attempt', 'cause', 'status', 'message'], d.recent_errors.map(function (e) { return [e.id,
        e.attempt, e.cause, e.status === null ? '–' : e.status, e.error]; }), [1, 3]);
    }
  }

  function decomposition(parent, buckets) {
    var NS = 'http://www.w3.org/2000/svg';
    var keys = Object.keys(buckets);
    var total = keys.reduce(function (a, k) { return a + buckets[k]; }, 0) || 1;
    var svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('width', '640'); svg.setAttribute('height', String(keys.length * 24 + 8));
    svg.setAttribute('data-chart', 'Latency decomposition');
    svg.setAttribute('role', 'img');
    keys.forEach(function (k, i) {
      var share = buckets[k] / total;
      var label = document.createElementNS(NS, 'text'); label.setAttribute('x', '0'); label.setAttribute('y',
        String(i * 24 + 18)); label.textContent = k; svg.appendChild(label);
      var bar = document.createElementNS(NS, 'rect'); bar.setAttribute('x', '130'); bar.setAttribute('y',
        String(i * 24 + 6)); bar.setAttribute('height', '16');
      bar.setAttribute('width', String(Math.max(1, share * 420))); bar.setAttribute('fill', ['server_ttft',
        'decode'].indexOf(k) >= 0 ? '#d68910' : '#2e86c1'); svg.appendChild(bar);
      var val = document.createElementNS(NS, 'text'); val.setAttribute('x', String(140 + share * 420));
        val.setAttribute('y', String(i * 24 + 18)); val.textContent = (share * 100).toFixed(1) + '%';
        svg.appendChild(val);
    });
    var box = append(parent, el('div', 'chart'));
    box.appendChild(svg);
    append(box, el('div', 'sub', 'orange: the model (server TTFT, decode); blue: the control plane'));
  }

  function table(parent, head, rows, numeric) {
    var t = append(parent, el('table'));
    var tr = append(t, el('tr'));
    head.forEach(function (h) { append(tr, el('th', null, h)); });
    rows.forEach(function (row) {
      var r = append(t, el('tr'));
      row.forEach(function (c, i) { append(r, el('td',
        (numeric || []).indexOf(i) >= 0 ? 'num' : (i === 0 ? 'mono' : null), c)); });
    });
    return t;
  }

  if (data.comparison) {
    var c = data.comparison;
    var sec = append(main, el('section'));
    append(sec, el('h2', null, 'Before → after'));
    var j = append(sec, el('div', 'judgement ' + c.stability.judgement, 'Stability: ' + c.stability.judgement +
      (c.stability.reasons.length ? ' — ' + c.stability.reasons.join('; ') : '')));
    j.setAttribute('data-judgement', c.stability.judgement);
    table(sec, ['figure', data.runs[0] ? data.runs[0].label : 'A', data.runs[1] ? data.runs[1].label : 'B', 'delta'],
      c.rows.map(function (row) {
      return [row.name, fmt(row.a, 3), fmt(row.b, 3), row.delta_pct === null ? '–' : (row.delta_pct > 0 ? '+' : '') +
        row.delta_pct.toFixed(1) + '%' + (row.improved === null ? '' : row.improved ? ' ✓' : ' ✗')];
    }), [1, 2, 3]);
  }
  data.runs.forEach(runSection);
  if (data.sample) {
    var s = data.sample;
    var ss = append(main, el('section', 'run'));
    append(ss, el('h2', null, 'Verifiable minute sample'));
    append(ss, el('p', null, 'Minute ' + s.minute.start + ' → ' + s.minute.end +
      (s.minute.partial ? ' (partial: the run has no full minute)' : '') + ': ' +
      fmt(s.figures.completion_tokens) + ' completion tokens from ' + fmt(s.figures.completed_requests) +
        ' requests (aggregate TPM ' + fmt(s.figures.aggregate_tpm) + '), run ' + s.run_id +
      '. Check it with: shardline verify sample.json'));
    table(ss, ['file', 'bytes', 'lines', 'sha256'], s.files.map(function (f) { return [f.path, fmt(f.bytes),
      fmt(f.lines), f.sha256]; }), [1, 2]);
    append(ss, el('p', 'mono', 'sha256 of the ' + s.refs.length + ' counted lines: ' + s.refs_sha256));
  }
})();
`;
