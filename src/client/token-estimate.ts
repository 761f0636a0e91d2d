/**
 * Token counts for servers that send no `usage`, from a real BPE tokenizer (o200k, the encoding of
 * current OpenAI models; counts from other model families are an estimate and are marked so).
 * Loaded on first use so runs against servers that do report usage never pay for it.
 */
let encoder: Promise<(text: string) => number[]> | undefined;

async function getEncoder(): Promise<(text: string) => number[]> {
  encoder ??= import('gpt-tokenizer/encoding/o200k_base').then((m) => m.encode);
  return encoder;
}

export async function estimateTokens(text: string): Promise<number> {
  if (text === '') return 0;
  return (await getEncoder())(text).length;
}

/**
 * Completion estimate: the content, reasoning and tool-call arguments of every choice (`n` > 1
 * included), as servers count reasoning tokens among completion tokens.
 */
export async function estimateCompletionTokens(completion: {
  choices: {
    message: { content: string | null; reasoning_content?: string; tool_calls?: { function: { arguments: string } }[] };
  }[];
}): Promise<number> {
  let n = 0;
  for (const c of completion.choices) {
    n += await estimateTokens(c.message.content ?? '');
    n += await estimateTokens(c.message.reasoning_content ?? '');
    for (const tc of c.message.tool_calls ?? []) n += await estimateTokens(tc.function.arguments);
  }
  return n;
}

/**
 * Input estimate of a non-chat body: its `prompt` (completions) or `input` (embeddings, responses), a
 * string or a list of strings (token arrays count their length; other parts their text).
 */
export async function estimateInputTokens(bodyJson: string): Promise<number> {
  const body = JSON.parse(bodyJson) as { prompt?: unknown; input?: unknown };
  const encode = await getEncoder();
  const count = (v: unknown): number => {
    if (typeof v === 'string') return encode(v).length;
    if (typeof v === 'number') return 1;
    if (Array.isArray(v)) return v.reduce((n: number, x) => n + count(x), 0);
    if (v && typeof v === 'object') {
      const o = v as { text?: unknown; content?: unknown };
      return count(o.text ?? o.content ?? '');
    }
    return 0;
  };
  return count(body.prompt ?? body.input ?? '');
}

/** Prompt estimate: content tokens plus OpenAI's chat framing (3 per request, 4 per message). */
export async function estimatePromptTokens(bodyJson: string): Promise<number> {
  const body = JSON.parse(bodyJson) as { messages?: { content?: unknown }[] };
  const encode = await getEncoder();
  let n = 3;
  for (const m of body.messages ?? []) {
    n += 4;
    if (typeof m.content === 'string') n += encode(m.content).length;
    else if (Array.isArray(m.content)) {
      for (const part of m.content as { text?: unknown }[])
        if (typeof part.text === 'string') n += encode(part.text).length;
    }
  }
  return n;
}
