/**
 * InvokeService → the runtime's Invoker (the proxy's outbound path to the app id).
 *
 * Request: `id` is the app id; `message.method` the path (a leading `/` is dropped);
 * `message.data` is an Any whose `value` bytes are the body (its type_url is ignored, as
 * Layotto does); `content_type`; `http_extension.verb` (NONE or absent → POST, Dapr's default)
 * and `querystring`. The caller's gRPC metadata is forwarded as request headers (minus the
 * transport's own). Response: `data` is an Any carrying the body bytes, `content_type` the
 * app's; the app's response headers come back as response metadata.
 *
 * A non-2xx answer from the app is an error status mapped from the HTTP status (Dapr's
 * behaviour for HTTP apps), with the status and the start of the body in the message and the
 * HTTP status in the `http-status` trailer.
 */
import type { RuntimeServices } from '../../runtime/services.js';
import { Code, GrpcError, invalid, wrap, type CodeValue } from './errors.js';
import type { CallContext } from './h2-server.js';

interface InvokeServiceRequestPB {
  id: string;
  message: {
    method: string;
    data: { type_url: string; value: Buffer } | null;
    content_type: string;
    http_extension: { verb: string; querystring: string } | null;
  } | null;
}

const VERBS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

/** Headers of the gRPC transport itself, never forwarded in either direction. */
const TRANSPORT_HEADERS = new Set(['content-type', 'content-length', 'user-agent', 'te', 'host', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'trailer', 'accept-encoding', 'grpc-accept-encoding', 'grpc-encoding', 'grpc-timeout']);

const forwardable = (name: string): boolean => !name.startsWith(':') && !name.startsWith('grpc-') && !name.endsWith('-bin') && !TRANSPORT_HEADERS.has(name);

function requestHeaders(md: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(md)) if (forwardable(k)) out[k] = v;
  return out;
}

function responseMetadata(headers: Readonly<Record<string, string>>): Record<string, string> {
  const md: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    const name = k.toLowerCase();
    // Metadata keys are a stricter alphabet than HTTP header names; values must be printable ASCII.
    if (forwardable(name) && /^[0-9a-z_.-]+$/.test(name) && /^[\x20-\x7e]*$/.test(v)) md[name] = v;
  }
  return md;
}

/** The gRPC code for an HTTP status (the grpc-gateway / Dapr correspondence). */
export function codeForHttpStatus(status: number): CodeValue {
  switch (status) {
    case 400:
      return Code.INVALID_ARGUMENT;
    case 401:
      return Code.UNAUTHENTICATED;
    case 403:
      return Code.PERMISSION_DENIED;
    case 404:
      return Code.NOT_FOUND;
    case 408:
    case 504:
      return Code.DEADLINE_EXCEEDED;
    case 409:
      return Code.ABORTED;
    case 412:
      return Code.FAILED_PRECONDITION;
    case 429:
      return Code.RESOURCE_EXHAUSTED;
    case 499:
      return Code.CANCELLED;
    case 501:
      return Code.UNIMPLEMENTED;
    case 502:
    case 503:
      return Code.UNAVAILABLE;
    default:
      return status >= 500 ? Code.INTERNAL : Code.UNKNOWN;
  }
}

export function invokeHandlers(services: RuntimeServices) {
  return {
    async InvokeService(req: InvokeServiceRequestPB, ctx: CallContext) {
      if (!req.id) throw invalid('id is empty: name the app id to invoke');
      const msg = req.message;
      if (!msg) throw invalid('message is missing');
      const method = (msg.method ?? '').replace(/^\/+/, '');
      if (!method) throw invalid('message.method is empty');
      const ext = msg.http_extension;
      const verb = ext && VERBS.has(ext.verb) ? ext.verb : 'POST';
      const query = (ext?.querystring ?? '').replace(/^\?/, '');
      const res = await wrap(`fail to invoke ${req.id}/${method}`, () =>
        services.invoker.invoke({
          appId: req.id,
          method,
          verb,
          query,
          headers: requestHeaders(ctx.metadata),
          body: msg.data?.value ?? Buffer.alloc(0),
          ...(msg.content_type ? { contentType: msg.content_type } : {}),
        }),
      );
      if (res.status < 200 || res.status > 299) {
        const body = res.body.subarray(0, 1024).toString('utf8');
        throw new GrpcError(codeForHttpStatus(res.status), `app ${req.id} answered HTTP ${res.status} to ${verb} /${method}${body ? `: ${body}` : ''}`, {
          'http-status': String(res.status),
        });
      }
      ctx.responseMetadata = responseMetadata(res.headers);
      return { data: { type_url: '', value: res.body }, content_type: res.contentType ?? res.headers['content-type'] ?? '' };
    },
  };
}
