import { docsTable, type OptionTable } from './option-table.js';
import { CONFIG_FLAG, RUN_OPTIONS } from './run-option-table.js';
import { SIM_OPTIONS } from './sim-options.js';
import { SWEEP_OPTIONS } from './sweep-options.js';
import { WORKER_OPTIONS } from './worker-options.js';

/** A generated options table in docs/: between `<!-- options:NAME -->` and `<!-- /options:NAME -->`. */
export interface OptionDocBlock {
  name: string;
  file: string;
  table: OptionTable;
}

/** Every options table the docs carry, each generated from its command's option table. */
export function optionDocBlocks(): OptionDocBlock[] {
  return [
    { name: 'run', file: 'docs/run.md', table: { ...RUN_OPTIONS, config: CONFIG_FLAG } },
    { name: 'worker', file: 'docs/distributed.md', table: WORKER_OPTIONS },
    { name: 'sweep', file: 'docs/run.md', table: SWEEP_OPTIONS },
    { name: 'sim', file: 'docs/sim.md', table: SIM_OPTIONS },
  ];
}

/** The text with each of its generated blocks rewritten from the tables; a missing marker is an error. */
export function replaceOptionBlocks(text: string, file: string): string {
  let out = text;
  for (const block of optionDocBlocks().filter((b) => b.file === file)) {
    const open = `<!-- options:${block.name} -->`;
    const close = `<!-- /options:${block.name} -->`;
    const start = out.indexOf(open);
    const end = out.indexOf(close);
    if (start < 0 || end < start) throw new Error(`${file} has no ${open} … ${close} block`);
    out = `${out.slice(0, start + open.length)}\n${docsTable(block.table)}\n${out.slice(end)}`;
  }
  return out;
}
