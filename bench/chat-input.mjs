// Shared by the benches: an input file of chat requests for the simulator.
import { writeFileSync } from 'node:fs';

/**
 * Write `n` chat requests to `path` as JSONL, custom_id `r0`…: each body `{ model, messages: [{ role:
 * 'user', content: content(i) }], max_tokens, stream }` (`stream` left out when not given). Returns `path`.
 */
export function writeChatInput(path, n, { maxTokens, stream, model = 'sim', content = (i) => `q ${i}` }) {
  const lines = [];
  for (let i = 0; i < n; i++) {
    const body = { model, messages: [{ role: 'user', content: content(i) }], max_tokens: maxTokens };
    if (stream !== undefined) body.stream = stream;
    lines.push(JSON.stringify({ custom_id: `r${i}`, body }));
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}
