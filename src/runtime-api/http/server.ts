/**
 * The runtime HTTP API (Dapr-compatible `/v1.0/...`) on `sidecar.port`, bound to 127.0.0.1: the
 * application beside the sidecar is its only client. Routing is a switch on path segments; the
 * handlers live per building block (state.ts) and reply through one error mapping (errors.ts).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { ListeningServer } from '../../admin/types.js';
import { listen } from '../../admin/listen.js';
import type { ComponentStatus } from '../../components/manager.js';
import { DaprHttpError, sendError } from './errors.js';
import { bulkGetState, deleteState, findStore, getState, saveState, transactState, type Reply, type StateStores } from './state.js';

/** Dapr's default `--dapr-http-max-request-size` (4 MB). */
const MAX_BODY = 4 * 1024 * 1024;
const RUNTIME_VERSION = '0.1.0';

export interface RuntimeHttpOptions {
  readonly host: string;
  readonly port: number;
  readonly appId: () => string;
  readonly stores: StateStores;
  readonly components: () => ComponentStatus[];
  readonly logger: Logger;
  /** false while draining: healthz answers 500. */
  readonly healthy: () => boolean;
}

export function startRuntimeHttpServer(opts: RuntimeHttpOptions): Promise<ListeningServer> {
  const server = createServer((req, res) => {
    handle(req, res, opts).catch((e: unknown) => {
      const err = e instanceof DaprHttpError ? e : new DaprHttpError('ERR_STATE_SAVE', `internal error: ${(e as Error).message}`, 500);
      if (!(e instanceof DaprHttpError)) opts.logger.error({ path: req.url, error: (e as Error).message }, 'runtime API: unexpected failure');
      if (res.headersSent) res.destroy();
      else sendError(res, err);
    });
  });
  server.keepAliveTimeout = 65_000;
  return listen(server, opts.host, opts.port);
}

async function handle(req: IncomingMessage, res: ServerResponse, opts: RuntimeHttpOptions): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://runtime');
  const seg = url.pathname.split('/').filter((s) => s !== '').map(decodeSegment);
  const method = req.method ?? 'GET';
  const [version, api, store, rest, extra] = seg;
  if (version !== 'v1.0') return notFound(req, res);

  if (api === 'healthz' && (seg.length === 2 || (seg.length === 3 && store === 'outbound'))) {
    allow(method, ['GET']);
    if (!opts.healthy()) throw new DaprHttpError('ERR_HEALTH_NOT_READY', 'dapr is not ready: the sidecar is draining');
    // As Dapr: healthy once every component is initialised. /outbound (what SDKs wait for) only
    // needs the API up, so an app can start while a backend is still unreachable.
    const failing = store === 'outbound' ? [] : opts.components().filter((c) => c.error !== undefined);
    if (failing.length > 0) throw new DaprHttpError('ERR_HEALTH_NOT_READY', `dapr is not ready: ${failing.map((c) => `component ${c.name}: ${c.error}`).join('; ')}`);
    return send(res, { status: 204 });
  }
  if (api === 'metadata' && seg.length === 2) {
    allow(method, ['GET']);
    return send(res, json(200, metadata(opts)));
  }
  if (api === 'state' && store !== undefined && extra === undefined) {
    if (rest === undefined) {
      allow(method, ['POST', 'PUT']);
      const s = findStore(opts.stores, store);
      return send(res, await saveState(s, store, await readJson(req)));
    }
    if ((rest === 'bulk' || rest === 'transaction') && (method === 'POST' || method === 'PUT')) {
      const s = findStore(opts.stores, store);
      const body = await readJson(req);
      return send(res, rest === 'bulk' ? await bulkGetState(s, store, body, url.searchParams) : await transactState(s, store, body));
    }
    allow(method, ['GET', 'DELETE']);
    const s = findStore(opts.stores, store);
    if (method === 'GET') return send(res, await getState(s, store, rest, url.searchParams));
    const ifMatch = req.headers['if-match'];
    return send(res, await deleteState(s, rest, typeof ifMatch === 'string' && ifMatch !== '' ? unquote(ifMatch) : undefined, url.searchParams));
  }
  return notFound(req, res);
}

function metadata(opts: RuntimeHttpOptions): unknown {
  const components = opts.components();
  return {
    id: opts.appId(),
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
    extended: { daprRuntimeVersion: RUNTIME_VERSION, runtime: 'capa-runtime' },
    subscriptions: [],
    httpEndpoints: [],
  };
}

// === impl plumbing ===

function allow(method: string, methods: readonly string[]): void {
  if (!methods.includes(method)) throw new DaprHttpError('ERR_METHOD_NOT_ALLOWED', `method ${method} is not allowed here (allowed: ${methods.join(', ')})`);
}

function notFound(req: IncomingMessage, res: ServerResponse): void {
  sendError(res, new DaprHttpError('ERR_NOT_FOUND', `method ${JSON.stringify(`${req.method} ${req.url}`)} is not found`));
}

function send(res: ServerResponse, r: Reply): void {
  const headers: Record<string, string | number> = { ...r.headers };
  if (r.body !== undefined) headers['content-length'] = Buffer.byteLength(r.body);
  res.writeHead(r.status, headers);
  res.end(r.body);
}

function json(status: number, v: unknown): Reply {
  return { status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(v) };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new DaprHttpError('ERR_BODY_TOO_LARGE', `request body is larger than ${MAX_BODY} bytes`);
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new DaprHttpError('ERR_MALFORMED_REQUEST', `failed deserializing HTTP body: ${(e as Error).message}`);
  }
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
