/**
 * Deterministic completion text. Token i is WORDS[i % 64]: common English words that are each one
 * token (leading space included) in OpenAI's cl100k/o200k encodings, so a tokenizer counting the
 * text agrees with `usage` exactly. Plain ASCII, so they need no JSON escaping.
 */
export const WORDS: readonly string[] = [
  ' the',
  ' of',
  ' and',
  ' to',
  ' in',
  ' is',
  ' that',
  ' for',
  ' it',
  ' as',
  ' was',
  ' with',
  ' be',
  ' by',
  ' on',
  ' not',
  ' he',
  ' this',
  ' are',
  ' or',
  ' his',
  ' from',
  ' at',
  ' which',
  ' but',
  ' have',
  ' an',
  ' had',
  ' they',
  ' you',
  ' were',
  ' their',
  ' one',
  ' all',
  ' we',
  ' can',
  ' her',
  ' has',
  ' there',
  ' been',
  ' if',
  ' more',
  ' when',
  ' will',
  ' would',
  ' who',
  ' so',
  ' no',
  ' time',
  ' people',
  ' new',
  ' first',
  ' like',
  ' just',
  ' also',
  ' after',
  ' over',
  ' only',
  ' other',
  ' some',
  ' what',
  ' make',
  ' work',
  ' data',
];

/** Text of token `i` of any simulated completion. */
export function tokenText(i: number): string {
  return WORDS[i % WORDS.length]!;
}

/** The full text of a completion of `n` tokens (what a client should reassemble). */
export function completionText(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += tokenText(i);
  return s;
}

/**
 * Prompt tokens the simulator charges: ceil(chars / 4) per message content plus 4 per message and 3
 * per request (the chat-format overhead OpenAI documents). An approximation, stated as such.
 */
export function countPromptTokens(messages: readonly unknown[]): number {
  let tokens = 3;
  for (const m of messages) tokens += 4 + textTokens((m as { content?: unknown } | null)?.content);
  return tokens;
}

/**
 * Tokens the simulator charges for a text: ceil(chars / 4), an approximation stated as such; a list
 * (of strings, or of content parts with `text`) counts each item.
 */
export function textTokens(v: unknown): number {
  if (typeof v === 'string') return Math.ceil(v.length / 4);
  if (typeof v === 'number') return 1;
  if (Array.isArray(v)) return v.reduce((n: number, x) => n + textTokens(x), 0);
  if (v && typeof v === 'object') {
    const o = v as { text?: unknown; content?: unknown };
    return textTokens(o.text ?? o.content ?? '');
  }
  return 0;
}
