import { createReadStream, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { RunOptionsInput } from '../config/run-options.js';
import { analyze } from '../diagnose/analyze.js';
import { findKnee, type Knee, type SweepStage } from '../diagnose/knee.js';
import type { Report } from '../diagnose/report-types.js';
import { checkReadableInput } from '../input/check-readable.js';
import { ensureDir } from '../util/ensure-dir.js';
import { hashFile } from '../events/hashing.js';
import { readManifest } from '../runner/output/run-manifest.js';
import { run } from '../runner/run.js';

export interface SweepOptions {
  input: string;
  /** Everything a run takes but `input`, `out` and `concurrency` (endpoint, model, headers, …). */
  run: Omit<RunOptionsInput, 'input' | 'out' | 'concurrency'>;
  /** Each stage's run directory goes below this one (`c<level>`). */
  out: string;
  /**
   * Concurrency levels, or `auto`: 1, 2, 4, … up to 512, stopping once two levels in a row add under 5% throughput or
   * miss the SLO.
   */
  levels: readonly number[] | 'auto';
  /** TTFT p95 bound for the knee; 3 × the lightest stage's when absent. */
  sloTtftP95Ms?: number | undefined;
  /** Requests per stage (the input's first lines). @default max(200, 10 × level) */
  requestsPerStage?: number | undefined;
  /** Called after each stage. */
  onStage?: (stage: SweepStage) => void;
}

export interface SweepResult {
  stages: SweepStage[];
  knee: Knee;
}

const AUTO_MAX_LEVEL = 512;

/**
 * Short runs at rising concurrency against one endpoint, each a normal run directory, and the knee:
 * the level to run at (see findKnee).
 * @example const { knee } = await sweep({ input: 'in.jsonl', run: { endpoint }, out: 'sweep', levels: 'auto' })
 */
export async function sweep(o: SweepOptions): Promise<SweepResult> {
  checkReadableInput(o.input);
  const stages: SweepStage[] = [];
  const levels = o.levels === 'auto' ? doubling() : o.levels;
  let flat = 0;
  let over = 0;
  const runStage = async (level: number): Promise<SweepStage> => {
    const dir = join(o.out, `c${level}`);
    ensureDir(dir);
    const input = join(dir, 'input.jsonl');
    await headLines(o.input, input, o.requestsPerStage ?? Math.max(200, 10 * level));
    // A stage already run to the end over the same lines is read as it is: running it again sends
    // nothing, but its start and end would stretch the stage's window (and cut its TPM) by the time
    // since the first sweep.
    if (!(await finishedOver(dir, input, level)))
      await run({ ...o.run, input, out: dir, concurrency: level, progress: 'off' });
    const r = await analyze([dir]);
    const stage: SweepStage = {
      level,
      dir,
      // An embeddings job generates nothing: its throughput is input tokens, and without a first token
      // its server time stands in for TTFT (the same in every stage, so the knee compares like with like).
      tpm: r.tpm.run_average > 0 ? r.tpm.run_average : inputTpm(r),
      ttftP95Ms: r.ttft_ms.server.p95 ?? r.detail.plain_server_ms.p95,
      ttftP99Ms: r.ttft_ms.server.p99 ?? r.detail.plain_server_ms.p99,
      retryRate: r.retries.rate,
      successRate: r.requests.success_rate,
    };
    stages.push(stage);
    o.onStage?.(stage);
    return stage;
  };
  for (const level of levels) {
    const prev = stages[stages.length - 1];
    const stage = await runStage(level);
    if (o.levels !== 'auto') continue;
    const slo = findKnee(stages, o.sloTtftP95Ms).sloTtftP95Ms;
    over = stage.ttftP95Ms !== null && stage.ttftP95Ms > slo ? over + 1 : 0;
    flat = prev && stage.tpm < prev.tpm * 1.05 ? flat + 1 : 0;
    if (over >= 2 || flat >= 2) break;
  }
  // Doubling lands only on powers of two: bisect between the knee and its neighbours (above first:
  // the level past a knee at 12 is 16, which misses the SLO) until each is within an eighth of it,
  // so a knee at 12 is reported as 12, not 8 or 16.
  while (o.levels === 'auto') {
    const knee = findKnee(stages, o.sloTtftP95Ms).level;
    if (knee === null) break;
    const gap = Math.max(1, knee / 8);
    const above = Math.min(...stages.filter((s) => s.level > knee).map((s) => s.level));
    const below = Math.max(...stages.filter((s) => s.level < knee).map((s) => s.level));
    let mid: number;
    if (Number.isFinite(above) && above - knee > gap) mid = Math.round((knee + above) / 2);
    else if (Number.isFinite(below) && knee - below > gap) mid = Math.round((knee + below) / 2);
    else break;
    if (stages.some((s) => s.level === mid)) break;
    await runStage(mid);
  }
  stages.sort((a, b) => a.level - b.level);
  return { stages, knee: findKnee(stages, o.sloTtftP95Ms) };
}

/** Whether `dir` holds a run that finished over exactly these input lines at this concurrency. */
async function finishedOver(dir: string, input: string, level: number): Promise<boolean> {
  const previous = readManifest(dir);
  if (previous?.status !== 'finished' || previous.config['concurrency'] !== level) return false;
  return previous.input.sha256 === (await hashFile(input)).sha256;
}

function* doubling(): Generator<number> {
  for (let l = 1; l <= AUTO_MAX_LEVEL; l *= 2) yield l;
}

/** The first `n` non-blank lines of a JSONL file, copied whole. */
async function headLines(from: string, to: string, n: number): Promise<void> {
  const out = createWriteStream(to);
  let kept = 0;
  const lines = createInterface({ input: createReadStream(from), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    if (!out.write(`${line}\n`)) await new Promise<void>((r) => out.once('drain', () => r()));
    if (++kept >= n) break;
  }
  lines.close();
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

/** Prompt (input) tokens per minute over every endpoint of a report. */
function inputTpm(r: Report): number {
  return Object.values(r.by_endpoint).reduce((a, e) => a + e.input_tpm, 0);
}
