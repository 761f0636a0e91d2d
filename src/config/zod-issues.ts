import type { z } from 'zod';

/**
 * Render zod issues as one line per problem, naming the field (or the flag/variable the caller maps
 * its path to), the value received and what was expected:
 * ``Expected `--concurrency` to be an integer ≥ 1, got `0` ``.
 */
export function formatZodIssues(
  error: z.ZodError,
  input: unknown,
  nameOf: (path: readonly PropertyKey[]) => string = (p) => p.map(String).join('.') || '(root)',
): string {
  return error.issues
    .map((issue) => {
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((k) => `Unknown field \`${nameOf([...issue.path, k])}\``).join('\n');
      }
      const value = valueAt(input, issue.path);
      // A required option left out: say so, rather than "expected a string, got nothing".
      if (value === undefined && (issue.code === 'invalid_type' || issue.code === 'invalid_union'))
        return `\`${nameOf(issue.path)}\` is required`;
      // A union without a message of its own (one URL or a list): the branch of the value's own type
      // says what is wrong with it.
      const plainUnion = issue.code === 'invalid_union' && (!issue.message || issue.message === 'Invalid input');
      if (plainUnion && issue.errors.length > 0) {
        const branch = issue.errors.find(
          (b) => b.length > 0 && !b.some((i) => i.code === 'invalid_type' && !i.path.length),
        );
        const inner = branch?.[0];
        if (inner) {
          const at = [...issue.path, ...inner.path];
          return `Expected \`${nameOf(at)}\` ${expectation(inner)}, got ${describe(valueAt(input, at))}`;
        }
      }
      return `Expected \`${nameOf(issue.path)}\` ${expectation(issue)}, got ${describe(value)}`;
    })
    .join('\n');
}

function describe(value: unknown): string {
  return value === undefined ? 'nothing' : `\`${short(value)}\``;
}

function expectation(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'too_small':
      return `to be ${noun(issue.origin)} ${issue.inclusive ? '≥' : '>'} ${String(issue.minimum)}`;
    case 'too_big':
      return `to be ${noun(issue.origin)} ${issue.inclusive ? '≤' : '<'} ${String(issue.maximum)}`;
    case 'invalid_type':
      return `to be ${issue.expected === 'int' ? 'an integer' : `a ${issue.expected}`}`;
    case 'invalid_value':
      return `to be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_union':
      // A union given its own message (`{ error: '…' }`) says what it accepts better than this.
      return issue.message && issue.message !== 'Invalid input'
        ? `to be ${issue.message}`
        : 'to be one of the accepted forms';
    case 'custom':
      // A check whose message names a thing ("an integer from 1 to …") reads as the expectation itself.
      return /^an? /.test(issue.message) ? `to be ${issue.message}` : `to be valid (${issue.message})`;
    default:
      return `to be valid (${issue.message})`;
  }
}

function noun(origin: string): string {
  if (origin === 'number') return 'a number';
  if (origin === 'int') return 'an integer';
  if (origin === 'array') return 'a list with length';
  if (origin === 'string') return 'a string with length';
  return origin;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = input;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}

function short(value: unknown): string {
  const s = typeof value === 'string' ? value : JSON.stringify(value);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
