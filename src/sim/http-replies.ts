import type { ServerResponse } from 'node:http';

/** Write a JSON body with the given status. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
  close = false,
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...(close ? { connection: 'close' } : {}),
    ...headers,
  });
  res.end(text);
}

/** Write an error in OpenAI's `{"error":{"message","type","param","code"}}` shape. */
export function sendError(
  res: ServerResponse,
  status: number,
  type: string,
  code: string,
  message: string,
  headers: Record<string, string> = {},
  close = false,
): void {
  sendJson(res, status, { error: { message, type, param: null, code } }, headers, close);
}
