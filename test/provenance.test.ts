import { cpSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyze, sampleMinute, verifySample } from '../src/index.js';
import { countedLinesSha256, scanRunFiles, sortCanonical } from '../src/provenance/minute-scan.js';
import { eventFilesOf } from '../src/provenance/sample.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/run-dir.js';
import { writeSynthRun } from './helpers/synth-log.js';

// ~200 s of generated run: several full UTC minutes.
function longRun(): string {
  return writeSynthRun(join(tempDir('sl-prov-'), 'run'), { requests: 400, limit: 4, readAhead: 4, serverTtftMs: () => 50, decodeMs: 1950, tokens: 37, startMs: Date.UTC(2026, 10, 27, 12, 0, 20) });
}

describe('sample → verify', () => {
  it('samples the peak full minute with figures equal to the report, and verifies them', async () => {
    const run = longRun();
    const sample = await sampleMinute(run);
    const report = await analyze([run]);
    expect(sample.minute.partial).toBe(false);
    expect(sample.figures.aggregate_tpm).toBe(report.tpm.aggregate_peak);
    expect(sample.minute.start).toBe(report.tpm.aggregate_peak_minute);
    expect(sample.figures.completed_requests).toBe(sample.refs.length);
    expect(sample.figures.completion_tokens).toBe(sample.refs.length * 37);
    expect(sample.files.map((f) => f.path)).toEqual(['events/coordinator.jsonl', 'events/shard-000.jsonl']);
    for (const f of sample.files) expect(f.sha256).toMatch(/^[0-9a-f]{64}$/);
    const file = join(tempDir(), 'sample.json');
    writeFileSync(file, JSON.stringify(sample));
    const v = await verifySample(file);
    expect(v).toMatchObject({ ok: true });
  });

  it('verifies a copy of the run directory moved elsewhere', async () => {
    const run = longRun();
    const file = join(tempDir(), 'sample.json');
    writeFileSync(file, JSON.stringify(await sampleMinute(run)));
    const moved = join(tempDir('sl-moved-'), 'elsewhere');
    cpSync(run, moved, { recursive: true });
    expect(await verifySample(file, moved)).toMatchObject({ ok: true });
    expect(await verifySample(file, join(moved, 'events'))).toMatchObject({ ok: true });
  });

  it('catches one changed byte anywhere and names the file', async () => {
    for (const target of ['events/coordinator.jsonl', 'events/shard-000.jsonl']) {
      const run = longRun();
      const file = join(tempDir(), 'sample.json');
      writeFileSync(file, JSON.stringify(await sampleMinute(run)));
      const path = join(run, target);
      const bytes = readFileSync(path);
      // Flip one digit in the middle of the file: same length, still valid JSON.
      let i = Math.floor(bytes.length / 2);
      while (bytes[i]! < 0x30 || bytes[i]! > 0x38) i++;
      bytes[i]! += 1;
      writeFileSync(path, bytes);
      const v = await verifySample(file);
      expect(v.ok).toBe(false);
      expect(!v.ok && v.mismatch).toMatch(new RegExp(`^file ${target}: sha256`));
    }
  });

  it('names a doctored figure or a dropped reference', async () => {
    const run = longRun();
    const sample = await sampleMinute(run);
    const file = join(tempDir(), 'sample.json');
    writeFileSync(file, JSON.stringify({ ...sample, figures: { ...sample.figures, aggregate_tpm: sample.figures.aggregate_tpm + 1 } }));
    expect(await verifySample(file)).toEqual({ ok: false, mismatch: expect.stringMatching(/^figure aggregate_tpm: recomputed/) });
    writeFileSync(file, JSON.stringify({ ...sample, refs: sample.refs.slice(1) }));
    expect(await verifySample(file)).toEqual({ ok: false, mismatch: expect.stringMatching(/^line events\/shard-000\.jsonl:\d+: a succeeded request_end in the minute that the sample does not reference/) });
  });

  it('CLI: sample -o, verify exit 0 / 1, a chosen minute, a bad --minute exits 2', async () => {
    const run = longRun();
    const dir = tempDir();
    const file = join(dir, 's.json');
    const s = await runCli(['sample', run, '-o', file]);
    expect(s.code).toBe(0);
    expect(s.stderr).toMatch(/sampled 2026-11-27T12:0\d:00\.000Z/);
    const ok = await runCli(['verify', file]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^verified: /);
    const chosen = await runCli(['sample', run, '--minute', '2026-11-27T12:02:00Z']);
    expect(JSON.parse(chosen.stdout).minute).toEqual({ start: '2026-11-27T12:02:00.000Z', end: '2026-11-27T12:03:00.000Z', partial: false });
    const bad = await runCli(['sample', run, '--minute', 'noon']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/Expected `--minute`/);
    const shard = join(run, 'events', readdirSync(join(run, 'events')).find((f) => f.startsWith('shard'))!);
    writeFileSync(shard, `${readFileSync(shard, 'utf8')}\n`);
    const tampered = await runCli(['verify', file]);
    expect(tampered.code).toBe(1);
    expect(tampered.stdout).toMatch(/^mismatch: file events\/shard-000\.jsonl/);
  });

  it('reports how far the hashing has read, for sample and verify, in the library and on the CLI', async () => {
    const run = longRun();
    const total = eventFilesOf(run).reduce((n, f) => n + readFileSync(join(run, f)).length, 0);
    const file = join(tempDir(), 's.json');
    for (const step of ['sample', 'verify'] as const) {
      const seen: { bytes: number; fraction: number }[] = [];
      const onProgress = (p: { bytes: number; totalBytes: number; fraction: number }) => {
        expect(p.totalBytes).toBe(total);
        seen.push({ bytes: p.bytes, fraction: p.fraction });
      };
      if (step === 'sample') writeFileSync(file, JSON.stringify(await sampleMinute(run, 'best', onProgress)));
      else expect(await verifySample(file, undefined, onProgress)).toMatchObject({ ok: true });
      expect(seen.length, step).toBeGreaterThan(2);
      for (let i = 1; i < seen.length; i++) expect(seen[i]!.fraction).toBeGreaterThanOrEqual(seen[i - 1]!.fraction);
      expect(seen.slice(0, -1).every((p) => p.fraction < 1)).toBe(true);
      expect(seen[seen.length - 1]).toEqual({ bytes: total, fraction: 1 });
    }
    // On the CLI: drawn in place on a terminal, then cleared; the sample itself is the same.
    const CLEAR = '\r\x1b[2K';
    const drawn = await runCli(['sample', run, '--progress', 'tty']);
    expect(drawn.stderr.startsWith(`${CLEAR}shardline: hashing the event files to sample a minute `)).toBe(true);
    for (const d of drawn.stderr.split(CLEAR).filter(Boolean)) expect(d).toMatch(/^shardline: hashing the event files to sample a minute \d+% \([\d,]+ of [\d,]+ MB, \d+ s\)$/);
    expect(drawn.stderr.endsWith(CLEAR)).toBe(true);
    const quiet = await runCli(['sample', run]);
    expect(quiet.stderr).toBe('');
    expect(drawn.stdout).toBe(quiet.stdout);
    const checked = await runCli(['verify', file, '--progress', 'tty']);
    expect(checked.code).toBe(0);
    expect(checked.stderr).toContain('shardline: hashing the event files to verify the sample');
  });
});

describe('scanRunFiles', () => {
  it('tallies every minute in one pass as the two-pass sample would, and refuses unsorted files for it', async () => {
    const dir = longRun();
    const files = eventFilesOf(dir);
    const all = await scanRunFiles(dir, files, undefined, true);
    expect(all.tallies.size).toBeGreaterThan(2);
    for (const [minute, tally] of all.tallies) {
      // What the second pass of the old sample computed for that minute, from the lines' text.
      const counted = sortCanonical((await scanRunFiles(dir, files, minute)).counted);
      expect(tally.refs).toEqual(counted.map((c) => ({ file: c.file, line: c.line })));
      expect(tally.tokens).toBe(counted.reduce((a, c) => a + c.tokens, 0));
      expect(tally.sha256.digest('hex')).toBe(countedLinesSha256(counted));
    }
    await expect(scanRunFiles(dir, [...files].reverse(), undefined, true)).rejects.toThrow(/sorted/);
  });
});
