import type { Comparison } from '../diagnose/compare-reports.js';

/** The compare table for a terminal. */
export function formatComparison(c: Comparison): string {
  const side = (r: Comparison['a']) => `${r.run_id ?? '?'} (${r.bound}, ${r.dominant ?? '–'})`;
  const lines = [`compare: A ${side(c.a)} → B ${side(c.b)}`, ''];
  lines.push(`${'figure'.padEnd(34)}${'A'.padStart(14)}${'B'.padStart(14)}${'delta'.padStart(12)}`);
  for (const r of c.rows) {
    const mark = r.improved === null ? ' ' : r.improved ? '+' : '-';
    const delta = r.delta_pct === null ? '–' : `${r.delta_pct > 0 ? '+' : ''}${r.delta_pct.toFixed(1)}%`;
    lines.push(`${r.name.padEnd(34)}${value(r.a).padStart(14)}${value(r.b).padStart(14)}${delta.padStart(12)} ${mark}`);
  }
  const reasons = c.stability.reasons.length ? ` — ${c.stability.reasons.join('; ')}` : '';
  lines.push('', `stability: ${c.stability.judgement.toUpperCase()}${reasons}`);
  if (c.stability.judgement === 'unstable')
    lines.push('  a throughput gain bought with more retries, a longer tail or more failures: do not ship it');
  return `${lines.join('\n')}\n`;
}

function value(x: number | null): string {
  return x === null ? '–' : Math.abs(x) >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(3);
}
