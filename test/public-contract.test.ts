import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createProgram } from '../src/cli/program.js';
import { BUCKETS, MODES } from '../src/diagnose/report-types.js';
import { THRESHOLDS } from '../src/diagnose/verdict.js';
import { BadInputError, ConfigError, InputChangedError, IoError, OutputWriteError, RedisError } from '../src/errors.js';
import { CAUSES } from '../src/events/event-types.js';
import { EVENT_TYPE_CODES, NUMERIC_FIELDS } from '../src/events/flat-event.js';
import { EXIT } from '../src/exit-codes.js';

// Names users' scripts depend on (event types and fields, causes, exit codes, error codes, report
// keys, commands) may be added to, never renamed; each is also documented. These tests fail when one
// changes or goes undocumented.

const doc = (path: string) => readFileSync(path, 'utf8');

describe('the public contract', () => {
  it('keeps every event type, cause and numeric event field, each documented in docs/events.md', () => {
    const events = doc('docs/events.md');
    expect(EVENT_TYPE_CODES.slice(0, 23)).toEqual([
      'run_start',
      'shard_start',
      'enqueue',
      'attempt_start',
      'conn_open',
      'response_headers',
      'first_token',
      'attempt_end',
      'backoff',
      'postprocess_start',
      'postprocess_end',
      'request_end',
      'gauge',
      'shard_end',
      'shard_exit',
      'run_end',
      'limit',
      'stale_connection',
      'keepalive_off',
      'endpoint_down',
      'endpoint_up',
      'paused',
      'keepalive_disabled',
    ]);
    for (const type of EVENT_TYPE_CODES) expect(events, type).toContain(`\`${type}\``);
    expect([...CAUSES]).toEqual([
      'http_429',
      'http_5xx',
      'http_4xx',
      'timeout_connect',
      'timeout_ttft',
      'timeout_idle',
      'timeout_total',
      'conn_reset',
      'conn_refused',
      'protocol_error',
    ]);
    for (const cause of CAUSES) expect(events, cause).toContain(`\`${cause}\``);
    for (const field of Object.keys(NUMERIC_FIELDS)) expect(events, field).toContain(`\`${field}`);
  });

  it('keeps the exit codes, each in docs/run.md', () => {
    expect(EXIT).toEqual({ OK: 0, FAILURE: 1, USAGE: 2, REQUESTS_FAILED: 3, INTERRUPTED: 130 });
    const run = doc('docs/run.md');
    for (const code of Object.values(EXIT)) expect(run).toMatch(new RegExp(`^\\| ${code} \\|`, 'm'));
  });

  it('keeps the error codes of typed errors', () => {
    expect(
      [
        new ConfigError('x'),
        new BadInputError('x'),
        new IoError('x'),
        new OutputWriteError('x'),
        new InputChangedError('x'),
        new RedisError('x'),
      ].map((e) => [e.name, e.code]),
    ).toEqual([
      ['ConfigError', 'SL_ERR_CONFIG'],
      ['BadInputError', 'SL_ERR_BAD_INPUT'],
      ['IoError', 'SL_ERR_IO'],
      ['OutputWriteError', 'SL_ERR_IO'],
      ['InputChangedError', 'SL_ERR_INPUT_CHANGED'],
      ['RedisError', 'SL_ERR_REDIS'],
    ]);
    const cause = new Error('disk');
    expect(new IoError('x', { cause }).cause).toBe(cause);
  });

  it('keeps the report’s buckets, modes and thresholds, each in docs/report.md', () => {
    const report = doc('docs/report.md');
    for (const bucket of BUCKETS) expect(report, bucket).toContain(`\`${bucket}\``);
    for (const mode of MODES) expect(report, mode).toContain(`\`${mode}\``);
    // The thresholds are documented by value in prose, and the reader pointed at their one definition.
    expect(Object.keys(THRESHOLDS).length).toBeGreaterThan(10);
    expect(report).toContain('`THRESHOLDS`');
  });

  it('keeps the commands, each in the README', () => {
    const names = createProgram()
      .commands.map((c) => c.name())
      .sort();
    expect(names).toEqual(
      expect.arrayContaining(['compare', 'demo', 'report', 'run', 'sample', 'sim', 'sweep', 'verify', 'worker']),
    );
    const readme = doc('README.md');
    for (const name of names) expect(readme, name).toMatch(new RegExp(`shardline ${name}\\b`));
  });
});
