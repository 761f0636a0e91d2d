// Writes the options tables of docs/ from the option tables in src/config (run `npm run docs:options`).
// test/option-table.test.ts fails when a table in docs/ differs from what this would write.
import { readFileSync, writeFileSync } from 'node:fs';
import { optionDocBlocks, replaceOptionBlocks } from '../dist/config/option-docs.js';

const changed = [];
for (const file of new Set(optionDocBlocks().map((b) => b.file))) {
  const text = readFileSync(file, 'utf8');
  const next = replaceOptionBlocks(text, file);
  if (next !== text) {
    writeFileSync(file, next);
    changed.push(file);
  }
}
process.stdout.write(changed.length ? `updated ${changed.join(', ')}\n` : 'docs options tables are current\n');
