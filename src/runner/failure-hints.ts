/** What a run's failures say about its configuration, for the failures an on-call engineer meets first. */
export interface FailureFacts {
  /** Where requests went, credentials and query removed: `<origin><path>/chat/completions`. */
  requestUrl: string;
  /** With several endpoints, each one's request URL (`requestUrl` is the first's): the totals do not say which. */
  requestUrls?: string[];
  failed: number;
  /** Failed requests by cause (`conn_refused`, `http_4xx`, …). */
  causes: Record<string, number>;
  /** Failed requests by the HTTP status of their final attempt. */
  statuses: Record<string, number>;
  /** An error message seen for each status (the server's own words), when known. */
  statusErrors?: Record<string, string>;
  /** Failed requests the server told to wait longer than --retry-after-max-s, and the longest wait (ms). */
  retryAfterTooLong?: { count: number; maxMs: number; limitS: number };
}

/**
 * Plain-language hints for failures that almost always mean a wrong flag rather than a bad server:
 * 404 (the endpoint is not the API base URL), 401/403 (credentials) and refused connections (nothing
 * listens there). A hint is given once a cause accounts for at least half the failed requests.
 */
export function failureHints(f: FailureFacts): string[] {
  if (f.failed === 0) return [];
  const hints: string[] = [];
  const most = (n: number | undefined): n is number => n !== undefined && n * 2 >= f.failed;
  const notFound = f.statuses['404'];
  if (most(notFound)) {
    // Servers answer 404 for an unknown model too (OpenAI: model_not_found; vLLM: "The model … does
    // not exist"): that is --model, not --endpoint.
    const said = f.statusErrors?.['404'] ?? '';
    hints.push(
      /\bmodel\b/i.test(said)
        ? `${notFound} requests got HTTP 404 naming the model (${JSON.stringify(said.slice(0, 120))}): set --model ` +
            `to one the server serves (GET ${f.requestUrl.replace(/\/chat\/completions$/, '/models')} lists them)`
        : `${notFound} requests got HTTP 404 from ${f.requestUrl}: --endpoint is the API base URL, as the OpenAI ` +
            `client's baseURL (usually ending in /v1, e.g. http://127.0.0.1:8000/v1)`,
    );
  }
  const denied = (f.statuses['401'] ?? 0) + (f.statuses['403'] ?? 0);
  if (most(denied || undefined)) {
    hints.push(
      `${denied} requests were refused with HTTP 401/403: set OPENAI_API_KEY or SHARDLINE_API_KEY (sent as ` +
        `Authorization: Bearer), or pass the header the server expects with --header (Azure: 'api-key: …')`,
    );
  }
  const waited = f.retryAfterTooLong;
  if (waited && waited.count > 0) {
    // Not a wrong flag, but the same kind of news: nothing to gain by retrying now.
    hints.push(
      `${waited.count} requests were not retried: the server asked to wait up to ${Math.round(waited.maxMs / 1000)} ` +
        `s, over --retry-after-max-s ${waited.limitS} ` +
        '(a spent quota?); run again later with --retry-failed, or raise --retry-after-max-s to wait it out',
    );
  }
  const refused = f.causes.conn_refused;
  if (most(refused)) {
    const origins = [...new Set((f.requestUrls ?? [f.requestUrl]).map((u) => new URL(u).origin))];
    const where = origins.length > 1 ? `one of ${origins.join(', ')}` : origins[0];
    hints.push(
      `${refused} requests found nothing listening at ${where} (connection refused): is the server up, and are ` +
        `host and port right?` +
        (origins.length > 1 ? ' (`shardline report` names the endpoint that was down)' : ''),
    );
  }
  return hints;
}
