import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Comparison } from '../diagnose/compare-reports.js';
import type { Report } from '../diagnose/report-types.js';
import { VERSION } from '../version.js';
import { PAGE_SCRIPT, PAGE_STYLE } from './html-page.js';

/** Nothing from the network; the page's own inline script and styles, and data: images (uPlot's). */
const CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:";

export interface HtmlReportInput {
  title: string;
  runs: { label: string; report: Report }[];
  comparison?: Comparison;
  /** A minute sample (`shardline.sample/v1`) whose hashes the page lists. */
  sample?: unknown;
}

/** Escape text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/**
 * JSON that is safe inside a <script> element: `<`, `>`, `&` and the two JS line separators are
 * written as \u escapes, so no string in the data (a prompt containing `</script>`) can end the
 * element or be read as markup.
 */
export function scriptJson(data: unknown): string {
  return JSON.stringify(data).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * One self-contained HTML file: no network requests, uPlot and all data inlined. Every string from
 * the data is placed with textContent by the page script, never as markup.
 */
export function renderHtmlReport(input: HtmlReportInput): string {
  const require = createRequire(import.meta.url);
  const uplotJs = readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8');
  const uplotCss = readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8');
  const data = {
    title: input.title,
    version: VERSION,
    runs: input.runs,
    comparison: input.comparison ?? null,
    sample: input.sample ?? null,
  };
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<title>${escapeHtml(input.title)}</title>
<style>${uplotCss}</style>
<style>${PAGE_STYLE}</style>
</head>
<body>
<header><h1 id="title"></h1><p class="sub" id="subtitle"></p></header>
<main id="main"></main>
<script type="application/json" id="shardline-data">${scriptJson(data)}</script>
<script>${uplotJs.replace(/<\/script/gi, '<\\/script')}</script>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
}

export function writeHtmlReport(path: string, input: HtmlReportInput): void {
  writeFileSync(path, renderHtmlReport(input));
}
