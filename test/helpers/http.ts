import { Agent, request } from 'undici';

export interface ChatReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** Set when the connection failed or was cut mid-response. */
  error?: Error;
  /** ms from sending to the status line. */
  headersMs: number;
  /** Largest gap between body chunks, ms. */
  maxGapMs: number;
}

/** POST a chat body and read the whole reply, recording errors instead of throwing. */
export async function postChat(baseUrl: string, body: unknown, dispatcher?: Agent): Promise<ChatReply> {
  const t0 = performance.now();
  let status = 0;
  let headers: ChatReply['headers'] = {};
  let text = '';
  let headersMs = 0;
  let maxGapMs = 0;
  try {
    const res = await request(`${baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
      ...(dispatcher ? { dispatcher } : {}),
    });
    headersMs = performance.now() - t0;
    status = res.statusCode;
    headers = res.headers;
    let last = performance.now();
    for await (const chunk of res.body) {
      const now = performance.now();
      maxGapMs = Math.max(maxGapMs, now - last);
      last = now;
      text += (chunk as Buffer).toString('utf8');
    }
    return { status, headers, text, headersMs, maxGapMs };
  } catch (error) {
    return { status, headers, text, error: error as Error, headersMs, maxGapMs };
  }
}

/** Run `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  });
  await Promise.all(workers);
  return out;
}

/** Parse Prometheus text exposition into `name{labels}` → value. */
export function parseProm(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

export async function scrape(baseUrl: string): Promise<Map<string, number>> {
  const res = await request(`${baseUrl}/metrics`);
  return parseProm(await res.body.text());
}
