import type { Knee, SweepStage } from '../diagnose/knee.js';
import { escapeHtml } from './html-report.js';

const W = 560;
const H = 240;
const PAD = { l: 70, r: 16, t: 16, b: 40 };

/**
 * `shardline sweep --html`: a self-contained page (inline SVG, no scripts, no network) with TPM and TTFT p95/p99 vs
 * level.
 */
export function renderSweepPage(stages: readonly SweepStage[], knee: Knee): string {
  const levels = stages.map((s) => s.level);
  const tpm = chart(
    'completion tokens/min',
    levels,
    [{ name: 'TPM', color: '#2563eb', values: stages.map((s) => s.tpm) }],
    knee.level,
  );
  const ttft = chart(
    'server TTFT, ms',
    levels,
    [
      { name: 'p95', color: '#d97706', values: stages.map((s) => s.ttftP95Ms) },
      { name: 'p99', color: '#dc2626', values: stages.map((s) => s.ttftP99Ms) },
    ],
    knee.level,
    knee.sloTtftP95Ms,
  );
  const rows = stages
    .map(
      (s) =>
        `<tr${s.level === knee.level ? ' class="knee"' : ''}>` +
        [
          s.level,
          fmt(s.tpm),
          fmt(s.ttftP95Ms),
          fmt(s.ttftP99Ms),
          pct(s.retryRate),
          pct(s.successRate),
          escapeHtml(s.dir),
        ]
          .map((cell) => `<td>${cell}</td>`)
          .join('') +
        '</tr>',
    )
    .join('');
  const verdict =
    knee.level === null
      ? `No knee: ${escapeHtml(knee.why)}`
      : `Knee at concurrency <strong>${knee.level}</strong>: ${escapeHtml(knee.why)}. Run with <code>--concurrency ` +
        `${knee.level}</code>.`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>shardline sweep</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;color:#111}table{border-collapse:collapse}
td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}tr.knee{background:#ecfdf5;font-weight:600}
svg{display:block;margin:8px 0 20px}.verdict{border-left:5px solid #059669;padding:8px 12px;background:#f9fafb}</style>
</head><body><h1>shardline sweep</h1><p class="verdict" data-knee="${knee.level ?? ''}">${verdict}</p>
${tpm}${ttft}
<table><thead><tr><th>level</th><th>TPM</th><th>TTFT p95 ms</th><th>TTFT p99 ms</th><th>retries</th><th>success</th>
<th>run directory</th></tr></thead><tbody>${rows}</tbody></table>
</body></html>
`;
}

interface Series {
  name: string;
  color: string;
  values: (number | null)[];
}

/** A line chart over levels on a log2 x axis (levels usually double), with the knee marked. */
function chart(title: string, levels: number[], series: Series[], knee: number | null, bound?: number): string {
  const xs = levels.map((l) => Math.log2(l));
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs, xMin + 1);
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== null));
  const yMax = Math.max(
    1,
    ...all,
    ...(bound !== undefined && Number.isFinite(bound) && bound < 3 * Math.max(1, ...all) ? [bound] : []),
  );
  const x = (v: number) => PAD.l + ((v - xMin) / (xMax - xMin)) * (W - PAD.l - PAD.r);
  const y = (v: number) => H - PAD.b - (v / yMax) * (H - PAD.t - PAD.b);
  const lines = series
    .map((s) => {
      const pts = s.values
        .map((v, i) => (v === null ? null : `${x(xs[i]!).toFixed(1)},${y(v).toFixed(1)}`))
        .filter(Boolean);
      return (
        `<polyline fill="none" stroke="${s.color}" stroke-width="2" ` +
        `points="${pts.join(' ')}"><title>${s.name}</title></polyline>`
      );
    })
    .join('');
  const ticks = levels
    .map(
      (l, i) =>
        `<text x="${x(xs[i]!).toFixed(1)}" y="${H - PAD.b + 16}" text-anchor="middle" font-size="11">${l}</text>`,
    )
    .join('');
  const kneeLine =
    knee === null
      ? ''
      : `<line class="knee" x1="${x(Math.log2(knee)).toFixed(1)}" x2="${x(Math.log2(knee)).toFixed(1)}" ` +
        `y1="${PAD.t}" y2="${H - PAD.b}" stroke="#059669" stroke-dasharray="4 3"/>`;
  const sloLine =
    bound !== undefined && Number.isFinite(bound) && bound <= yMax
      ? `<line x1="${PAD.l}" x2="${W - PAD.r}" y1="${y(bound).toFixed(1)}" y2="${y(bound).toFixed(1)}" ` +
        `stroke="#6b7280" stroke-dasharray="2 3"><title>SLO ${fmt(bound)} ms</title></line>`
      : '';
  const legend = series
    .map(
      (s, i) => `<text x="${PAD.l + 8 + i * 60}" y="${PAD.t + 12}" font-size="11" fill="${s.color}">${s.name}</text>`,
    )
    .join('');
  return (
    `<figure><figcaption>${escapeHtml(title)} vs concurrency</figcaption><svg ` +
    `data-chart="${escapeHtml(title)}" width="${W}" height="${H}" role="img" ` +
    `aria-label="${escapeHtml(title)}"><line x1="${PAD.l}" x2="${PAD.l}" y1="${PAD.t}" y2="${H - PAD.b}" ` +
    `stroke="#999"/><line x1="${PAD.l}" x2="${W - PAD.r}" y1="${H - PAD.b}" y2="${H - PAD.b}" stroke="#999"/><text ` +
    `x="${PAD.l - 6}" y="${PAD.t + 4}" text-anchor="end" font-size="11">${fmt(yMax)}</text>` +
    `<text x="${PAD.l - 6}" y="${H - PAD.b}" text-anchor="end" font-size="11">0</text>` +
    `${ticks}${sloLine}${kneeLine}${lines}${legend}</svg></figure>`
  );
}

function fmt(x: number | null): string {
  return x === null ? '–' : Math.round(x).toLocaleString('en-US');
}
function pct(x: number | null): string {
  return x === null ? '–' : `${(x * 100).toFixed(1)}%`;
}
