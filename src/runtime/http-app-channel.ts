/**
 * The app channel for `app.protocol: http`, as Dapr calls an HTTP app:
 * - `GET /dapr/subscribe` lists the subscriptions, in Dapr's v1 format
 *   `[{pubsubname, topic, route, metadata, deadLetterTopic}]` or v2 `routes: {default, rules}`.
 *   Rules' CEL `match` expressions are compiled here, once (./routing-rules.ts); the default path
 *   is `routes.default`, else `route`, as in Dapr. An item that cannot be used (a rule that does
 *   not compile, no pubsub name, ...) is skipped with an error log naming it; the others work. A
 *   404 means no subscriptions.
 * - delivery POSTs the CloudEvent envelope as `application/cloudevents+json` to the route; the
 *   reply maps as Dapr maps it: 2xx with an empty / non-JSON body or `{"status":"SUCCESS"}` →
 *   SUCCESS, `{"status":"RETRY"}` → RETRY, `{"status":"DROP"}` → DROP, an unknown status →
 *   RETRY, 404 → DROP (Dapr logs and drops), any other status → RETRY; a connection error or
 *   timeout rejects (the subscriber counts it as RETRY).
 * - `post` sends other callbacks (configuration updates) as JSON.
 * Connections are kept alive; every call has a timeout. The calls go through AppHttpClient
 * (./app-http-client.ts), a lean HTTP/1.1 client: node:http cost more per delivery than the rest
 * of the delivery path.
 */
import type { Logger } from 'pino';
import type { AppChannel, AppDeliveryResult, AppSubscription, TopicEvent } from './app-channel.js';
import { AppHttpClient, type AppHttpReply } from './app-http-client.js';
import { CLOUDEVENT_CONTENT_TYPE, envelopeBytes } from './cloudevents.js';
import { RoutingRuleError, compileRoutingRules, type RoutingRule } from './routing-rules.js';

const DELIVERY_HEADERS = `Content-Type: ${CLOUDEVENT_CONTENT_TYPE}\r\n`;
const JSON_HEADERS = 'Content-Type: application/json\r\n';
/** A field value that can go on the wire as it is: no CR, LF, NUL or other control characters but HTAB. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

export interface HttpAppChannelOptions {
  readonly address: string;
  readonly port: number;
  readonly logger: Logger;
  /** Per delivery / callback (default 60 s). */
  readonly timeoutMs?: number;
  /** For `GET /dapr/subscribe` (default 5 s). */
  readonly listTimeoutMs?: number;
}

export class HttpAppChannel implements AppChannel {
  readonly protocol = 'http' as const;
  private readonly client: AppHttpClient;

  constructor(private readonly opts: HttpAppChannelOptions) {
    this.client = new AppHttpClient({ host: opts.address, port: opts.port, maxSockets: 128 });
  }

  async listSubscriptions(): Promise<AppSubscription[]> {
    const r = await this.call('GET', '/dapr/subscribe', '', undefined, this.opts.listTimeoutMs ?? 5000);
    if (r.status === 404) return [];
    if (r.status !== 200) throw new Error(`GET /dapr/subscribe answered ${r.status}: ${r.body.slice(0, 200)}`);
    let list: unknown;
    try {
      list = r.body.trim() === '' ? [] : JSON.parse(r.body);
    } catch (e) {
      throw new Error(`GET /dapr/subscribe answered invalid JSON: ${(e as Error).message}`, { cause: e });
    }
    if (!Array.isArray(list)) throw new Error('GET /dapr/subscribe must answer a JSON array');
    const subs = await Promise.all(list.map((item, i) => this.subscriptionOf(item, i)));
    return subs.filter((s): s is AppSubscription => s !== undefined);
  }

  async deliver(sub: AppSubscription, event: TopicEvent): Promise<AppDeliveryResult> {
    let headers = DELIVERY_HEADERS;
    const env = event.envelope;
    // A trace value that could not go on the wire as a field value is left out rather than failing the delivery.
    if (typeof env.traceparent === 'string' && env.traceparent && FIELD_VALUE.test(env.traceparent)) headers += `traceparent: ${env.traceparent}\r\n`;
    if (typeof env.tracestate === 'string' && env.tracestate && FIELD_VALUE.test(env.tracestate)) headers += `tracestate: ${env.tracestate}\r\n`;
    const r = await this.call('POST', sub.route, headers, envelopeBytes(event), this.opts.timeoutMs ?? 60_000);
    return this.resultOf(sub, event, r);
  }

  /** POST a JSON body to the app; resolves with the status (rejects when the app is unreachable). */
  async post(path: string, body: unknown): Promise<number> {
    const r = await this.call('POST', path, JSON_HEADERS, Buffer.from(JSON.stringify(body)), this.opts.timeoutMs ?? 60_000);
    return r.status;
  }

  async close(): Promise<void> {
    this.client.close();
  }

  private resultOf(sub: AppSubscription, event: TopicEvent, r: AppHttpReply): AppDeliveryResult {
    const at = { pubsub: sub.pubsubName, topic: sub.topic, route: sub.route, id: event.id, status: r.status };
    if (r.status === 404) {
      this.opts.logger.warn(at, 'the app answered 404 to a pub/sub event: non-retriable, dropped');
      return 'DROP';
    }
    if (r.status < 200 || r.status > 299) {
      this.opts.logger.warn({ ...at, body: r.body.slice(0, 200) }, 'the app failed a pub/sub event; will retry');
      return 'RETRY';
    }
    let status = '';
    try {
      const v: unknown = r.body.trim() === '' ? {} : JSON.parse(r.body);
      if (v && typeof v === 'object' && typeof (v as { status?: unknown }).status === 'string') status = (v as { status: string }).status.toUpperCase();
    } catch {
      return 'SUCCESS'; // as Dapr: a 2xx whose body is not JSON is a success
    }
    if (status === '' || status === 'SUCCESS') return 'SUCCESS';
    if (status === 'RETRY' || status === 'DROP') return status;
    this.opts.logger.warn({ ...at, appStatus: status }, 'the app answered an unknown pub/sub status; will retry');
    return 'RETRY';
  }

  /** One item of /dapr/subscribe; undefined (with a log line) when it is unusable. */
  private async subscriptionOf(item: unknown, i: number): Promise<AppSubscription | undefined> {
    const skip = (reason: string, at?: { pubsub: string; topic: string; rule?: number; match?: string }): undefined => {
      const where = at ? ` (pubsub ${at.pubsub}, topic ${at.topic}): ${reason}` : '';
      this.opts.logger.error({ index: i, ...at, item, reason }, `GET /dapr/subscribe: subscription skipped${where}`);
      return undefined;
    };
    if (!item || typeof item !== 'object') return skip('expected an object');
    const s = item as Record<string, unknown>;
    const pubsubName = s.pubsubname ?? s.pubsubName;
    if (typeof pubsubName !== 'string' || pubsubName === '') return skip('pubsubname must be a non-empty string');
    if (typeof s.topic !== 'string' || s.topic === '') return skip('topic must be a non-empty string');
    const topic = s.topic;
    const routes = s.routes && typeof s.routes === 'object' ? (s.routes as { default?: unknown; rules?: unknown }) : undefined;
    let rules: RoutingRule[] | undefined;
    if (routes?.rules !== undefined && routes.rules !== null) {
      if (!Array.isArray(routes.rules)) return skip('routes.rules must be an array of {match, path}', { pubsub: pubsubName, topic });
      try {
        rules = routes.rules.length > 0 ? await compileRoutingRules(routes.rules, toPath) : undefined;
      } catch (e) {
        if (!(e instanceof RoutingRuleError)) throw e;
        return skip(`routing rule ${e.index} (match ${JSON.stringify(e.match)}) ${e.reason}`, { pubsub: pubsubName, topic, rule: e.index, match: e.match });
      }
    }
    const metadata: Record<string, string> = {};
    if (s.metadata && typeof s.metadata === 'object') for (const [k, v] of Object.entries(s.metadata)) metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);
    const deadLetterTopic = typeof s.deadLetterTopic === 'string' && s.deadLetterTopic !== '' ? s.deadLetterTopic : undefined;
    const route = defaultRoute(s.route, routes?.default, rules === undefined ? topic : '');
    return { pubsubName, topic, route, ...(rules ? { rules } : {}), metadata, ...(deadLetterTopic ? { deadLetterTopic } : {}) };
  }

  private async call(method: string, path: string, headerLines: string, body: Buffer | undefined, timeoutMs: number): Promise<AppHttpReply> {
    try {
      return await this.client.request(method, path, headerLines, body, timeoutMs);
    } catch (e) {
      const err = e as Error & { code?: string };
      const why = err.code === 'CAPA_ERR_UPSTREAM_TIMEOUT' ? `the app did not answer ${method} ${path} within ${timeoutMs} ms` : err.message;
      throw new Error(`app ${this.opts.address}:${this.opts.port} ${method} ${path}: ${why}`, { cause: e });
    }
  }
}

/**
 * The default path: `routes.default`, else `route` (Dapr's order), else `fallback` — the topic for
 * a subscription without rules (Dapr's SDKs always name a route; the topic is a usable stand-in),
 * '' with rules (no default: an event no rule matched is not delivered).
 */
function defaultRoute(route: unknown, routesDefault: unknown, fallback: string): string {
  const r = typeof routesDefault === 'string' && routesDefault !== '' ? routesDefault : typeof route === 'string' ? route : '';
  return r === '' ? (fallback === '' ? '' : toPath(fallback)) : toPath(r);
}

function toPath(p: string): string {
  return p.startsWith('/') ? p : `/${p}`;
}
