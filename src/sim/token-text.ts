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
  for (const m of messages) {
    tokens += 4;
    const content = (m as { content?: unknown } | null)?.content;
    if (typeof content === 'string') tokens += Math.ceil(content.length / 4);
    else if (Array.isArray(content)) {
      for (const part of content) {
        const text = (part as { text?: unknown } | null)?.text;
        if (typeof text === 'string') tokens += Math.ceil(text.length / 4);
      }
    }
  }
  return tokens;
}
