import { StringDecoder } from 'node:string_decoder';
import { createParser, type EventSourceParser } from 'eventsource-parser';
import type { Dispatcher } from 'undici';
import type { ChatDispatcher } from './raw-pool.js';
import type { Cause } from '../events/event-types.js';
import type { Clock } from '../util/clock.js';
import { causeOfError, causeOfStatus, PhaseTimeoutError } from './error-cause.js';
import { parseRetryAfterMs } from './retry-policy.js';
import { assemblerFor, plainBodyProblem, type ApiBody } from './endpoint-assemblers.js';
import { streams, type EndpointKind } from './endpoints.js';

/** Where and how to send: resolved once per shard. */
export interface ChatTarget {
  origin: string;
  /** Path including any query (Azure's `?api-version=`). */
  path: string;
  /** Request headers including auth; never logged. */
  headers: Record<string, string>;
  /** false asks for Connection: close on every request. @default true */
  keepAlive?: boolean;
}

export interface PhaseTimeouts {
  ttftMs: number;
  idleMs: number;
  totalMs: number;
}

export interface AttemptObserver {
  /** The request is about to be written to a socket (synchronously before undici's sendHeaders). */
  onRequestStart?(): void;
  /** The answer's status and headers (the real answer: interim 1xx are skipped). */
  onHeaders?(status: number, ts: number, headers: Record<string, string | string[] | undefined>): void;
  onFirstToken?(ts: number): void;
}

export type AttemptOutcome =
  | {
      outcome: 'ok';
      status: number;
      /** The answer's body as the non-streamed endpoint returns it (assembled from the stream if any). */
      completion: ApiBody;
      /**
       * A non-streamed answer's body as the server sent it, when it is one line of valid JSON: the result
       * line embeds it as it is rather than serializing `completion` again (an embeddings answer's vectors
       * made that a sixth of a shard's CPU).
       */
      rawBody?: string;
      requestId: string | undefined;
      firstTokenTs: number;
      lastTokenTs: number;
      contentChunks: number;
    }
  | {
      outcome: 'error';
      status: number | undefined;
      cause: Cause;
      message: string;
      retryAfterMs: number | undefined;
    };

const MAX_ERROR_BODY = 4096;

/**
 * One HTTP attempt of one chat request over an undici dispatcher, streaming or not, with phase
 * timeouts (TTFT, idle between content chunks, total). Never throws: a failure is an outcome with a
 * cause. The handler API is used instead of `request()` to avoid a Readable per response on the
 * per-token hot path.
 */
export function runChatAttempt(
  dispatcher: ChatDispatcher,
  target: ChatTarget,
  body: string,
  stream: boolean,
  timeouts: PhaseTimeouts,
  clock: Clock,
  observer: AttemptObserver = {},
  kind: EndpointKind = 'chat',
): Promise<AttemptOutcome> {
  return new Promise((resolve) => {
    const startTs = clock();
    let status = 0;
    let headers: Record<string, string | string[] | undefined> = {};
    let firstTs = 0; // first content (stream) or headers (non-stream): what ends the TTFT phase
    // Read as SSE? A server (or proxy) that ignores `stream: true` answers with one JSON body.
    let sse = stream;
    let lastTs = 0;
    let controller: Dispatcher.DispatchController | undefined;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    let timerDue = 0;
    const assembler = assemblerFor(kind);
    const decoder = new StringDecoder('utf8');
    let errorText = '';
    let plainBody = '';
    let parser: EventSourceParser | undefined;
    let parseError: Error | undefined;

    const settle = (o: AttemptOutcome): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      resolve(o);
    };
    const fail = (cause: Cause, message: string, retryAfterMs?: number): void =>
      settle({ outcome: 'error', status: status || undefined, cause, message, retryAfterMs });

    // One lazily re-armed timer per attempt rather than one reset per chunk.
    const check = (): void => {
      timer = undefined;
      if (settled) return;
      const now = clock();
      let err: PhaseTimeoutError | undefined;
      let next: number;
      if (now >= startTs + timeouts.totalMs) err = new PhaseTimeoutError('timeout_total', timeouts.totalMs);
      else if (firstTs === 0) {
        if (now >= startTs + timeouts.ttftMs) err = new PhaseTimeoutError('timeout_ttft', timeouts.ttftMs);
        next = Math.min(startTs + timeouts.ttftMs, startTs + timeouts.totalMs);
      } else {
        if (now >= lastTs + timeouts.idleMs) err = new PhaseTimeoutError('timeout_idle', timeouts.idleMs);
        next = Math.min(lastTs + timeouts.idleMs, startTs + timeouts.totalMs);
      }
      if (err) {
        fail(err.phase, err.message);
        controller?.abort(err);
        return;
      }
      arm(next!);
    };
    const arm = (due: number): void => {
      if (timer) clearTimeout(timer);
      timerDue = due;
      timer = setTimeout(check, Math.max(1, due - clock()));
    };
    // The TTFT phase ends at the first token; the idle deadline may then come sooner than the timer.
    const enterIdlePhase = (ts: number): void => {
      if (!settled && timerDue > ts + timeouts.idleMs) arm(ts + timeouts.idleMs);
    };
    arm(startTs + Math.min(timeouts.ttftMs, timeouts.totalMs));

    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (settled) return c.abort(new Error('attempt already settled'));
        observer.onRequestStart?.();
      },
      onResponseStart(_c, statusCode, h) {
        // undici hands over interim answers (103 Early Hints) too; the real one follows.
        if (statusCode >= 100 && statusCode < 200 && statusCode !== 101) return;
        status = statusCode;
        headers = h as Record<string, string | string[] | undefined>;
        const now = clock();
        observer.onHeaders?.(statusCode, now, headers);
        if (statusCode < 200 || statusCode >= 300) return;
        if (sse && /^\s*application\/json/i.test(firstHeader(headers['content-type']) ?? '')) sse = false;
        if (sse) {
          parser = createParser({
            onEvent(ev) {
              if (parseError) return;
              try {
                if (assembler.push(ev.data) && firstTs === 0) {
                  firstTs = clock();
                  lastTs = firstTs;
                  observer.onFirstToken?.(firstTs);
                  enterIdlePhase(firstTs);
                }
              } catch (e) {
                parseError = e as Error;
              }
            },
          });
        } else {
          firstTs = now;
          lastTs = now;
          enterIdlePhase(now);
        }
      },
      onResponseData(c, chunk) {
        if (settled) return;
        if (status < 200 || status >= 300) {
          if (errorText.length < MAX_ERROR_BODY) errorText += decoder.write(chunk);
          return;
        }
        if (!sse) {
          plainBody += decoder.write(chunk);
          lastTs = clock();
          return;
        }
        const before = assembler.contentChunks;
        parser!.feed(decoder.write(chunk));
        if (parseError) {
          fail('protocol_error', parseError.message);
          c.abort(parseError);
          return;
        }
        if (assembler.contentChunks !== before) lastTs = clock();
      },
      onResponseEnd() {
        if (settled) return;
        const endTs = clock();
        if (status < 200 || status >= 300) {
          errorText += decoder.end();
          return fail(causeOfStatus(status), errorMessage(status, errorText), parseRetryAfterMs(headers, Date.now()));
        }
        const requestId = firstHeader(headers['x-request-id']);
        if (status === 204)
          return fail('protocol_error', 'HTTP 204 No Content: the server answered without a completion');
        if (!sse) {
          plainBody += decoder.end();
          let completion: ApiBody;
          try {
            completion = JSON.parse(plainBody) as ApiBody;
          } catch {
            return fail('protocol_error', 'response body is not valid JSON');
          }
          const problem = plainBodyProblem(kind, completion);
          if (problem) return fail('protocol_error', problem);
          const raw = plainBody.trim();
          // Only a streamed endpoint has a first token: an embeddings answer has none at all.
          if (streams(kind)) observer.onFirstToken?.(endTs);
          return settle({
            outcome: 'ok',
            status,
            completion,
            requestId,
            firstTokenTs: endTs,
            lastTokenTs: endTs,
            contentChunks: 0,
            ...(raw.includes('\n') || raw.includes('\r') ? {} : { rawBody: raw }),
          });
        }
        parser!.feed(decoder.end());
        if (parseError) return fail('protocol_error', parseError.message);
        if (!assembler.complete) {
          const type = firstHeader(headers['content-type']) ?? '(none)';
          // A 200 that is not an event stream at all (a proxy's HTML page, say) deserves saying so.
          const what = /text\/event-stream/i.test(type)
            ? 'stream ended before [DONE] or a finish_reason'
            : `expected an event stream, got content-type ${type.slice(0, 80)}`;
          return fail('protocol_error', what);
        }
        settle({
          outcome: 'ok',
          status,
          completion: assembler.toCompletion(),
          requestId,
          firstTokenTs: firstTs || endTs,
          lastTokenTs: lastTs || endTs,
          contentChunks: assembler.contentChunks,
        });
      },
      onResponseError(_c, err) {
        if (settled) return;
        fail(causeOfError(err), err.message || String(err));
      },
    };

    try {
      dispatcher.dispatch(
        {
          origin: target.origin,
          path: target.path,
          method: 'POST',
          headers: target.headers,
          body,
          headersTimeout: 0,
          bodyTimeout: 0,
          ...(target.keepAlive === false ? { reset: true } : {}),
        },
        handler,
      );
    } catch (err) {
      fail(causeOfError(err), (err as Error).message);
    }
  });
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function errorMessage(status: number, text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: string } | string };
    const msg = typeof parsed.error === 'string' ? parsed.error : parsed.error?.message;
    if (msg) return `HTTP ${status}: ${msg}`;
  } catch {
    // not JSON: fall through to the raw text
  }
  return `HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ''}`;
}
