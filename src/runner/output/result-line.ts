import type { AttemptOutcome } from '../../client/chat-attempt.js';
import type { WorkItem } from '../ipc-messages.js';

/**
 * results.jsonl lines in the OpenAI Batch output format: one per input request,
 * `{"id","custom_id","response":{"status_code","request_id","body"},"error":null}` or, failed,
 * `{"id","custom_id","response":null,"error":{"code":<cause>,"message","status"?}}`.
 */
export function successResultLine(
  runId: string,
  item: WorkItem,
  o: Extract<AttemptOutcome, { outcome: 'ok' }>,
): string {
  if (o.rawBody !== undefined) {
    // The body as the server sent it (one line of JSON it parsed), the rest as JSON.stringify writes it.
    const head = `{"id":${JSON.stringify(resultId(runId, item))},"custom_id":${JSON.stringify(item.id)}`;
    const response = `{"status_code":${o.status},"request_id":${JSON.stringify(o.requestId ?? null)}`;
    return `${head},"response":${response},"body":${o.rawBody}},"error":null}`;
  }
  return JSON.stringify({
    id: resultId(runId, item),
    custom_id: item.id,
    response: { status_code: o.status, request_id: o.requestId ?? null, body: o.completion },
    error: null,
  });
}

export function errorResultLine(runId: string, item: WorkItem, code: string, message: string, status?: number): string {
  return JSON.stringify({
    id: resultId(runId, item),
    custom_id: item.id,
    response: null,
    error: { code, message, ...(status !== undefined ? { status } : {}) },
  });
}

function resultId(runId: string, item: WorkItem): string {
  return `batch_req_${runId}_${item.lineNo}`;
}
