#!/usr/bin/env node
// gRPC upstream for the grpc suite: @grpc/grpc-js server, unary capa.bench.Echo/Unary answering
// with the request message. Prints "listening <port>" when bound.
//   node bench/lib/grpc-server.mjs --port 50051
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const PROTO = join(dirname(dirname(fileURLToPath(import.meta.url))), 'fixtures/echo.proto');
export const LOADER_OPTIONS = { keepCase: true, longs: Number, defaults: true };

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });
const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, LOADER_OPTIONS));
const server = new grpc.Server();
server.addService(pkg.capa.bench.Echo.service, {
  Unary: (call, callback) => callback(null, call.request),
});
server.bindAsync(`127.0.0.1:${values.port}`, grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    console.error(`bind failed: ${err.message}`);
    process.exit(1);
  }
  console.log(`listening ${port}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.tryShutdown(() => process.exit(0)));
