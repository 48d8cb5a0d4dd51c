/**
 * The runtime API in-process, built from user-format component YAML through the real registry:
 * components, the pub/sub layer, the HTTP front end on port 0, and (when asked) the HTTP app
 * channel to a test app. Plus a small real HTTP "app" that records what the sidecar sends it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import type { Registry } from 'prom-client';
import { builtinComponentRegistry } from '../../src/components/index.js';
import { ComponentManager } from '../../src/components/manager.js';
import type { PubSub } from '../../src/components/pubsub/pubsub.js';
import { ComponentUnsupportedError } from '../../src/components/errors.js';
import { loadConfigText } from '../../src/config/load.js';
import { builtinFilterRegistry } from '../../src/filters/index.js';
import { HttpAppChannel } from '../../src/runtime/http-app-channel.js';
import type { Invoker } from '../../src/runtime/invocation.js';
import { PubSubRuntime } from '../../src/runtime/pubsub.js';
import { pubsubMetrics } from '../../src/runtime/pubsub-metrics.js';
import type { RuntimeServices } from '../../src/runtime/services.js';
import { startRuntimeHttpServer } from '../../src/runtime-api/http/server.js';

/** A logger whose JSON lines are kept in `lines` (to assert what was logged). */
export function memoryLogger(): { logger: Logger; lines: Record<string, any>[] } {
  const lines: Record<string, any>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

/** A `components:` list in the user's YAML format → running components (through the real config compiler). */
export async function startComponents(yaml: string, logger: Logger, retryMs = 200): Promise<ComponentManager> {
  const text = `components:\n${yaml.split('\n').map((l) => `  ${l}`).join('\n')}\n`;
  const { snapshot } = loadConfigText(text, 'components.yaml', { filters: builtinFilterRegistry() });
  const m = new ComponentManager(builtinComponentRegistry(), logger, retryMs);
  await m.start(snapshot.components);
  return m;
}

export interface RuntimeUnderTest {
  readonly base: string;
  readonly services: RuntimeServices;
  readonly pubsub: PubSubRuntime;
  readonly components: ComponentManager;
  readonly lines: Record<string, any>[];
  /** Resolves when the app's subscriptions are in place (only with `appPort`). */
  readonly subscribed: Promise<void>;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  readonly appId?: string;
  /** A test app on this port gets pub/sub deliveries and configuration updates. */
  readonly appPort?: number;
  readonly invoker?: Invoker;
  /** The pub/sub counters (capa_pubsub_*) go here. */
  readonly registry?: Registry;
}

export async function startRuntime(componentsYaml: string, opts: RuntimeOptions = {}): Promise<RuntimeUnderTest> {
  const { logger, lines } = memoryLogger();
  const components = await startComponents(componentsYaml, logger);
  const appId = (): string => opts.appId ?? 'test-app';
  const metrics = opts.registry ? pubsubMetrics(opts.registry) : undefined;
  const pubsub = new PubSubRuntime({ pubsubs: components.view<PubSub>('pubsub'), appId, logger, metrics, retryInitialMs: 20, retryMaxMs: 100 });
  const invoker: Invoker = opts.invoker ?? { invoke: (r) => Promise.reject(new ComponentUnsupportedError(`service invocation is not configured: cannot invoke ${r.appId}`)) };
  const services: RuntimeServices = { appId, components, pubsub, invoker, logger };
  const app = opts.appPort ? new HttpAppChannel({ address: '127.0.0.1', port: opts.appPort, logger, timeoutMs: 2000 }) : undefined;
  const server = await startRuntimeHttpServer({ host: '127.0.0.1', port: 0, healthy: () => true, services, app });
  const subscribed = app ? pubsub.start(app) : Promise.resolve();
  return {
    base: `http://127.0.0.1:${server.port}`,
    services,
    pubsub,
    components,
    lines,
    subscribed,
    async close() {
      await pubsub.close();
      await server.close();
      await app?.close();
      await components.close();
    },
  };
}

export interface Received {
  readonly method: string;
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly json: any;
  /** The client's port: equal for requests on one kept-alive connection. */
  readonly remotePort: number;
}

export type AppReply = { status: number; body?: unknown; headers?: Record<string, string> } | 'hang';

/** A real HTTP app: `reply` decides each answer; every request is recorded in `received`. */
export async function startTestApp(reply: (r: Received) => AppReply | Promise<AppReply>, port = 0): Promise<{ port: number; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let parsed: unknown;
      try {
        parsed = body ? JSON.parse(body) : undefined;
      } catch {
        parsed = undefined;
      }
      const r: Received = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, json: parsed, remotePort: req.socket.remotePort ?? 0 };
      received.push(r);
      void Promise.resolve(reply(r)).then((a) => {
        if (a === 'hang') return;
        const text = a.body === undefined ? '' : typeof a.body === 'string' ? a.body : JSON.stringify(a.body);
        res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers });
        res.end(text);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port that was free a moment ago (for an app that must be named before it starts). */
export async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Polls `cond` every 20 ms until true or `ms` pass (then throws naming `what`). */
export async function eventually(what: string, cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A fetch Response's JSON body, untyped (for assertions). */
export function readJson(r: Response): Promise<any> {
  return r.json() as Promise<any>;
}
