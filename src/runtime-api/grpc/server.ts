/**
 * The Layotto-compatible gRPC front end (`spec.proto.runtime.v1.Runtime`) on `sidecar.grpcPort`.
 * It holds no logic of its own: every RPC is a translation to the building blocks and services
 * of RuntimeServices, shared with the Dapr HTTP front end.
 *
 * Every method of the proto has a handler: the implemented ones below, and an UNIMPLEMENTED
 * answer with a message for the others (File RPCs, InvokeBinding, and whatever a newer
 * runtime.proto adds). A handler that throws fails its own call only.
 */
import type * as Grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { RuntimeServices } from '../../runtime/services.js';
import { configurationHandlers } from './configuration.js';
import { Code, toGrpcError } from './errors.js';
import { invokeHandlers } from './invoke.js';
import { lockHandlers } from './lock.js';
import { grpc, runtimeServiceDefinition } from './proto.js';
import { pubsubHandlers } from './pubsub.js';
import { secretHandlers } from './secrets.js';
import { sequencerHandlers } from './sequencer.js';
import { stateHandlers } from './state.js';

export interface RuntimeGrpcServerOptions {
  readonly host: string;
  readonly port: number;
  readonly services: RuntimeServices;
}

export interface RuntimeGrpcServer {
  /** The bound port (the real one when 0 was asked). */
  readonly port: number;
  close(): Promise<void>;
}

type UnaryFn = (req: any, call: Grpc.ServerUnaryCall<any, any>) => Promise<unknown>;

/** Why an RPC is not served, per method; anything else missing says the generic sentence. */
const NOT_YET: Record<string, string> = {
  GetFile: 'the file API arrives with a later issue',
  PutFile: 'the file API arrives with a later issue',
  ListFile: 'the file API arrives with a later issue',
  DelFile: 'the file API arrives with a later issue',
  GetFileMeta: 'the file API arrives with a later issue',
  InvokeBinding: 'the bindings API arrives with a later issue',
};

function statusOf(e: unknown): Partial<Grpc.StatusObject> {
  const g = toGrpcError(e);
  const status: Partial<Grpc.StatusObject> = { code: g.code, details: g.message };
  if (g.trailers) {
    const md = new (grpc().Metadata)();
    for (const [k, v] of Object.entries(g.trailers)) md.set(k, v);
    status.metadata = md;
  }
  return status;
}

function unary(method: string, logger: Logger, fn: UnaryFn): Grpc.handleUnaryCall<any, any> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request, call))
      .then(
        (res) => callback(null, res),
        (e: unknown) => {
          const s = statusOf(e);
          // A caller's mistake is theirs to see; a failure of ours or of a backend is logged.
          if (s.code === Code.INTERNAL || s.code === Code.UNAVAILABLE) logger.warn({ method, code: s.code, error: s.details }, 'runtime gRPC call failed');
          else logger.debug({ method, code: s.code, error: s.details }, 'runtime gRPC call rejected');
          callback(s);
        },
      );
  };
}

/** An UNIMPLEMENTED handler of the right shape for `def`'s streaming kind. */
function unimplemented(method: string, def: Grpc.MethodDefinition<unknown, unknown>): Grpc.UntypedHandleCall {
  const why = NOT_YET[method] ?? 'this runtime does not serve it';
  const status = { code: Code.UNIMPLEMENTED, details: `${method} is not implemented by capa-runtime yet: ${why}` };
  if (def.requestStream && def.responseStream) return (call: Grpc.ServerDuplexStream<unknown, unknown>) => call.emit('error', status);
  if (def.responseStream) return (call: Grpc.ServerWritableStream<unknown, unknown>) => call.emit('error', status);
  if (def.requestStream) return (_call: Grpc.ServerReadableStream<unknown, unknown>, cb: Grpc.sendUnaryData<unknown>) => cb(status);
  return (_call: Grpc.ServerUnaryCall<unknown, unknown>, cb: Grpc.sendUnaryData<unknown>) => cb(status);
}

function sayHello() {
  return {
    // Layotto's `helloworld` component: "greetings", plus ", <name>" when a name is given.
    async SayHello(req: { name: string; data: unknown }) {
      return { hello: req.name ? `greetings, ${req.name}` : 'greetings', data: req.data ?? null };
    },
  };
}

/** The implementation map for `spec.proto.runtime.v1.Runtime`, every method present. */
export function runtimeImplementation(services: RuntimeServices, logger: Logger, shutdown: AbortSignal): Grpc.UntypedServiceImplementation {
  const unaries: Record<string, UnaryFn> = {
    ...sayHello(),
    ...stateHandlers(services),
    ...pubsubHandlers(services),
    ...lockHandlers(services),
    ...sequencerHandlers(services),
    ...secretHandlers(services),
    ...invokeHandlers(services),
  };
  const { SubscribeConfiguration, ...configUnaries } = configurationHandlers(services, logger, shutdown);
  Object.assign(unaries, configUnaries);

  const impl: Grpc.UntypedServiceImplementation = { SubscribeConfiguration };
  for (const [method, def] of Object.entries(runtimeServiceDefinition())) {
    if (impl[method]) continue;
    const fn = Object.hasOwn(unaries, method) ? unaries[method] : undefined;
    impl[method] = fn && !def.requestStream && !def.responseStream ? unary(method, logger, fn) : unimplemented(method, def);
  }
  return impl;
}

/** Serves the Layotto runtime API on host:port; resolves once bound. */
export async function startRuntimeGrpcServer(opts: RuntimeGrpcServerOptions): Promise<RuntimeGrpcServer> {
  const g = grpc();
  const logger = opts.services.logger.child({ component: 'runtime-grpc' });
  const shutdown = new AbortController();
  const server = new g.Server();
  server.addService(runtimeServiceDefinition(), runtimeImplementation(opts.services, logger, shutdown.signal));
  const address = `${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${opts.port}`;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(address, g.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(new Error(`runtime gRPC server cannot listen on ${address}: ${err.message}`, { cause: err })) : resolve(bound))),
  );
  logger.info({ address: `${opts.host}:${port}` }, 'Layotto runtime gRPC API listening');

  let closing: Promise<void> | undefined;
  return {
    port,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        // Ends the configuration watch streams first: they would hold tryShutdown open forever.
        shutdown.abort();
        const force = setTimeout(() => server.forceShutdown(), 2000).unref();
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      })),
  };
}
