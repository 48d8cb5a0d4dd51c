/**
 * The Layotto protos, loaded from the installed `layotto` package (its `proto/` folder is the
 * API the SDKs are generated from), and @grpc/grpc-js itself — both on first use, so a sidecar
 * without a gRPC port or a gRPC app never pays for them.
 *
 * Loader options: field names as in the .proto (`store_name`, what the generated SDK code puts
 * on the wire), enums as their names, int64 as decimal strings (ids beyond 2^53 stay exact),
 * bytes as Buffer, absent fields as their defaults.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as Grpc from '@grpc/grpc-js';
import type * as ProtoLoader from '@grpc/proto-loader';
import { lazy } from '../../lazy.js';

export const grpc = lazy<typeof Grpc>('@grpc/grpc-js');
const protoLoader = lazy<typeof ProtoLoader>('@grpc/proto-loader');

export const RUNTIME_SERVICE = 'spec.proto.runtime.v1.Runtime';
export const APP_CALLBACK_SERVICE = 'spec.proto.runtime.v1.AppCallback';

/** The directory holding `runtime/v1/*.proto` of the installed Layotto SDK. */
export function layottoProtoRoot(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('layotto/package.json')), 'proto');
}

let definition: ProtoLoader.PackageDefinition | undefined;

function load(): ProtoLoader.PackageDefinition {
  if (definition) return definition;
  const root = layottoProtoRoot();
  definition = protoLoader().loadSync([join(root, 'runtime/v1/runtime.proto'), join(root, 'runtime/v1/appcallback.proto')], {
    keepCase: true,
    longs: String,
    enums: String,
    bytes: Buffer,
    defaults: true,
    oneofs: true,
    includeDirs: [root],
  });
  return definition;
}

function service(name: string): Grpc.ServiceDefinition {
  const def = load()[name];
  // Message types carry a `format`; service definitions are plain maps of methods.
  if (!def || 'format' in def) throw new Error(`${name} is not a service in the Layotto protos`);
  return def as unknown as Grpc.ServiceDefinition;
}

/** `spec.proto.runtime.v1.Runtime`: the API the sidecar serves. */
export function runtimeServiceDefinition(): Grpc.ServiceDefinition {
  return service(RUNTIME_SERVICE);
}

/** `spec.proto.runtime.v1.AppCallback`: what a gRPC app serves for the sidecar. */
export function appCallbackServiceDefinition(): Grpc.ServiceDefinition {
  return service(APP_CALLBACK_SERVICE);
}
