#!/usr/bin/env node
// The grpc suite's lean upstream: a gRPC unary echo (h2c). Every request's body (its
// length-prefixed gRPC message) comes back as the response body, with
// `content-type: application/grpc` and `grpc-status: 0` in the trailers — a valid reply for any
// unary method whose request and response types match (capa.bench.Echo/Unary). No channel, no
// (de)serialisers. Two implementations (--impl):
//   h2   (default) capa-runtime's own HTTP/2 connection (dist/h2/server-connection.js): almost no
//        garbage per call, so its GC pauses stay well under a millisecond;
//   node raw node:http2: ~2 KB of per-stream objects are promoted per call, so it scavenges for
//        4–5 ms every ~100 ms and mark-compacts for ~20 ms every ~400 ms under the suite's load —
//        measured by matching h2load's per-call log against both processes' GC events, those
//        pauses were nearly every call slower than 3 ms through the proxy (bench/README.md).
// Prints "listening <port>" when bound.
//   node bench/lib/grpc-echo.mjs --port 50052 [--impl h2|node]
import http2 from 'node:http2';
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, impl: { type: 'string', default: 'h2' } } });
const port = Number(values.port);
const listening = (srv) => () => console.log(`listening ${srv.address().port}`);
let server;

if (values.impl === 'h2') {
  const { H2ServerConnection, encodeHeaders } = await import('../../dist/h2/server-connection.js');
  const HEAD = encodeHeaders([[':status', '200'], ['content-type', 'application/grpc']]);
  const OK = encodeHeaders([['grpc-status', '0']]);
  const REFUSED = encodeHeaders([[':status', '200'], ['content-type', 'application/grpc'], ['grpc-status', '12'], ['grpc-message', 'only POST application/grpc']]);
  const EMPTY = Buffer.alloc(0);
  const onStream = (s) => {
    const ct = s.header('content-type');
    if (s.header(':method') !== 'POST' || ct === undefined || !ct.startsWith('application/grpc')) {
      s.respond(REFUSED, true);
      return;
    }
    let body = null;
    let chunks = null;
    s.onData = (c) => (body === null ? (body = c) : (chunks ??= [body]).push(c));
    s.onEnd = () => {
      s.respond(HEAD);
      s.write(chunks !== null ? Buffer.concat(chunks) : (body ?? EMPTY));
      s.end(OK);
    };
  };
  server = net.createServer((socket) => new H2ServerConnection(socket, { onStream, onError: () => {} }));
  server.listen(port, '127.0.0.1', listening(server));
} else if (values.impl === 'node') {
  // node:http2 copies these objects into nghttp2 header lists; they are never mutated, so shared.
  const RESPONSE_HEADERS = { ':status': 200, 'content-type': 'application/grpc' };
  const OK_TRAILERS = { 'grpc-status': '0' };
  const UNIMPLEMENTED = { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': 'only%20POST%20application%2Fgrpc' };
  function sendOkTrailers() {
    this.sendTrailers(OK_TRAILERS);
  }
  server = http2.createServer({ settings: { maxConcurrentStreams: 1024 } });
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
  server.listen(port, '127.0.0.1', listening(server));
} else {
  console.error(`grpc-echo: --impl must be h2 or node, not ${values.impl}`);
  process.exit(2);
}
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => (server.close(), process.exit(0)));
