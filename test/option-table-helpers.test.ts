import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  addOptions,
  configKeys,
  defaultLabel,
  docsTable,
  flagValues,
  helpLine,
  longFlag,
  nameOf,
  parseOptions,
  publishOptions,
  reuse,
  schemaDefault,
  withoutDefault,
  type OptionSpec,
} from '../src/config/option-table.js';

// The option-table mechanism on a small table of its own: what each derived form says for each
// kind of entry (a default, none, a computed one, a negated flag, a repeatable one, a secret).

const TABLE = {
  level: {
    flag: '--level <n>',
    env: ['APP_LEVEL'],
    schema: z.coerce.number().int().min(1).default(3),
    help: 'how high',
  },
  name: { flag: '--name <s>', schema: z.string().min(1).optional(), help: 'a name', defaultText: 'the host name' },
  color: { flag: '--no-color', schema: z.boolean().default(true), help: 'plain output' },
  tag: {
    flag: '--tag <t>',
    schema: z.array(z.string()).default([]),
    help: 'a tag, repeatable',
    configAliases: ['tags'],
  },
  mode: { flag: '--mode <m>', schema: z.enum(['a', 'b|c']).default('a'), help: 'the mode' },
  token: {
    label: 'APP_TOKEN',
    env: ['APP_TOKEN'],
    schema: z.string().optional(),
    help: 'a secret',
    publish: { as: 'token_set', value: (t: string | undefined) => t !== undefined },
  },
  path: { label: 'PATH', schema: z.string(), help: 'the positional path' },
} satisfies Record<string, OptionSpec>;

describe('the option-table mechanism', () => {
  it('reads defaults from the schema and names each option by flag, else label', () => {
    expect(schemaDefault(TABLE.level.schema)).toBe(3);
    expect(schemaDefault(TABLE.name.schema)).toBeUndefined();
    expect(schemaDefault(TABLE.path.schema)).toBeUndefined();
    expect([defaultLabel(TABLE.level), defaultLabel(TABLE.name), defaultLabel(TABLE.color)]).toEqual([
      '3',
      'the host name',
      'on',
    ]);
    expect(defaultLabel(TABLE.tag)).toBeUndefined();
    expect([longFlag(TABLE.level), longFlag(TABLE.color), longFlag(TABLE.path)]).toEqual([
      '--level',
      '--no-color',
      undefined,
    ]);
    expect([nameOf(TABLE, 'level'), nameOf(TABLE, 'token'), nameOf(TABLE, 'nope')]).toEqual([
      '--level',
      'APP_TOKEN',
      'nope',
    ]);
  });

  it('writes help lines with env and default, and docs rows with | escaped and required marked', () => {
    expect(helpLine(TABLE.level)).toBe('how high (env APP_LEVEL; default 3)');
    expect(helpLine(TABLE.tag)).toBe('a tag, repeatable');
    const docs = docsTable(TABLE).split('\n');
    expect(docs[0]).toBe('| flag | env | default | meaning |');
    expect(docs).toContain('| `--level <n>` | `APP_LEVEL` | 3 | how high |');
    expect(docs).toContain('| `--mode <m>` |  | a | the mode |');
    expect(docs).toContain('|  | `APP_TOKEN` | none | a secret |');
    expect(docs).toContain('| `PATH` |  | (required) | the positional path |');
  });

  it('builds commander options: choices from the enum, repeatable arrays, and only given flags', () => {
    const cmd = new Command('x').exitOverride();
    addOptions(cmd, TABLE);
    cmd.parse(['--tag', 'a', '--tag', 'b', '--mode', 'b|c'], { from: 'user' });
    expect(flagValues(cmd, TABLE)).toEqual({ tag: ['a', 'b'], mode: 'b|c' });
    const bad = new Command('x').exitOverride().configureOutput({ writeErr: () => undefined });
    addOptions(bad, TABLE);
    expect(() => bad.parse(['--mode', 'z'], { from: 'user' })).toThrow(/Allowed choices are a, b\|c/);
  });

  it('maps config-file keys: the flag, the option name, aliases, and a negated flag either way', () => {
    const keys = configKeys(TABLE);
    expect(keys.get('level')).toEqual({ key: 'level', negated: false });
    expect(keys.get('tags')).toEqual({ key: 'tag', negated: false });
    expect(keys.get('color')).toEqual({ key: 'color', negated: false });
    expect(keys.get('no-color')).toEqual({ key: 'color', negated: true });
    expect(keys.has('APP_TOKEN')).toBe(false);
  });

  it('parses with errors that name the flag, and publishes secrets as set or not', () => {
    expect(parseOptions(TABLE, { path: 'p', level: '7' })).toMatchObject({ path: 'p', level: 7, color: true, tag: [] });
    expect(() => parseOptions(TABLE, { path: 'p', level: '0' })).toThrow(/`--level` to be a number ≥ 1/);
    expect(() => parseOptions(TABLE, {})).toThrow(/`PATH` is required/);
    const parsed = parseOptions(TABLE, { path: 'p', token: 'sk-secret' });
    const published = publishOptions(TABLE, parsed);
    expect(published).toMatchObject({ token_set: true, path: 'p' });
    expect(JSON.stringify(published)).not.toContain('sk-secret');
    expect(publishOptions(TABLE, parseOptions(TABLE, { path: 'p' })).token_set).toBe(false);
  });

  it('reuses an entry in another command, with or without its default', () => {
    const optional = withoutDefault(TABLE.level, { help: 'how high here' });
    expect(optional.schema.safeParse(undefined)).toEqual({ success: true, data: undefined });
    expect(optional.schema.safeParse('0').success).toBe(false);
    expect(optional.help).toBe('how high here');
    const withDoc = { ...TABLE.mode, doc: 'long text' };
    expect(reuse(withDoc, {}).doc).toBe('long text');
    // A new help line replaces the docs text too: the old one described the other command.
    expect(reuse(withDoc, { help: 'short' }).doc).toBeUndefined();
  });
});
