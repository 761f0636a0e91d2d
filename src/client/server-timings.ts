import type { ServerTimings } from './stream-assembler.js';

/**
 * What the server's own timings (llama-server's `timings`) leave unaccounted of what the client saw,
 * connect time left out — mostly time waiting for a slot in its queue: streamed, TTFT less prompt
 * time; not streamed, the whole answer less prompt and generation time. Undefined when the server
 * sends no timings.
 */
export function serverQueueMs(
  completion: { timings?: ServerTimings | undefined },
  stream: boolean,
  a: { startTs: number; firstTokenTs: number; lastTokenTs: number; connectMs: number },
): number | undefined {
  const t = completion.timings;
  if (!t || typeof t.prompt_ms !== 'number') return undefined;
  const seen = (stream ? a.firstTokenTs : a.lastTokenTs) - a.startTs - a.connectMs;
  return Math.max(0, seen - t.prompt_ms - (stream ? 0 : (t.predicted_ms ?? 0)));
}
