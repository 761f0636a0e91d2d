import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { BadInputError } from '../errors.js';
import { countedLinesSha256, scanRunFiles, sortCanonical, type ScanProgress } from './minute-scan.js';
import type { MinuteSample } from './sample.js';

export type VerifyResult = { ok: true; summary: string } | { ok: false; mismatch: string };

/**
 * Re-hash every file of a sample, re-read every referenced line, find every line that should have
 * been counted, and recompute every figure. The first mismatch is named (file hash, line, figure).
 * `eventsDir` is the run directory (or its events/ directory) if it moved since sampling;
 * `onProgress` follows the read of the files.
 */
export async function verifySample(
  samplePath: string,
  eventsDir?: string,
  onProgress?: (p: ScanProgress) => void,
): Promise<VerifyResult> {
  let sample: MinuteSample;
  try {
    sample = JSON.parse(readFileSync(samplePath, 'utf8')) as MinuteSample;
  } catch (cause) {
    throw new BadInputError(`Cannot read sample \`${samplePath}\`: ${(cause as Error).message}`, { cause });
  }
  if (sample.schema !== 'shardline.sample/v1')
    throw new BadInputError(`\`${samplePath}\` is not a shardline sample (schema ${String(sample.schema)})`);
  const runDir = eventsDir
    ? basename(eventsDir) === 'events' && !existsSync(join(eventsDir, 'events'))
      ? dirname(eventsDir)
      : eventsDir
    : sample.run_dir;
  for (const f of sample.files) {
    if (!existsSync(join(runDir, f.path))) return { ok: false, mismatch: `file ${f.path}: missing under ${runDir}` };
  }
  const minute = Date.parse(sample.minute.start) / 60_000;
  const scan = await scanRunFiles(
    runDir,
    sample.files.map((f) => f.path),
    minute,
    false,
    onProgress,
  );
  for (let i = 0; i < sample.files.length; i++) {
    const want = sample.files[i]!;
    const got = scan.files[i]!;
    if (got.sha256 !== want.sha256)
      return {
        ok: false,
        mismatch: `file ${want.path}: sha256 ${got.sha256} differs from the sample's ${want.sha256}`,
      };
    if (got.bytes !== want.bytes)
      return { ok: false, mismatch: `file ${want.path}: ${got.bytes} bytes, the sample says ${want.bytes}` };
    if (got.lines !== want.lines)
      return { ok: false, mismatch: `file ${want.path}: ${got.lines} lines, the sample says ${want.lines}` };
  }
  const counted = sortCanonical(scan.counted);
  const refs = sortCanonical(sample.refs);
  for (let i = 0; i < Math.max(counted.length, refs.length); i++) {
    const c = counted[i];
    const r = refs[i];
    if (!c)
      return {
        ok: false,
        mismatch:
          `line ${r!.file}:${r!.line}: referenced, but it is not a succeeded request_end in ` +
          `${sample.minute.start}`,
      };
    if (!r || c.file !== r.file || c.line !== r.line) {
      return {
        ok: false,
        mismatch: `line ${c.file}:${c.line}: a succeeded request_end in the minute that the sample does not reference`,
      };
    }
  }
  const hash = countedLinesSha256(counted);
  if (hash !== sample.refs_sha256)
    return { ok: false, mismatch: `refs_sha256: ${hash} differs from the sample's ${sample.refs_sha256}` };
  const tokens = counted.reduce((a, c) => a + c.tokens, 0);
  const perShard: Record<string, number> = {};
  for (const c of counted) perShard[String(c.shard)] = (perShard[String(c.shard)] ?? 0) + c.tokens;
  const checks: [string, number, number][] = [
    ['completion_tokens', tokens, sample.figures.completion_tokens],
    ['completed_requests', counted.length, sample.figures.completed_requests],
    ['aggregate_tpm', tokens, sample.figures.aggregate_tpm],
  ];
  for (const shard of new Set([...Object.keys(perShard), ...Object.keys(sample.figures.per_shard_tpm)])) {
    checks.push([`per_shard_tpm.${shard}`, perShard[shard] ?? 0, sample.figures.per_shard_tpm[shard] ?? 0]);
  }
  for (const [name, got, want] of checks) {
    if (got !== want) return { ok: false, mismatch: `figure ${name}: recomputed ${got}, the sample says ${want}` };
  }
  return {
    ok: true,
    summary:
      `verified: ${tokens.toLocaleString('en-US')} completion tokens from ${counted.length} requests in ` +
      `${sample.minute.start}${sample.minute.partial ? ' (partial minute)' : ''} — aggregate TPM ` +
      `${tokens.toLocaleString('en-US')} — across ${sample.files.length} files, run ${sample.run_id}`,
  };
}
