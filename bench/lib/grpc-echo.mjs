#!/usr/bin/env node
// The grpc suite's lean upstream: a gRPC unary echo on raw node:http2 (h2c). Every request's body
// (its length-prefixed gRPC message) comes back as the response body, with
// `content-type: application/grpc` and `grpc-status: 0` in the trailers — a valid reply for any
// unary method whose request and response types match (capa.bench.Echo/Unary). No channel, no
// (de)serialisers, no per-call objects beyond node:http2's own: far less CPU per call than
// @grpc/grpc-js, so the suite's verdict rows measure the proxy, not the server.
// Prints "listening <port>" when bound.
//   node bench/lib/grpc-echo.mjs --port 50052
import http2 from 'node:http2';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' } } });

// node:http2 copies these objects into nghttp2 header lists; they are never mutated, so shared.
const RESPONSE_HEADERS = { ':status': 200, 'content-type': 'application/grpc' };
const OK_TRAILERS = { 'grpc-status': '0' };
const UNIMPLEMENTED = { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': 'only%20POST%20application%2Fgrpc' };

function sendOkTrailers() {
  this.sendTrailers(OK_TRAILERS);
}

const server = http2.createServer({ settings: { maxConcurrentStreams: 1024 } });
server.on('stream', (stream, headers) => {
  stream.on('error', () => {});
  const ct = headers['content-type'];
  if (headers[':method'] !== 'POST' || typeof ct !== 'string' || !ct.startsWith('application/grpc')) {
    stream.respond(UNIMPLEMENTED, { endStream: true });
    return;
  }
  let body = null;
  let chunks = null;
  stream.on('data', (c) => (body === null ? (body = c) : (chunks ??= [body]).push(c)));
  stream.on('end', () => {
    if (stream.destroyed) return;
    stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
    stream.on('wantTrailers', sendOkTrailers);
    stream.end(chunks !== null ? Buffer.concat(chunks) : body);
  });
});
server.on('sessionError', () => {});
server.listen(Number(values.port), '127.0.0.1', () => console.log(`listening ${server.address().port}`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => (server.close(), process.exit(0)));
