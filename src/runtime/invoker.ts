/**
 * The Invoker: sends an invocation as a plain HTTP/1.1 request to the proxy's internal listener
 * `capa-invocation` (127.0.0.1), Host = the target app id. The listener's virtual hosts are the
 * app ids (src/config/compile-invocation.ts), so the request is routed, filtered, retried,
 * counted and traced like the app's own outbound traffic.
 *
 * App ids are `app` or Dapr's `app.namespace` (src/config/app-id.ts): the whole id is the Host,
 * `dapr-callee-app-id` is the app part, as Dapr sends it.
 *
 * What comes back is relayed as it is — the app's status, headers and body, and also the proxy's
 * own local replies (503 UF when the app is down, 504 UT on the route timeout...), which say
 * more than a generic error would. Three cases become errors: the proxy's route_not_found 404 (an
 * app id with no virtual host, `type: static`) and its "DNS resolution failure" 503 (flag DF: the
 * dynamic forward proxy could not resolve the app id's DNS name) → 'not-found', and no answer
 * from the listener at all → 'backend'.
 */
import http from 'node:http';
import type { Logger } from 'pino';
import { ComponentError } from '../components/errors.js';
import { APP_ID_RULE, parseAppId } from '../config/app-id.js';
import { NOT_FORWARDED } from '../proxy/http/hop-by-hop.js';
import { DNS_RESOLUTION_FAILURE } from '../proxy/cluster/dynamic-forward-proxy.js';
import type { InvokeRequest, InvokeResponse, Invoker } from './invocation.js';

/** Larger responses are refused: the whole body is held in memory for both front ends. */
export const MAX_INVOKE_RESPONSE_BYTES = 4 * 1024 * 1024;

/**
 * Set by the proxy's router on every response that came from an upstream; a local reply has
 * none. It tells the route_not_found 404 and the DF 503 apart from an app's own 404 and 503.
 */
const UPSTREAM_MARK = 'x-envoy-upstream-service-time';

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Characters that may not appear raw in a request target; `%` is left alone (already-escaped methods stay as sent). */
const NOT_IN_PATH = /[^\x21-\x7e]|[?#]/gu;

export interface InvokerOptions {
  /** Port of the `capa-invocation` listener; undefined (or 0) when no app id is configured. */
  readonly port: () => number | undefined;
  /** Our own app id, sent as dapr-caller-app-id. */
  readonly appId: () => string;
  /**
   * Client-side limit for a whole invocation, ms; 0 (default) leaves it to the route timeout
   * (`invocation.timeout`), after which the proxy answers 504 itself.
   */
  readonly timeoutMs?: number;
  readonly maxResponseBytes?: number;
  readonly logger: Logger;
}

export function createInvoker(opts: InvokerOptions): Invoker & { close(): void } {
  const agent = new http.Agent({ keepAlive: true });
  const maxBytes = opts.maxResponseBytes ?? MAX_INVOKE_RESPONSE_BYTES;
  const timeoutMs = opts.timeoutMs ?? 0;

  async function invoke(req: InvokeRequest): Promise<InvokeResponse> {
    const target = parseAppId(req.appId);
    if (target === undefined) throw new ComponentError('bad-request', `invalid app id ${JSON.stringify(req.appId)}: ${APP_ID_RULE}`);
    const verb = req.verb.toUpperCase();
    if (!TOKEN.test(verb)) throw new ComponentError('bad-request', `invalid HTTP verb ${JSON.stringify(req.verb)}`);
    const port = opts.port();
    if (!port) throw new ComponentError('not-found', `app id '${req.appId}' is unknown: service invocation is not configured (add a nameResolution or invocation section)`);
    const path = '/' + req.method.replace(/^\/+/, '').replace(NOT_IN_PATH, (c) => encodeURIComponent(c)) + (req.query ? `?${req.query}` : '');
    const headers = requestHeaders(req, opts.appId(), target.app);
    // A pooled connection the listener closed just as it was reused fails before any response:
    // sending again on a fresh one is safe (nothing was processed).
    try {
      return await send(port, verb, path, headers, req);
    } catch (e) {
      if (!(e instanceof StaleSocket)) throw e;
      return send(port, verb, path, headers, req);
    }
  }

  function send(port: number, method: string, path: string, headers: Record<string, string>, req: InvokeRequest): Promise<InvokeResponse> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (fn: () => void) => {
        if (timer) clearTimeout(timer);
        fn();
      };
      const out = http.request({ host: '127.0.0.1', port, method, path, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > maxBytes) {
            res.destroy();
            done(() => reject(new ComponentError('backend', `the response of app '${req.appId}' is larger than ${maxBytes} bytes`)));
            return;
          }
          chunks.push(c);
        });
        res.on('error', (err) => done(() => reject(new ComponentError('backend', `invoking app '${req.appId}': the response broke off: ${err.message}`, { cause: err }))));
        res.on('end', () => {
          if (size > maxBytes) return;
          const status = res.statusCode ?? 0;
          const body = Buffer.concat(chunks);
          if (status === 404 && res.headers[UPSTREAM_MARK] === undefined) {
            done(() => reject(new ComponentError('not-found', `app id '${req.appId}' is unknown: add it to invocation.apps, nameResolution.static.apps or nameResolution.dns.apps (proxy: ${body.toString().trim()})`)));
            return;
          }
          if (status === 503 && res.headers[UPSTREAM_MARK] === undefined && body.subarray(0, DNS_RESOLUTION_FAILURE.length).toString() === DNS_RESOLUTION_FAILURE) {
            done(() => reject(new ComponentError('not-found', `app id '${req.appId}' is unknown: its DNS name does not resolve (proxy: ${body.toString().trim()})`)));
            return;
          }
          const h = responseHeaders(res);
          done(() => resolve({ status, headers: h, body, ...(h['content-type'] !== undefined ? { contentType: h['content-type'] } : {}) }));
        });
      });
      out.on('error', (err: NodeJS.ErrnoException) => {
        if (out.reusedSocket && err.code === 'ECONNRESET') return done(() => reject(new StaleSocket()));
        opts.logger.debug({ err: err.message, appId: req.appId, port }, 'invocation listener unreachable');
        done(() => reject(new ComponentError('backend', `invoking app '${req.appId}': the invocation listener 127.0.0.1:${port} did not answer: ${err.message}`, { cause: err })));
      });
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          out.destroy();
          reject(new ComponentError('backend', `invoking app '${req.appId}': no response within ${timeoutMs}ms`));
        }, timeoutMs);
      }
      out.end(req.body);
    });
  }

  return { invoke, close: () => agent.destroy() };
}

class StaleSocket extends Error {}

function requestHeaders(req: InvokeRequest, callerAppId: string, calleeAppId: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    const name = k.toLowerCase();
    if (NOT_FORWARDED.has(name) || name === 'host' || name.startsWith(':')) continue;
    out[name] = v;
  }
  if (req.contentType && out['content-type'] === undefined) out['content-type'] = req.contentType;
  out.host = req.appId;
  out['content-length'] = String(req.body.length);
  out['dapr-caller-app-id'] = callerAppId;
  out['dapr-callee-app-id'] = calleeAppId;
  return out;
}

function responseHeaders(res: http.IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) {
    if (v === undefined || NOT_FORWARDED.has(k)) continue;
    out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}
