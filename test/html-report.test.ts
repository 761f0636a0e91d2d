import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { analyze, parseProfile, run, startSim, type Report, type RunningSim } from '../src/index.js';
import { artifactDir, chartInk, launch, openFile } from './helpers/browser.js';
import { runCli } from './helpers/cli.js';
import { tempDir, writeInput } from './helpers/run-dir.js';

let browser: Browser;
let sim: RunningSim | undefined;
beforeAll(async () => {
  browser = await launch();
});
afterAll(async () => {
  await browser?.close();
});
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

const EVIL = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">';

describe('HTML report in real headless Chromium', () => {
  it(
    'loads offline with no console errors, draws every chart, matches the JSON verdict, and escapes ' +
      'hostile strings',
    async () => {
      // A flaky server so the page has retries and error messages; a hostile id and prompt.
      sim = await startSim({
        profile: parseProfile({
          base: 'fast',
          step_ms_base: 2,
          tokens_per_step: 1,
          faults: { errors: { p_503: 0.3 } },
        }),
      });
      const dir = tempDir();
      const input = join(dir, 'in.jsonl');
      const lines = Array.from({ length: 60 }, (_, i) =>
        // The hostile id asks for the longest answer, so it is the slowest request and the page shows it.
        JSON.stringify({
          custom_id: i === 0 ? EVIL : `req-${i}`,
          body: { messages: [{ role: 'user', content: `${EVIL} question ${i}` }], max_tokens: i === 0 ? 400 : 8 },
        }),
      );
      writeFileSync(input, `${lines.join('\n')}\n`);
      const out = join(dir, 'run');
      await run({
        input,
        endpoint: `${sim.url}/v1`,
        out,
        concurrency: 4,
        retryBackoffS: 0.01,
        maxAttempts: 10,
        progress: 'off',
        gaugeIntervalMs: 25,
      });
      const html = join(dir, 'report.html');
      const cli = await runCli(['report', out, '--html', html]);
      expect(cli.code).toBe(0);
      const report = await analyze([out]);
      expect(readFileSync(html, 'utf8')).not.toContain('<script>window.__pwned');

      const { page, consoleErrors, requests } = await openFile(browser, html);
      await page.waitForSelector('[data-verdict]');
      expect(consoleErrors).toEqual([]);
      expect(requests).toEqual([`file://${html}`]);
      const ink = await chartInk(page);
      expect(ink.map((c) => c.title)).toEqual([
        'Aggregate completion TPM per minute (stacked by shard)',
        'Completion tokens/s',
        'Server TTFT over time (ms)',
        'Backlog vs in-flight vs limit',
        'Retries by cause over time',
        'Connections opened over time',
        'Latency decomposition',
      ]);
      for (const c of ink) expect(c.ink, c.title).toBeGreaterThan(0);
      expect(await page.getAttribute('[data-verdict]', 'data-verdict')).toBe(report.verdict.bound);
      const verdictText = await page.textContent('[data-verdict]');
      expect(verdictText).toContain(`Verdict: ${report.verdict.bound}-bound`);
      for (const f of report.verdict.findings) expect(verdictText).toContain(f.evidence);
      // Hostile strings render as text and never run.
      expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
      expect(report.detail.slowest[0]!.id).toBe(EVIL);
      expect(await page.textContent('body')).toContain(EVIL);
      expect(await page.textContent('body')).toContain('Verifiable minute sample');
      // The client's own cost and its loop's load sit among the headline figures.
      const kpis = Object.fromEntries(
        await page.$$eval('.kpi', (els) =>
          els.map((e) => [e.querySelector('.k')!.textContent, e.querySelector('.v')!.textContent]),
        ),
      ) as Record<string, string>;
      expect(Number(kpis['client CPU µs / token']!.replace(/,/g, ''))).toBeCloseTo(
        report.client_cpu.us_per_completion_token!,
        1,
      );
      const pct = (x: number | null) => (x === null ? '–' : `${(x * 100).toFixed(1)}%`);
      expect(kpis['shard loop busy / waiting for a core']).toBe(
        `${pct(report.event_loop.busy_p50)} / ${pct(report.event_loop.cpu_wait_p50)}`,
      );
      expect(report.event_loop.busy_p50).not.toBeNull();
      await page.screenshot({ path: join(artifactDir(), 'report.png'), fullPage: true });
    },
  );
});

describe('HTML report of a job mixing endpoints', () => {
  it('shows each endpoint’s figures in a table, in the units its throughput counts', async () => {
    sim = await startSim({ profile: parseProfile({ base: 'fast' }), seed: 5 });
    const dir = tempDir();
    const input = join(dir, 'mixed.jsonl');
    const line = (i: number) =>
      i % 2 === 0
        ? {
            custom_id: `c${i}`,
            method: 'POST',
            url: '/v1/chat/completions',
            body: { messages: [{ role: 'user', content: 'x' }], max_tokens: 4 },
          }
        : { custom_id: `e${i}`, method: 'POST', url: '/v1/embeddings', body: { input: ['a', 'b'] } };
    writeFileSync(input, `${Array.from({ length: 20 }, (_, i) => JSON.stringify(line(i))).join('\n')}\n`);
    const out = join(dir, 'out');
    await run({ input, endpoint: `${sim.url}/v1`, out, progress: 'off' });
    const html = join(dir, 'report.html');
    expect((await runCli(['report', out, '--html', html])).code).toBe(0);
    const { page, consoleErrors } = await openFile(browser, html);
    await page.waitForSelector('[data-table="by-endpoint"]');
    expect(consoleErrors).toEqual([]);
    const rows = await page.$$eval('[data-table="by-endpoint"] tr', (trs) =>
      trs.slice(1).map((tr) => Array.from(tr.querySelectorAll('td')).map((td) => td.textContent ?? '')),
    );
    expect(rows.map((r) => r[0])).toEqual(['chat', 'embeddings']);
    expect(rows.map((r) => r[1])).toEqual(['10', '10']);
    expect(rows[0]![3]).toMatch(/tok\/min$/);
    expect(rows[1]![3]).toMatch(/input tok\/min, [\d.]+ inputs\/s$/);
    // Embeddings have no first token: no TTFT.
    expect(rows[1]![5]).toBe('–');
    expect(rows[0]![5]).not.toBe('–');
    await page.close();
  });
});

describe('HTML report of a run over several servers', () => {
  it('shows each server’s share, speed and outages in a table that matches the JSON report', async () => {
    const sims = await Promise.all([1, 2].map((seed) => startSim({ profile: parseProfile({ base: 'fast' }), seed })));
    try {
      const dir = tempDir();
      const out = join(dir, 'out');
      await run({ input: writeInput(dir, 60), endpoint: sims.map((s) => `${s.url}/v1`), out, progress: 'off' });
      const html = join(dir, 'report.html');
      expect((await runCli(['report', out, '--html', html])).code).toBe(0);
      const report = JSON.parse((await runCli(['report', out, '--json'])).stdout) as Report;
      const { page, consoleErrors } = await openFile(browser, html);
      await page.waitForSelector('[data-table="by-upstream"]');
      expect(consoleErrors).toEqual([]);
      const rows = await page.$$eval('[data-table="by-upstream"] tr', (trs) =>
        trs.slice(1).map((tr) => Array.from(tr.querySelectorAll('td')).map((td) => td.textContent ?? '')),
      );
      expect(rows.map((r) => r[0])).toEqual(sims.map((s, i) => `${i + 1} ${s.url}/v1`));
      expect(rows.map((r) => Number(r[1]))).toEqual(['0', '1'].map((k) => report.by_upstream[k]!.requests));
      expect(rows.reduce((a, r) => a + Number(r[1]), 0)).toBe(60);
      await page.close();
    } finally {
      await Promise.all(sims.map((s) => s.close()));
    }
  });
});
