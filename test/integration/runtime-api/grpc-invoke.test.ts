/**
 * InvokeService through the real Invoker and a real sidecar's `capa-invocation` listener to real
 * HTTP apps, seen through a raw gRPC client: what arrives at the app (verb, path, query, body,
 * content type, the caller's metadata), what comes back (Any bytes, content type, the app's
 * headers as response metadata), and the statuses of an app's 404, an app that is down and an
 * unknown app id.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtinComponentRegistry } from '../../../src/components/index.js';
import { ComponentManager } from '../../../src/components/manager.js';
import type { PubSub } from '../../../src/components/pubsub/pubsub.js';
import { PubSubRuntime } from '../../../src/runtime/pubsub.js';
import { createInvoker } from '../../../src/runtime/invoker.js';
import { startRuntimeGrpcServer, type RuntimeGrpcServer } from '../../../src/runtime-api/grpc/index.js';
import { startSidecar, type Running } from '../../helpers/sidecar.js';
import { startUpstream, type Upstream } from '../../helpers/upstream.js';
import { freePort } from '../../helpers/http.js';

const require = createRequire(import.meta.url);
const PROTO_ROOT = join(dirname(require.resolve('layotto/package.json')), 'proto');
const logger = pino({ level: process.env.CAPA_TEST_LOG ?? 'silent' });

type Client = grpc.Client & Record<string, any>;

function invoke(c: Client, req: unknown, md = new grpc.Metadata()): Promise<{ res: any; headers: grpc.Metadata; err?: grpc.ServiceError; trailers?: grpc.Metadata }> {
  return new Promise((resolve) => {
    let headers = new grpc.Metadata();
    let trailers: grpc.Metadata | undefined;
    const call = c.InvokeService(req, md, { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null, res: unknown) => {
      setImmediate(() => resolve({ res, headers, trailers, ...(err ? { err } : {}) }));
    });
    call.on('metadata', (m: grpc.Metadata) => (headers = m));
    call.on('status', (s: grpc.StatusObject) => (trailers = s.metadata));
  });
}

describe('runtime gRPC API: InvokeService', () => {
  let billing: Upstream;
  let sc: Running;
  let server: RuntimeGrpcServer;
  let c: Client;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    billing = await startUpstream('billing', (rq, res, body) => {
      if (rq.url?.startsWith('/missing')) {
        res.statusCode = 404;
        res.end('no such invoice');
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.setHeader('x-billing', 'yes');
      res.end(JSON.stringify({ method: rq.method, url: rq.url, body, contentType: rq.headers['content-type'] ?? null, trace: rq.headers['x-trace-me'] ?? null }));
    });
    const dead = await freePort();
    sc = await startSidecar(`
app: { id: checkout }
nameResolution:
  type: static
  static:
    apps:
      - { appId: billing, endpoints: ["127.0.0.1:${billing.port}"] }
      - { appId: down, endpoints: ["127.0.0.1:${dead}"] }
invocation:
  port: 0
  timeout: 5s
`);
    const components = new ComponentManager(builtinComponentRegistry(), logger);
    await components.start([]);
    const appId = () => 'checkout';
    const pubsub = new PubSubRuntime({ pubsubs: components.view<PubSub>('pubsub'), appId, logger });
    const invoker = createInvoker({ port: () => sc.sidecar.listenerPort('capa-invocation'), appId, logger });
    server = await startRuntimeGrpcServer({ host: '127.0.0.1', port: 0, services: { appId, components, pubsub, invoker, logger } });
    const def = protoLoader.loadSync(join(PROTO_ROOT, 'runtime/v1/runtime.proto'), { keepCase: true, longs: String, enums: String, defaults: true, includeDirs: [PROTO_ROOT] });
    c = new (grpc.loadPackageDefinition(def) as any).spec.proto.runtime.v1.Runtime(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    cleanup = async () => {
      invoker.close();
      await pubsub.close();
      await components.close();
    };
  });
  afterAll(async () => {
    c?.close();
    await server?.close();
    await cleanup?.();
    await sc?.stop();
    await billing?.close();
  });

  it('sends verb, method, query, body and content type; forwards caller metadata; returns Any bytes, content type and app headers', async () => {
    const md = new grpc.Metadata();
    md.set('x-trace-me', 'abc');
    const { res, headers, err } = await invoke(
      c,
      {
        id: 'billing',
        message: {
          method: '/invoices/new',
          data: { type_url: 'type.googleapis.com/ignored', value: Buffer.from('{"amount":5}') },
          content_type: 'application/json',
          http_extension: { verb: 'PUT', querystring: 'currency=EUR&x=a%20b' },
        },
      },
      md,
    );
    expect(err).toBeUndefined();
    expect(res.content_type).toBe('application/json');
    const seen = JSON.parse(res.data.value.toString());
    expect(seen).toEqual({ method: 'PUT', url: '/invoices/new?currency=EUR&x=a%20b', body: '{"amount":5}', contentType: 'application/json', trace: 'abc' });
    expect(headers.get('x-billing')).toEqual(['yes']);
    // The transport's own headers are neither forwarded to the app nor taken from it.
    const last = billing.seen.at(-1)!;
    expect(Object.keys(last.headers).filter((h) => h.startsWith('grpc-') || h === 'te')).toEqual([]);
    expect(headers.get('content-type')).toEqual(['application/grpc']);
  });

  it('verb NONE (or no http_extension) is POST, Dapr\'s default; GET carries no body', async () => {
    const none = await invoke(c, { id: 'billing', message: { method: 'a', data: { value: Buffer.from('x') }, http_extension: { verb: 'NONE' } } });
    expect(JSON.parse(none.res.data.value.toString()).method).toBe('POST');
    const absent = await invoke(c, { id: 'billing', message: { method: 'a' } });
    expect(JSON.parse(absent.res.data.value.toString()).method).toBe('POST');
    const get = await invoke(c, { id: 'billing', message: { method: 'a', http_extension: { verb: 'GET', querystring: '' } } });
    expect(JSON.parse(get.res.data.value.toString())).toMatchObject({ method: 'GET', url: '/a', body: '' });
  });

  it('an app\'s 404 is NOT_FOUND with the body in the message and the HTTP status in a trailer', async () => {
    const { err, trailers } = await invoke(c, { id: 'billing', message: { method: 'missing/7', http_extension: { verb: 'GET' } } });
    expect(err?.code).toBe(grpc.status.NOT_FOUND);
    expect(err?.details).toBe('app billing answered HTTP 404 to GET /missing/7: no such invoice');
    expect(trailers?.get('http-status')).toEqual(['404']);
  });

  it('an app that is down is UNAVAILABLE; an app id with no route is NOT_FOUND', async () => {
    const down = await invoke(c, { id: 'down', message: { method: 'x', http_extension: { verb: 'GET' } } });
    expect(down.err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(down.err?.details).toMatch(/^app down answered HTTP 503/);
    const unknown = await invoke(c, { id: 'nobody', message: { method: 'x' } });
    expect(unknown.err?.code).toBe(grpc.status.NOT_FOUND);
    expect(unknown.err?.details).toMatch(/fail to invoke nobody\/x: .*nobody/);
    // Dapr's app.namespace: another namespace has no route here (static name resolution).
    const elsewhere = await invoke(c, { id: 'billing.prod', message: { method: 'x' } });
    expect(elsewhere.err?.code).toBe(grpc.status.NOT_FOUND);
    const bad = await invoke(c, { id: 'bad.id.x', message: { method: 'x' } });
    expect(bad.err?.code).toBe(grpc.status.INVALID_ARGUMENT);
  });
});
