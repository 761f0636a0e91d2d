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
  return writeSynthRun(join(tempDir('sl-prov-'), 'run'), {
    requests: 400,
    limit: 4,
    readAhead: 4,
    serverTtftMs: () => 50,
    decodeMs: 1950,
    tokens: 37,
    startMs: Date.UTC(2026, 10, 27, 12, 0, 20),
  });
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
    writeFileSync(
      file,
      JSON.stringify({ ...sample, figures: { ...sample.figures, aggregate_tpm: sample.figures.aggregate_tpm + 1 } }),
    );
    expect(await verifySample(file)).toEqual({
      ok: false,
      mismatch: expect.stringMatching(/^figure aggregate_tpm: recomputed/),
    });
    writeFileSync(file, JSON.stringify({ ...sample, refs: sample.refs.slice(1) }));
    expect(await verifySample(file)).toEqual({
      ok: false,
      mismatch: expect.stringMatching(
        /^line events\/shard-000\.jsonl:\d+: a succeeded request_end in the minute that the sample does not reference/,
      ),
    });
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
    expect(JSON.parse(chosen.stdout).minute).toEqual({
      start: '2026-11-27T12:02:00.000Z',
      end: '2026-11-27T12:03:00.000Z',
      partial: false,
    });
    const bad = await runCli(['sample', run, '--minute', 'noon']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/Expected `--minute`/);
    const shard = join(
      run,
      'events',
      readdirSync(join(run, 'events')).find((f) => f.startsWith('shard'))!,
    );
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
    for (const d of drawn.stderr.split(CLEAR).filter(Boolean))
      expect(d).toMatch(/^shardline: hashing the event files to sample a minute \d+% \([\d,]+ of [\d,]+ MB, \d+ s\)$/);
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

  it('reads ts and run off the writer prefix exactly as JSON.parse would, and parses whatever else', async () => {
    const dir = tempDir('sl-scan-');
    const write = (name: string, lines: string[], torn = '') =>
      writeFileSync(join(dir, name), lines.map((l) => `${l}\n`).join('') + torn);
    const ev = (ts: string, run: string, shard: string, type: string, extra = '') =>
      `{"v":1,"ts":${ts},"run":"${run}","shard":${shard},"type":"${type}"${extra}}`;
    const end = (ts: string, run: string, tokens: number) =>
      ev(
        ts,
        run,
        '0',
        'request_end',
        `,"id":"r","outcome":"succeeded","attempts":1,"completion_tokens":${tokens},"prompt_tokens":1`,
      );
    write('a.jsonl', [
      ev('1795780800005.125', 'run-a', '0', 'attempt_start', ',"id":"r1","attempt":1'),
      ev('1795780799000', 'run-a', '-1', 'gauge', ',"backlog":0'),
      // Decimals that round: what Number() gives must be what JSON.parse gives.
      ev('1795780800010.1234567891', 'run-a', '0', 'first_token', ',"id":"r1","attempt":1'),
      end('1795780860000.5', 'run-a', 7),
      // Not the writer's shape (exponent, escaped run, spaces): parsed in full, still counted.
      ev('1.7957808e12', 'run-a', '0', 'gauge'),
      ev('1795780861000', 'run-\\u0062', '0', 'gauge'),
      '{ "v":1, "ts":1795780900000, "run":"run-c", "shard":0, "type":"gauge" }',
      end('1795780870000', 'run-b', 5),
    ]);
    // The last line has no newline: a crash may have torn it, so it must parse in full, and a torn
    // one counts for nothing.
    write(
      'b.jsonl',
      [ev('1795780700000', 'run-b', '1', 'shard_start', ',"pid":1,"concurrency":2')],
      '{"v":1,"ts":1795780999999,"run":"run-x","sh',
    );
    write('c.jsonl', [ev('1795780800000', 'run-b', '2', 'gauge')], ev('1795780950000', 'run-b', '2', 'gauge'));
    const files = ['a.jsonl', 'b.jsonl', 'c.jsonl'];
    const scan = await scanRunFiles(dir, files, undefined, true);
    // The reference: every line through JSON.parse.
    let minTs = Infinity;
    let maxTs = -Infinity;
    const runIds = new Set<string>();
    const minuteTokens = new Map<number, number>();
    for (const f of files) {
      for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
        let e: { ts?: unknown; run?: unknown; type?: unknown; outcome?: unknown; completion_tokens?: number };
        try {
          e = JSON.parse(line) as typeof e;
        } catch {
          continue;
        }
        if (typeof e.ts !== 'number') continue;
        minTs = Math.min(minTs, e.ts);
        maxTs = Math.max(maxTs, e.ts);
        if (typeof e.run === 'string') runIds.add(e.run);
        if (e.type === 'request_end' && e.outcome === 'succeeded') {
          const m = Math.floor(e.ts / 60_000);
          minuteTokens.set(m, (minuteTokens.get(m) ?? 0) + (e.completion_tokens ?? 0));
        }
      }
    }
    expect(scan.minTs).toBe(minTs);
    expect(scan.maxTs).toBe(maxTs);
    expect(scan.maxTs).toBe(1795780950000);
    expect([...scan.runIds].sort()).toEqual([...runIds].sort());
    expect([...scan.runIds].sort()).toEqual(['run-a', 'run-b', 'run-c']);
    expect(scan.minuteTokens).toEqual(minuteTokens);
    expect([...scan.minuteTokens.values()].reduce((a, b) => a + b, 0)).toBe(12);
    expect(scan.files.map((f) => f.lines)).toEqual([8, 2, 2]);
  });
});
