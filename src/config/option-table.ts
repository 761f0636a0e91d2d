import { Option, type Command } from 'commander';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { formatZodIssues } from './zod-issues.js';

/**
 * One option, declared once. Its commander flag, help text, environment variables, zod schema, docs row,
 * config-file key and where its value may travel are all read from this entry, so adding an option is
 * one entry (plus its use). Defaults are read from the schema, never written twice.
 */
export interface OptionSpec<S extends z.ZodType = z.ZodType> {
  /** zod schema with its default (the one place a default is written). */
  schema: S;
  /** commander flag, e.g. `--max-attempts <n>`, `--no-keep-alive`, `--retry-failed [causes]`. Absent for an
   *  option given another way (the positional input; the API key, read only from the environment). */
  flag?: string;
  /** How an option without a flag is named in errors and docs (`INPUT`, `OPENAI_API_KEY`). */
  label?: string;
  /** One line for `--help`; the default and the environment variables are appended to it. */
  help: string;
  /** The docs/run.md row when it says more than the help line. */
  doc?: string;
  /** The default as help and docs say it, where the schema has none or it is computed. */
  defaultText?: string;
  /** Environment variables that set it, lowest precedence first (the last one given wins). */
  env?: readonly string[];
  /** Other config-file keys for it (beside the flag name without `--` and the option's own name). */
  configAliases?: readonly string[];
  /** Stays on the machine that started the run: never sent to distributed workers. */
  localOnly?: boolean;
  /** How `run.json` publishes the value (secrets and URLs redacted); absent = as it is. */
  publish?: { as?: string; value: (value: never) => unknown };
  /** The flag is mandatory on the command line (commander says so before parsing). */
  required?: boolean;
  /** The flag may be given more than once (its values collected in order) though the schema is not a plain array. */
  repeatable?: boolean;
}

/** A table of options keyed by option name (the camelCase key of the parsed object). */
export type OptionTable = Record<string, OptionSpec>;

/** The parsed object a table describes. */
export type TableOutput<T extends OptionTable> = z.output<z.ZodObject<{ [K in keyof T]: T[K]['schema'] }>>;

/** The strict zod object of a table, each field described by its help line. */
export function tableSchema<T extends OptionTable>(table: T): z.ZodObject<{ [K in keyof T]: T[K]['schema'] }> {
  const shape: Record<string, z.ZodType> = {};
  for (const [key, spec] of Object.entries(table)) shape[key] = spec.schema.describe(spec.help);
  return z.object(shape).strict() as z.ZodObject<{ [K in keyof T]: T[K]['schema'] }>;
}

/** `--max-attempts <n>` → `--max-attempts`; `--no-keep-alive` stays itself. */
export function longFlag(spec: OptionSpec): string | undefined {
  return spec.flag?.split(/[ ,]/)[0];
}

/** What errors call the option: its flag, else its label, else its key. */
export function nameOf(table: OptionTable, key: string): string {
  const spec = table[key];
  return (spec && (longFlag(spec) ?? spec.label)) ?? key;
}

/** commander's attribute for a flag: `--no-keep-alive` → `keepAlive`, `--header` → `header`. */
function attributeOf(flag: string): string {
  return flag.replace(/^--(no-)?/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** The schema's default, or undefined when it has none (parsing nothing gives nothing or fails). */
export function schemaDefault(schema: z.ZodType): unknown {
  const r = schema.safeParse(undefined);
  return r.success ? r.data : undefined;
}

/** The default as help and docs print it, or undefined when there is none to print. */
export function defaultLabel(spec: OptionSpec): string | undefined {
  if (spec.defaultText !== undefined) return spec.defaultText || undefined;
  const d = schemaDefault(spec.schema);
  if (d === undefined || (Array.isArray(d) && d.length === 0)) return undefined;
  if (typeof d === 'boolean') return d ? 'on' : 'off';
  return String(d);
}

/** The values an enum option accepts (through `.default()`/`.optional()` wrappers), for commander's choices. */
function choicesOf(schema: z.ZodType): string[] | undefined {
  let s: z.ZodType = schema;
  for (let i = 0; i < 5; i++) {
    if (s instanceof z.ZodEnum) return s.options.map(String);
    if (s instanceof z.ZodDefault || s instanceof z.ZodOptional) s = s.unwrap() as z.ZodType;
    else return undefined;
  }
  return undefined;
}

function isArraySchema(schema: z.ZodType): boolean {
  let s: z.ZodType = schema;
  while (s instanceof z.ZodDefault || s instanceof z.ZodOptional) s = s.unwrap() as z.ZodType;
  return s instanceof z.ZodArray;
}

/** The help line with the environment variables and default appended. */
export function helpLine(spec: OptionSpec): string {
  const tail = [
    spec.env?.length ? `env ${spec.env.join(', ')}` : undefined,
    defaultLabel(spec) !== undefined ? `default ${defaultLabel(spec)}` : undefined,
  ].filter((x) => x !== undefined);
  return tail.length ? `${spec.help} (${tail.join('; ')})` : spec.help;
}

/**
 * Add the flags of `keys` (all flagged ones by default) to a commander command. `overrides` changes an
 * entry for this command only (the sweep's `--shards` means shards per stage).
 */
export function addOptions<T extends OptionTable>(
  cmd: Command,
  table: T,
  keys: readonly (keyof T & string)[] = Object.keys(table),
  overrides: Partial<Record<keyof T, Partial<OptionSpec>>> = {},
): Command {
  for (const key of keys) {
    const spec = { ...table[key]!, ...overrides[key] } as OptionSpec;
    if (!spec.flag) continue;
    const option = new Option(spec.flag, helpLine(spec));
    const choices = choicesOf(spec.schema);
    if (choices) option.choices(choices);
    if (spec.repeatable || isArraySchema(spec.schema))
      option.argParser((v: string, prev: string[] = []) => [...prev, v]);
    if (spec.required) option.makeOptionMandatory();
    cmd.addOption(option);
  }
  return cmd;
}

/**
 * The values the user gave on the command line, keyed by option name. Only values whose source is the
 * command line count, so a negated flag's implicit `true` never overrides the environment or a config file.
 */
export function flagValues<T extends OptionTable>(
  cmd: Command,
  table: T,
  keys: readonly (keyof T & string)[] = Object.keys(table),
): Partial<Record<keyof T, unknown>> {
  const out: Partial<Record<keyof T, unknown>> = {};
  const values = cmd.opts();
  for (const key of keys) {
    const flag = longFlag(table[key]!);
    if (!flag) continue;
    const attr = attributeOf(flag);
    if (cmd.getOptionValueSource(attr) !== 'cli') continue;
    out[key] = values[attr];
  }
  return out;
}

/** Config-file key → option key: the flag without `--` (and `no-`), the option's own name, any aliases. */
export function configKeys(table: OptionTable): Map<string, { key: string; negated: boolean }> {
  const out = new Map<string, { key: string; negated: boolean }>();
  for (const [key, spec] of Object.entries(table)) {
    out.set(key, { key, negated: false });
    for (const alias of spec.configAliases ?? []) out.set(alias, { key, negated: false });
    const flag = longFlag(spec);
    if (!flag) continue;
    const name = flag.replace(/^--/, '');
    if (name.startsWith('no-')) {
      out.set(name.slice(3), { key, negated: false });
      out.set(name, { key, negated: true });
    } else out.set(name, { key, negated: false });
  }
  return out;
}

/** Environment variable → option key, in the order they apply (later wins). */
export function envKeys(table: OptionTable): [string, string][] {
  return Object.entries(table).flatMap(([key, spec]) => (spec.env ?? []).map((name): [string, string] => [name, key]));
}

/** The published form of a parsed object: each value through its entry's `publish`, secrets never as given. */
export function publishOptions(table: OptionTable, values: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) {
    const publish = table[key]?.publish;
    out[publish?.as ?? key] = publish ? publish.value(value as never) : value;
  }
  // A secret left unset is published as unset too (`api_key: "(none)"`), so readers need not guess.
  for (const [key, spec] of Object.entries(table))
    if (spec.publish && !(key in values)) out[spec.publish.as ?? key] = spec.publish.value(undefined as never);
  return out;
}

/** The keys of options that stay on the machine that started the run. */
export function localOnlyKeys(table: OptionTable): string[] {
  return Object.entries(table)
    .filter(([, spec]) => spec.localOnly)
    .map(([key]) => key);
}

/** The options table of the docs (flag | env | default | meaning), one row per entry, in table order. */
export function docsTable(table: OptionTable): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const rows = Object.values(table).map((spec) => {
    const flag = spec.flag ? `\`${cell(spec.flag)}\`` : spec.label && !spec.env?.length ? `\`${spec.label}\`` : '';
    const env = (spec.env ?? []).map((e) => `\`${e}\``).join(', ');
    const required =
      spec.required || (schemaDefault(spec.schema) === undefined && !spec.schema.safeParse(undefined).success);
    const dflt = spec.defaultText ?? defaultLabel(spec) ?? (required ? '(required)' : 'none');
    return `| ${flag} | ${env} | ${cell(dflt)} | ${cell(spec.doc ?? spec.help)} |`;
  });
  return ['| flag | env | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

/**
 * An entry of another command's table for a command where a flag left out must stay unset (the worker's
 * `--concurrency` falls back to the run's value, not to the run's default): same checks, no default.
 */
export function withoutDefault<S extends z.ZodType>(
  spec: OptionSpec<S>,
  change: Partial<Omit<OptionSpec, 'schema'>> = {},
): OptionSpec<z.ZodOptional<Unwrapped<S>>> {
  let schema: z.ZodType = spec.schema;
  while (schema instanceof z.ZodDefault || schema instanceof z.ZodOptional) schema = schema.unwrap() as z.ZodType;
  return { ...reuse(spec, { defaultText: '', ...change }), schema: schema.optional() as z.ZodOptional<Unwrapped<S>> };
}

/** Another command's entry with this command's changes; a new help line replaces the docs text too. */
export function reuse<S extends z.ZodType>(
  spec: OptionSpec<S>,
  change: Partial<Omit<OptionSpec, 'schema'>>,
): OptionSpec<S> {
  const { doc, ...rest } = spec;
  return { ...rest, ...(change.help === undefined && doc !== undefined ? { doc } : {}), ...change };
}

type Unwrapped<S> = S extends z.ZodDefault<infer I> ? I : S extends z.ZodOptional<infer I> ? I : S;

/** Parse values keyed by option name against a table; errors name each bad option's flag (exit 2). */
export function parseOptions<T extends OptionTable>(table: T, raw: Record<string, unknown>): TableOutput<T> {
  const result = tableSchema(table).safeParse(raw);
  if (!result.success) throw new ConfigError(formatZodIssues(result.error, raw, (p) => nameOf(table, String(p[0]))));
  return result.data as TableOutput<T>;
}
