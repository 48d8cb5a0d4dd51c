/**
 * The Layotto-compatible gRPC front end (`spec.proto.runtime.v1.Runtime`) on `sidecar.grpcPort`.
 * It holds no logic of its own: every RPC is a translation to the building blocks and services
 * of RuntimeServices, shared with the Dapr HTTP front end.
 *
 * Every method of the proto has a handler: the implemented ones below, and an UNIMPLEMENTED
 * answer with a message for the others (File RPCs, InvokeBinding, and whatever a newer
 * runtime.proto adds). A handler that throws fails its own call only.
 */
import type { Logger } from 'pino';
import type { RuntimeServices } from '../../runtime/services.js';
import { configurationHandlers } from './configuration.js';
import { startGrpcH2Server, type CallContext, type MethodCodec, type MethodImpl } from './h2-server.js';
import { invokeHandlers } from './invoke.js';
import { lockHandlers } from './lock.js';
import { RUNTIME_SERVICE, runtimeServiceDefinition } from './proto.js';
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

type UnaryFn = (req: any, ctx: CallContext) => Promise<unknown>;

/** Why an RPC is not served, per method; anything else missing says the generic sentence. */
const NOT_YET: Record<string, string> = {
  GetFile: 'the file API arrives with a later issue',
  PutFile: 'the file API arrives with a later issue',
  ListFile: 'the file API arrives with a later issue',
  DelFile: 'the file API arrives with a later issue',
  GetFileMeta: 'the file API arrives with a later issue',
  InvokeBinding: 'the bindings API arrives with a later issue',
};

function sayHello() {
  return {
    // Layotto's `helloworld` component: "greetings", plus ", <name>" when a name is given.
    async SayHello(req: { name: string; data: unknown }) {
      return { hello: req.name ? `greetings, ${req.name}` : 'greetings', data: req.data ?? null };
    },
  };
}

/** The method map for `spec.proto.runtime.v1.Runtime`: every method of the proto present. */
export function runtimeMethods(services: RuntimeServices, logger: Logger, shutdown: AbortSignal, codecs: Readonly<Record<string, MethodCodec>>): Record<string, MethodImpl> {
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

  const methods: Record<string, MethodImpl> = { SubscribeConfiguration: { kind: 'bidi', fn: SubscribeConfiguration } };
  for (const [method, def] of Object.entries(codecs)) {
    if (methods[method]) continue;
    const fn = Object.hasOwn(unaries, method) ? unaries[method] : undefined;
    methods[method] =
      fn && !def.requestStream && !def.responseStream
        ? { kind: 'unary', fn }
        : { kind: 'unimplemented', message: `${method} is not implemented by capa-runtime yet: ${NOT_YET[method] ?? 'this runtime does not serve it'}` };
  }
  return methods;
}

/** Serves the Layotto runtime API on host:port; resolves once bound. */
export async function startRuntimeGrpcServer(opts: RuntimeGrpcServerOptions): Promise<RuntimeGrpcServer> {
  const logger = opts.services.logger.child({ component: 'runtime-grpc' });
  const shutdown = new AbortController();
  const codecs = runtimeServiceDefinition() as unknown as Record<string, MethodCodec>;
  const server = await startGrpcH2Server({
    host: opts.host,
    port: opts.port,
    service: RUNTIME_SERVICE,
    codecs,
    methods: runtimeMethods(opts.services, logger, shutdown.signal, codecs),
    logger,
  });
  logger.info({ address: `${opts.host}:${server.port}` }, 'Layotto runtime gRPC API listening');

  let closing: Promise<void> | undefined;
  return {
    port: server.port,
    close: () =>
      (closing ??= (async () => {
        // Ends the configuration watch streams first: they would hold the connections open.
        shutdown.abort();
        await server.close();
      })()),
  };
}
