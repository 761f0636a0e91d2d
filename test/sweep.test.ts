import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseProfile, startSim, type RunningSim } from '../src/index.js';
import { findKnee, type SweepStage } from '../src/diagnose/knee.js';
import { launch, openFile } from './helpers/browser.js';
import { runCli } from './helpers/cli.js';
import { loadEvents, loadResults, ofType, tempDir, writeInput } from './helpers/run-dir.js';

function stage(level: number, tpm: number, ttftP95Ms: number, retryRate = 0): SweepStage {
  return { level, dir: `c${level}`, tpm, ttftP95Ms, ttftP99Ms: ttftP95Ms * 1.1, retryRate, successRate: 1 };
}

describe('findKnee (pure)', () => {
  it('takes the lowest level within 5% of the best throughput that meets the SLO', () => {
    // 32 adds 3% over 24: not worth 8 more in flight. 64 meets no SLO (p95 3.3 × the lightest stage's 30 ms).
    const stages = [
      stage(8, 40_000, 30),
      stage(16, 70_000, 35),
      stage(24, 90_000, 45),
      stage(32, 92_700, 80),
      stage(64, 95_000, 100),
    ];
    const k = findKnee(stages);
    expect(k).toMatchObject({ level: 24, sloTtftP95Ms: 90, sloDerived: true });
  });

  it('holds stages to a given SLO and to under 5% retries', () => {
    const stages = [stage(8, 40_000, 30), stage(16, 70_000, 60), stage(32, 100_000, 70, 0.2)];
    expect(findKnee(stages, 50)).toMatchObject({ level: 8, sloTtftP95Ms: 50, sloDerived: false });
    // 32 meets the SLO but retries 20% of its attempts: 16 is the knee.
    expect(findKnee(stages, 100).level).toBe(16);
  });

  it('names exactly why each level was or was not chosen', () => {
    // 4 met the SLO with 20% more throughput than 2 but retried 8% of its attempts: dropped for that.
    const k = findKnee([stage(1, 50_000, 10), stage(2, 70_000, 12), stage(4, 84_000, 14, 0.08), stage(8, 71_000, 40)]);
    expect(k.level).toBe(2);
    expect(k.reasons).toEqual([
      { level: 1, reason: '28.6% less throughput than 2' },
      { level: 2, reason: 'chosen: the lowest level within 3% of the best throughput that met the SLO' },
      { level: 4, reason: '8.0% retries, over 5%' },
      { level: 8, reason: 'TTFT p95 40 ms over the SLO (30 ms)' },
    ]);
    expect(k.why).toMatch(/4: 8\.0% retries, over 5%; 8: TTFT p95 40 ms over the SLO/);
    expect(k.why).not.toMatch(/no higher level met the SLO/);
  });

  it('says so when no stage qualifies', () => {
    const k = findKnee([stage(8, 40_000, 300)], 100);
    expect(k.level).toBeNull();
    expect(k.why).toMatch(/no stage kept TTFT p95 ≤ 100 ms/);
  });
});

let sim: RunningSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe('shardline sweep', () => {
  it(
    'finds the knee of a server that queues past 24 in flight, within one level, with a table, flags and a chart',
    { timeout: 120_000 },
    async () => {
      // The quota profile without its quotas: 24 slots; past 24 in flight, requests wait in the server's queue.
      sim = await startSim({
        profile: parseProfile({ base: 'quota', faults: { rate_limit: { tokens_per_min: 0, requests_per_min: 0 } } }),
      });
      const dir = tempDir();
      const input = writeInput(dir, 200, { max_tokens: 32 });
      const out = join(dir, 'sweep');
      const html = join(dir, 'sweep.html');
      const common = [
        input,
        '--endpoint',
        `${sim.url}/v1`,
        '--levels',
        '8,16,24,32,48',
        '--requests-per-stage',
        '150',
        '--out',
        out,
      ];
      const r = await runCli(['sweep', ...common, '--html', html], { timeoutMs: 110_000 });
      expect(r.code, r.stderr).toBe(0);
      const knee = Number(/knee: concurrency (\d+)/.exec(r.stdout)?.[1]);
      expect([16, 24, 32]).toContain(knee);
      expect(r.stdout).toContain(`--concurrency ${knee}`);
      expect(r.stdout.split('\n').filter((l) => /^\s+\d+\s+[\d,]+\s/.test(l))).toHaveLength(5);
      // Each stage is a normal run directory holding its share of the input.
      for (const level of [8, 16, 24, 32, 48]) {
        expect(existsSync(join(out, `c${level}`, 'run.json'))).toBe(true);
        expect(loadResults(join(out, `c${level}`))).toHaveLength(150);
      }

      // Run again with --json: every stage directory is complete, so nothing is sent and the answer holds.
      const again = await runCli(['sweep', ...common, '--json'], { timeoutMs: 60_000 });
      expect(again.code, again.stderr).toBe(0);
      const doc = JSON.parse(again.stdout) as { schema: string; stages: SweepStage[]; knee: { level: number } };
      expect(doc.schema).toBe('shardline.sweep/v1');
      expect(doc.knee.level).toBe(knee);
      expect(doc.stages.map((s) => s.level)).toEqual([8, 16, 24, 32, 48]);
      // Read as they were, not run again: a second start and end stretched each stage's window by the
      // time since the first sweep, cut its TPM, and once moved the knee from 16 to 24.
      for (const level of [8, 16, 24, 32, 48])
        expect(ofType(loadEvents(join(out, `c${level}`)), 'run_start')).toHaveLength(1);
      // Past the knee the server queues: TTFT p95 at 48 is well above 8's, throughput no better than 5% over 24's.
      const at = (l: number) => doc.stages.find((s) => s.level === l)!;
      expect(at(48).ttftP95Ms!).toBeGreaterThan(3 * at(8).ttftP95Ms!);
      expect(at(48).tpm).toBeGreaterThan(at(8).tpm);

      const browser = await launch();
      try {
        const { page, consoleErrors, requests } = await openFile(browser, html);
        expect(consoleErrors).toEqual([]);
        expect(requests.filter((u) => !u.startsWith('file:'))).toEqual([]);
        expect(await page.getAttribute('[data-knee]', 'data-knee')).toBe(String(knee));
        const charts = await page.$$eval('svg[data-chart]', (svgs) =>
          svgs.map((s) => ({
            title: s.getAttribute('data-chart'),
            points: Array.from(s.querySelectorAll('polyline')).map((p) => p.points.length),
            knee: s.querySelectorAll('line.knee').length,
          })),
        );
        expect(charts).toEqual([
          { title: 'completion tokens/min', points: [5], knee: 1 },
          { title: 'server TTFT, ms', points: [5, 5], knee: 1 },
        ]);
        expect(await page.locator('tr.knee td').first().textContent()).toBe(String(knee));
      } finally {
        await browser.close();
      }
      expect(readFileSync(html, 'utf8')).not.toMatch(/<script/);
    },
  );

  it('exits 2 naming a bad --levels, and 1 naming an input it cannot read', async () => {
    const dir = tempDir();
    const input = writeInput(dir, 5);
    const bad = await runCli([
      'sweep',
      input,
      '--endpoint',
      'http://127.0.0.1:9/v1',
      '--levels',
      '8,4',
      '--out',
      join(dir, 's'),
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/`--levels`.*rising levels.*got `8,4`/);
    const missing = await runCli([
      'sweep',
      join(dir, 'nope.jsonl'),
      '--endpoint',
      'http://127.0.0.1:9/v1',
      '--levels',
      '8',
      '--out',
      join(dir, 's'),
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/Cannot read input `.*nope\.jsonl`/);
  });
});
