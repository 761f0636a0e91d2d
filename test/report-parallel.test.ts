import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyze } from '../src/index.js';
import { resolveEventFiles } from '../src/events/event-reader.js';
import type { FlatEvent } from '../src/events/flat-event.js';
import { readFlatEvents } from '../src/events/flat-event-reader.js';
import { IdTooLongError, readFlatEventsInWorker } from '../src/events/worker-event-reader.js';
import { CLI } from './helpers/cli.js';
import { tempDir } from './helpers/run-dir.js';
import { writeSynthRun } from './helpers/synth-log.js';

/** Everything an event carries, ids and strings included, as a plain object. */
function snapshot(e: FlatEvent): Record<string, unknown> {
  return {
    ts: e.ts,
    shard: e.shard,
    type: e.type,
    attempt: e.attempt,
    outcome: e.outcome,
    status: e.status,
    completionTokens: e.completionTokens,
    connectMs: e.connectMs,
    delayMs: e.delayMs,
    tokensEstimated: e.tokensEstimated,
    cause: e.cause,
    error: e.error,
    run: e.run,
    id: e.hasId ? Buffer.from(e.idBuf.subarray(e.idStart, e.idEnd)).toString('utf8') : null,
  };
}

function failingRun(): string {
  const dir = writeSynthRun(tempDir('sl-par-'), {
    requests: 3000,
    limit: 16,
    failP: 0.2,
    failCause: 'http_5xx',
    failStatus: 503,
    fatalP: 0.02,
    newConnP: 0.3,
    postprocessMs: 2,
  });
  // Lines the byte decoder hands to JSON.parse (escapes, a non-ASCII id, whitespace), and a bad one.
  appendFileSync(
    join(dir, 'events', 'shard-000.jsonl'),
    [
      '{"v":1,"ts":1795780900000,"run":"synth","shard":0,"type":"enqueue","id":"quo\\"ted"}',
      '{ "v": 1, "ts": 1795780900001, "run": "synth", "shard": 0, "type": "attempt_start", "id": "quo\\"ted", ' +
        '"attempt": 1 }',
      '{"v":1,"ts":1795780900002,"run":"synth","shard":0,"type":"attempt_end","id":"quo\\"ted","attempt":1,' +
        '"outcome":"error","cause":"conn_reset","error":"socket \\"hang\\" up ✗"}',
      'not json',
      '{"v":1,"ts":1795780900003,"run":"synth","shard":0,"type":"request_end","id":"quo\\"ted","outcome":"failed",' +
        '"attempts":1,"completion_tokens":0,"prompt_tokens":0,"cause":"conn_reset"}',
      '',
    ].join('\n'),
  );
  return dir;
}

describe('reading on a second thread', () => {
  it('hands over exactly the events, in the order, that reading in-process gives', async () => {
    const files = resolveEventFiles([failingRun()]);
    const inProcess: Record<string, unknown>[] = [];
    const a = await readFlatEvents(files, (e) => inProcess.push(snapshot(e)));
    const viaWorker: Record<string, unknown>[] = [];
    // Tiny slots: many hand-overs, and slots sent early because their ids filled up.
    const b = await readFlatEventsInWorker(files, (e) => viaWorker.push(snapshot(e)), {
      slotsPerFile: 2,
      slotEvents: 7,
      idBytes: 24,
    });
    expect(inProcess.length).toBeGreaterThan(20_000);
    expect(viaWorker).toEqual(inProcess);
    expect(b).toEqual(a);
    expect(a.badLines).toBe(1);
    expect(inProcess.some((e) => e.id === 'quo"ted' && e.error === 'socket "hang" up ✗')).toBe(true);
  });

  it('gives the same report as reading in-process', async () => {
    const dir = failingRun();
    const serial = await analyze([dir], { parallel: false });
    const parallel = await analyze([dir], { parallel: true });
    expect(parallel).toEqual(serial);
    expect(serial.requests.failed).toBeGreaterThan(0);
    expect(serial.detail.recent_errors.some((x) => x.id === 'quo"ted')).toBe(true);
  });

  it('an id longer than a slot holds stops the thread; analyze() then reads in-process', async () => {
    const dir = failingRun();
    const files = resolveEventFiles([dir]);
    await expect(readFlatEventsInWorker(files, () => undefined, { idBytes: 3 })).rejects.toBeInstanceOf(IdTooLongError);
    const serial = await analyze([dir], { parallel: false });
    expect(await analyze([dir], { parallel: true, workerRead: { idBytes: 3 } })).toEqual(serial);
  });

  it('`report | head`: a reader that closes the pipe early ends the CLI quietly', async () => {
    const dir = failingRun();
    const child = spawn(process.execPath, [CLI, 'report', dir, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('reports a file that cannot be read as an error', async () => {
    const files = [{ path: join(tempDir('sl-par-'), 'missing.jsonl'), rel: 'missing.jsonl', runDir: '.' }];
    await expect(readFlatEventsInWorker(files, () => undefined)).rejects.toThrow(/missing\.jsonl/);
  });
});

describe('reading progress', () => {
  it('reports the share of the log read, in order, ending at 1, on both readers', async () => {
    const dir = writeSynthRun(tempDir('sl-prog-'), { requests: 4000, limit: 16 });
    for (const parallel of [false, true]) {
      const seen: { fraction: number; events: number }[] = [];
      const report = await analyze([dir], { parallel, progressEvery: 2000, onProgress: (p) => seen.push(p) });
      expect(seen.length, `parallel ${parallel}`).toBeGreaterThan(5);
      for (let i = 1; i < seen.length; i++) {
        expect(seen[i]!.fraction).toBeGreaterThanOrEqual(seen[i - 1]!.fraction);
        expect(seen[i]!.events).toBeGreaterThan(seen[i - 1]!.events);
      }
      expect(seen[0]!.fraction).toBeGreaterThanOrEqual(0);
      // Midway through the read, midway through the time span (the synthetic run is evenly paced).
      const mid = seen[Math.floor(seen.length / 2)]!;
      expect(mid.fraction).toBeGreaterThan(0.2);
      expect(mid.fraction).toBeLessThan(0.8);
      expect(seen[seen.length - 1]).toEqual({ fraction: 1, events: report.detail.events });
    }
  });

  it('CLI: --progress tty draws the read in place and clears it; the report itself is unchanged', async () => {
    const dir = writeSynthRun(tempDir('sl-prog-'), { requests: 20000, limit: 16 });
    const run = (args: string[]) =>
      new Promise<{ stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [CLI, 'report', dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('exit', () => resolve({ stdout, stderr }));
      });
    const tty = await run(['--progress', 'tty']);
    const CLEAR = '\r\x1b[2K';
    expect(tty.stderr.startsWith(`${CLEAR}shardline: reading events `)).toBe(true);
    for (const drawn of tty.stderr.split(CLEAR).filter(Boolean))
      expect(drawn).toMatch(/^shardline: reading events \d+% \([\d,]+ so far, \d+ s\)$/);
    expect(tty.stderr.endsWith(CLEAR)).toBe(true);
    const quiet = await run([]);
    // Not a terminal: never drawn in place; at most whole progress lines (none if the read is quick).
    expect(quiet.stderr).not.toContain('\r');
    for (const line of quiet.stderr.split('\n').filter(Boolean))
      expect(line).toMatch(/^shardline: reading events \d+%/);
    expect(tty.stdout).toBe(quiet.stdout);
    expect(quiet.stdout).toMatch(/^shardline report — run/);
  });
});
