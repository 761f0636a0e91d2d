import type { ProgressSnapshot } from '../runner/coordinator.js';

/** One human line: done/total, aggregate TPM over the last 60 s, in-flight/limit, backlog, retries, TTFT p95. */
export function formatProgress(p: ProgressSnapshot): string {
  const total = p.total === undefined ? '?' : fmtInt(p.total);
  const ttft = p.ttftP95Ms === undefined ? '–' : `${Math.round(p.ttftP95Ms)} ms`;
  return (
    `[${(p.elapsedMs / 1000).toFixed(0)}s] ${fmtInt(p.done)}/${total} done · ${fmtTokens(p.tpm)} tok/min (60s) · ` +
    // Retries waiting out a backoff are backlog that no free slot can take: said apart, or in-flight
    // 0 beside a backlog reads as an admission gap.
    `in-flight ${p.inFlight}/${p.limit} · backlog ` +
    `${fmtInt(p.backlog)}${p.inBackoff ? ` (${fmtInt(p.inBackoff)} in backoff)` : ''} · retries ` +
    `${fmtInt(p.retries)} · ` +
    `failed ${fmtInt(p.failed)} · TTFT p95 ${ttft}` +
    (p.endpointDownSinceMs !== undefined
      ? ` · endpoint down since ${new Date(p.endpointDownSinceMs).toISOString().slice(11, 19)}Z ` +
        `(${Math.round(p.endpointDownS ?? 0)}s), dispatch paused`
      : '')
  );
}

/** How a command shows progress on stderr: `auto` is `tty` on a terminal, `lines` otherwise. */
export type ProgressMode = 'auto' | 'tty' | 'lines' | 'off';

/**
 * A status line on stderr: redrawn in place on a TTY, else one line every `everyMs` (10 s default)
 * so CI logs stay readable. `end()` leaves the last line (`keep`) or clears it.
 */
export function createStatusLine(mode: ProgressMode, stream: NodeJS.WriteStream = process.stderr, everyMs = 10_000) {
  const tty = mode === 'tty' || (mode === 'auto' && stream.isTTY === true);
  let last = -Infinity;
  let shown = false;
  return {
    show(text: string, elapsedMs: number): void {
      if (mode === 'off') return;
      if (tty) stream.write(`\r\x1b[2K${text}`);
      else if (elapsedMs - last >= everyMs) {
        last = elapsedMs;
        stream.write(`${text}\n`);
      } else return;
      shown = true;
    },
    end(keep = true): void {
      if (mode === 'off' || !tty || !shown) return;
      stream.write(keep ? '\n' : '\r\x1b[2K');
    },
  };
}

/**
 * Progress of a long read, as the share done, for commands that are quick on small logs and take a
 * while on large ones. In `auto` it stays quiet for the first second on a terminal and for the first
 * 10 s elsewhere, so a quick command prints nothing extra; redrawn at most every 100 ms; cleared at 1.
 * `describe` builds the text only when it is shown.
 */
export function createReadProgress(mode: ProgressMode, stream: NodeJS.WriteStream = process.stderr) {
  const line = createStatusLine(mode, stream);
  const t0 = performance.now();
  const quietMs = mode === 'auto' ? (stream.isTTY ? 1000 : 10_000) : 0;
  let drawnMs = -Infinity;
  return (fraction: number, describe: (elapsedS: number) => string): void => {
    const elapsedMs = performance.now() - t0;
    if (fraction >= 1) return line.end(false);
    if (elapsedMs < quietMs || elapsedMs - drawnMs < 100) return;
    drawnMs = elapsedMs;
    line.show(describe(elapsedMs / 1000), elapsedMs);
  };
}

/** The run's progress line (see formatProgress) on a status line. */
export function createProgressReporter(
  mode: ProgressMode,
  stream: NodeJS.WriteStream = process.stderr,
  everyMs = 10_000,
) {
  const line = createStatusLine(mode, stream, everyMs);
  return {
    update(p: ProgressSnapshot): void {
      line.show(formatProgress(p), p.elapsedMs);
    },
    end(): void {
      line.end();
    },
  };
}

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function fmtTokens(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return `${Math.round(n)}`;
}
