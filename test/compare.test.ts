import { describe, expect, it } from 'vitest';
import { analyze, compareReports } from '../src/index.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/run-dir.js';
import { writeSynthRun, type SynthOptions } from './helpers/synth-log.js';

const base: SynthOptions = { requests: 300, limit: 4, readAhead: 16, serverTtftMs: () => 40, decodeMs: 400 };
const synth = (o: Partial<SynthOptions>) => writeSynthRun(tempDir('sl-cmp-'), { ...base, ...o });

describe('compare', () => {
  it('more slots on a server with headroom: improved', async () => {
    const c = compareReports(await analyze([synth({})]), await analyze([synth({ limit: 16 })]));
    expect(c.stability.judgement).toBe('improved');
    const tpm = c.rows.find((r) => r.name === 'tpm_average')!;
    expect(tpm.improved).toBe(true);
    expect(tpm.b!).toBeGreaterThan(tpm.a! * 3);
    expect(c.stability.reasons[0]).toMatch(/throughput up/);
  });

  it('a throughput gain that brings retries is unstable', async () => {
    const c = compareReports(
      await analyze([synth({})]),
      await analyze([synth({ limit: 16, failP: 0.3, failCause: 'http_429', backoffMs: 100 })]),
    );
    expect(c.stability.judgement).toBe('unstable');
    expect(c.stability.reasons.join(' ')).toMatch(/retry rate up/);
  });

  it('fewer slots: regressed', async () => {
    const c = compareReports(await analyze([synth({ limit: 16 })]), await analyze([synth({})]));
    expect(c.stability.judgement).toBe('regressed');
  });

  it('identical runs: unchanged, with zero deltas', async () => {
    const run = synth({});
    const c = compareReports(await analyze([run]), await analyze([run]));
    expect(c.stability.judgement).toBe('unchanged');
    for (const r of c.rows) if (r.delta !== null) expect(r.delta).toBe(0);
  });

  it('CLI prints a table or JSON', async () => {
    const a = synth({});
    const b = synth({ limit: 16 });
    const text = await runCli(['compare', a, b]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/tpm_average/);
    expect(text.stdout).toMatch(/stability: IMPROVED/);
    const json = JSON.parse((await runCli(['compare', a, b, '--json'])).stdout);
    expect(json.schema).toBe('shardline.compare/v1');
    expect(json.stability.judgement).toBe('improved');
  });
});

describe('report CLI', () => {
  it('prints only the JSON document with --json, and a readable summary otherwise', async () => {
    const run = synth({});
    const json = await runCli(['report', run, '--json']);
    expect(json.code).toBe(0);
    const r = JSON.parse(json.stdout);
    expect(r.schema).toBe('shardline.report/v1');
    expect(r.verdict.findings[0].mode).toBe('queueing');
    const text = await runCli(['report', run]);
    // A full client bound in front of a flat server: the bound was the limit, not a fault.
    expect(text.stdout).toMatch(/VERDICT: HEALTHY-bound \(healthy\); dominant bucket: queue_wait/);
    expect(text.stdout).toMatch(/the client bound was the limit of this run \(--concurrency 4\)/);
    const missing = await runCli(['report', '/nonexistent/run']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/No such run directory/);
  });
});
