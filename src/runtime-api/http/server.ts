/**
 * The runtime HTTP API (Dapr-compatible `/v1.0/...`) on `sidecar.port`, bound to 127.0.0.1: the
 * application beside the sidecar is its only client. Routing is a switch on path segments; the
 * handlers live per building block (state.ts, pubsub.ts, configuration.ts, lock.ts, secrets.ts,
 * invoke.ts) over the shared RuntimeServices and reply through one error mapping (errors.ts).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { ListeningServer } from '../../admin/types.js';
import { listen } from '../../admin/listen.js';
import type { RuntimeServices } from '../../runtime/services.js';
import type { AppSubscription } from '../../runtime/app-channel.js';
import type { StateStore } from '../../components/state/store.js';
import { ConfigurationApi, type AppCallback } from './configuration.js';
import { DaprHttpError, sendError } from './errors.js';
import { invoke } from './invoke.js';
import { json, readBody, readJson, send } from './io.js';
import { tryLock, unlock } from './lock.js';
import { publish, publishBulk } from './pubsub.js';
import { bulkGetSecrets, getSecret } from './secrets.js';
import { bulkGetState, deleteState, findStore, getState, saveState, transactState, type StateStores } from './state.js';

const RUNTIME_VERSION = '0.1.0';

export interface RuntimeHttpOptions {
  readonly host: string;
  readonly port: number;
  /** false while draining: healthz answers 500. */
  readonly healthy: () => boolean;
  readonly services: RuntimeServices;
  /** The app's HTTP callback channel (configuration updates); absent when there is no HTTP app. */
  readonly app?: AppCallback;
}

interface Context {
  readonly opts: RuntimeHttpOptions;
  readonly services: RuntimeServices;
  readonly stores: StateStores;
  readonly configuration: ConfigurationApi;
  /** `PUT /v1.0/metadata/{key}` attributes, shown under `extended`. */
  readonly extended: Map<string, string>;
}

export async function startRuntimeHttpServer(opts: RuntimeHttpOptions): Promise<ListeningServer> {
  const { services } = opts;
  const ctx: Context = {
    opts,
    services,
    stores: services.components.view<StateStore>('state'),
    configuration: new ConfigurationApi(services, opts.app, services.logger),
    extended: new Map(),
  };
  const server = createServer((req, res) => {
    handle(req, res, ctx).catch((e: unknown) => {
      const err = e instanceof DaprHttpError ? e : new DaprHttpError('ERR_INTERNAL', `internal error: ${(e as Error).message}`, 500);
      if (!(e instanceof DaprHttpError)) services.logger.error({ path: req.url, error: (e as Error).message }, 'runtime API: unexpected failure');
      if (res.headersSent) res.destroy();
      else sendError(res, err);
    });
  });
  server.keepAliveTimeout = 65_000;
  const listening = await listen(server, opts.host, opts.port);
  return {
    port: listening.port,
    close: async () => {
      await ctx.configuration.close();
      await listening.close();
    },
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, ctx: Context): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://runtime');
  const seg = url.pathname.split('/').filter((s) => s !== '').map(decodeSegment);
  const method = req.method ?? 'GET';
  const [version, api] = seg;
  if (version === 'v1.0') {
    if (api === 'invoke' && seg.length >= 5 && seg[3] === 'method') return send(res, await invoke(ctx.services, req, url.pathname, url.search.slice(1)));
    if (api === 'healthz') return healthz(res, ctx, seg, method);
    if (api === 'metadata') return metadataApi(req, res, ctx, seg, method);
    if (api === 'state') return stateApi(req, res, ctx, seg, url, method);
    if (api === 'publish' && seg.length >= 3) {
      allow(method, ['POST', 'PUT']);
      return send(res, await publish(ctx.services, seg[2]!, seg.slice(3).join('/'), req, url.searchParams));
    }
    if (api === 'secrets' && seg.length === 4) {
      allow(method, ['GET']);
      return send(res, seg[3] === 'bulk' ? await bulkGetSecrets(ctx.services, seg[2]!, url.searchParams) : await getSecret(ctx.services, seg[2]!, seg[3]!, url.searchParams));
    }
    if (api === 'configuration') return configurationApi(res, ctx, seg, url, method);
  }
  if (version === 'v1.0-alpha1') {
    if (api === 'publish' && seg[2] === 'bulk' && seg.length >= 4) {
      allow(method, ['POST', 'PUT']);
      return send(res, await publishBulk(ctx.services, seg[3]!, seg.slice(4).join('/'), req, url.searchParams));
    }
    if ((api === 'lock' || api === 'unlock') && seg.length === 3) {
      allow(method, ['POST', 'PUT']);
      const body = await readJson(req);
      return send(res, api === 'lock' ? await tryLock(ctx.services, seg[2]!, body) : await unlock(ctx.services, seg[2]!, body));
    }
    if (api === 'configuration') return configurationApi(res, ctx, seg, url, method);
  }
  return notFound(req, res);
}

function healthz(res: ServerResponse, ctx: Context, seg: string[], method: string): void {
  const outbound = seg[2] === 'outbound';
  if (seg.length > 3 || (seg.length === 3 && !outbound)) throw notFoundError(method, seg);
  allow(method, ['GET']);
  if (!ctx.opts.healthy()) throw new DaprHttpError('ERR_HEALTH_NOT_READY', 'dapr is not ready: the sidecar is draining');
  // As Dapr: healthy once every component is initialised. /outbound (what SDKs wait for) only
  // needs the API up, so an app can start while a backend is still unreachable.
  const failing = outbound ? [] : ctx.services.components.statuses().filter((c) => c.error !== undefined);
  if (failing.length > 0) throw new DaprHttpError('ERR_HEALTH_NOT_READY', `dapr is not ready: ${failing.map((c) => `component ${c.name}: ${c.error}`).join('; ')}`);
  send(res, { status: 204 });
}

async function metadataApi(req: IncomingMessage, res: ServerResponse, ctx: Context, seg: string[], method: string): Promise<void> {
  if (seg.length === 2) {
    allow(method, ['GET']);
    return send(res, json(200, metadata(ctx)));
  }
  if (seg.length === 3) {
    allow(method, ['PUT']);
    ctx.extended.set(seg[2]!, (await readBody(req)).toString('utf8'));
    return send(res, { status: 204 });
  }
  throw notFoundError(method, seg);
}

async function stateApi(req: IncomingMessage, res: ServerResponse, ctx: Context, seg: string[], url: URL, method: string): Promise<void> {
  const [, , store, rest, extra] = seg;
  if (store === undefined || extra !== undefined) throw notFoundError(method, seg);
  if (rest === undefined) {
    allow(method, ['POST', 'PUT']);
    const s = findStore(ctx.stores, store);
    return send(res, await saveState(s, store, await readJson(req)));
  }
  if ((rest === 'bulk' || rest === 'transaction') && (method === 'POST' || method === 'PUT')) {
    const s = findStore(ctx.stores, store);
    const body = await readJson(req);
    return send(res, rest === 'bulk' ? await bulkGetState(s, store, body, url.searchParams) : await transactState(s, store, body));
  }
  allow(method, ['GET', 'DELETE']);
  const s = findStore(ctx.stores, store);
  if (method === 'GET') return send(res, await getState(s, store, rest, url.searchParams));
  const ifMatch = req.headers['if-match'];
  return send(res, await deleteState(s, rest, typeof ifMatch === 'string' && ifMatch !== '' ? unquote(ifMatch) : undefined, url.searchParams));
}

async function configurationApi(res: ServerResponse, ctx: Context, seg: string[], url: URL, method: string): Promise<void> {
  const store = seg[2];
  if (store === undefined) throw notFoundError(method, seg);
  if (seg.length === 3) {
    allow(method, ['GET']);
    return send(res, await ctx.configuration.get(store, url.searchParams));
  }
  if (seg.length === 4 && seg[3] === 'subscribe') {
    allow(method, ['GET', 'POST']);
    return send(res, await ctx.configuration.subscribe(store, url.searchParams));
  }
  if (seg.length === 5 && seg[4] === 'unsubscribe') {
    allow(method, ['GET', 'POST']);
    return send(res, await ctx.configuration.unsubscribe(store, seg[3]!));
  }
  throw notFoundError(method, seg);
}

function metadata(ctx: Context): unknown {
  const components = ctx.services.components.statuses();
  return {
    id: ctx.services.appId(),
    runtimeVersion: RUNTIME_VERSION,
    enabledFeatures: [],
    actors: [],
    components: components.map((c) => ({
      name: c.name,
      type: c.type,
      version: c.version,
      capabilities: c.capabilities,
      ...(c.error !== undefined ? { error: c.error } : {}),
    })),
    extended: { ...Object.fromEntries(ctx.extended), daprRuntimeVersion: RUNTIME_VERSION, runtime: 'capa-runtime' },
    // Dapr's shape: one rule (our single route), programmatic (asked from the app).
    subscriptions: ctx.services.pubsub.subscriptions().map((s) => ({
      pubsubname: s.pubsubName,
      topic: s.topic,
      metadata: { ...s.metadata },
      rules: routingRules(s),
      deadLetterTopic: s.deadLetterTopic ?? '',
      type: 'PROGRAMMATIC',
    })),
    httpEndpoints: [],
  };
}

/** As Dapr lists them: the rules in order, then the default path as a rule without a match. */
function routingRules(s: AppSubscription): { match: string; path: string }[] {
  const rules = (s.rules ?? []).map((r) => ({ match: r.match, path: r.path }));
  if (s.route !== '' || rules.length === 0) rules.push({ match: '', path: s.route });
  return rules;
}

// === impl plumbing ===

function allow(method: string, methods: readonly string[]): void {
  if (!methods.includes(method)) throw new DaprHttpError('ERR_METHOD_NOT_ALLOWED', `method ${method} is not allowed here (allowed: ${methods.join(', ')})`);
}

function notFoundError(method: string, seg: string[]): DaprHttpError {
  return new DaprHttpError('ERR_NOT_FOUND', `method ${JSON.stringify(`${method} /${seg.join('/')}`)} is not found`);
}

function notFound(req: IncomingMessage, res: ServerResponse): void {
  sendError(res, new DaprHttpError('ERR_NOT_FOUND', `method ${JSON.stringify(`${req.method} ${req.url}`)} is not found`));
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** `If-Match: "3"` and `If-Match: 3` both mean etag 3. */
function unquote(v: string): string {
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
}
