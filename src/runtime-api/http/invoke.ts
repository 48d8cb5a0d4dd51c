/**
 * Dapr's service invocation API: `/v1.0/invoke/{appId}/method/{method...}` with any verb →
 * services.invoker; the callee's status, headers (minus hop-by-hop ones) and body are relayed.
 * A failure to reach the callee is ERR_DIRECT_INVOKE ("fail to invoke, id: ..., err: ...") with
 * the status of the error's kind (500 when nothing answered).
 */
import type { IncomingMessage } from 'node:http';
import type { RuntimeServices } from '../../runtime/services.js';
import type { InvokeResponse } from '../../runtime/invocation.js';
import { DaprHttpError, componentFailure } from './errors.js';
import { readBody, type Reply } from './io.js';

/** RFC 9110 §7.6.1 connection-specific headers, plus those the server recomputes. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'content-length']);

/** `rawPath` is the request path as sent (still percent-encoded), starting `/v1.0/invoke/`. */
export async function invoke(services: RuntimeServices, req: IncomingMessage, rawPath: string, rawQuery: string): Promise<Reply> {
  const m = /^\/v1\.0\/invoke\/([^/]+)\/method\/(.*)$/.exec(rawPath);
  if (!m || m[2] === '') throw new DaprHttpError('ERR_DIRECT_INVOKE', 'invalid method name: expected /v1.0/invoke/{appId}/method/{method}', 400);
  const appId = decode(m[1]!);
  const body = await readBody(req);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || HOP_BY_HOP.has(k)) continue;
    headers[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  const contentType = headers['content-type'];
  let res: InvokeResponse;
  try {
    res = await services.invoker.invoke({ appId, method: m[2]!, verb: req.method ?? 'GET', query: rawQuery, headers, body, ...(contentType ? { contentType } : {}) });
  } catch (e) {
    throw componentFailure('ERR_DIRECT_INVOKE', `fail to invoke, id: ${appId}, err`, e);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) if (!HOP_BY_HOP.has(k.toLowerCase())) out[k] = v;
  if (res.contentType && !Object.keys(out).some((k) => k.toLowerCase() === 'content-type')) out['content-type'] = res.contentType;
  return { status: res.status, headers: out, body: res.body };
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
