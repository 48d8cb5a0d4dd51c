#!/usr/bin/env node
// Baseline peer: the smallest reasonable reverse proxy built on the `http-proxy` package,
// with a keep-alive agent towards the upstream.
//   LISTEN_PORT=8080 UPSTREAM_HOST=127.0.0.1 UPSTREAM_PORT=8081 node bench/peers/http-proxy.mjs
import http from 'node:http';
import httpProxy from 'http-proxy';

const listenPort = Number(process.env.LISTEN_PORT ?? 8080);
const upstreamHost = process.env.UPSTREAM_HOST ?? '127.0.0.1';
const upstreamPort = Number(process.env.UPSTREAM_PORT ?? 8081);

const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
const proxy = httpProxy.createProxyServer({ target: `http://${upstreamHost}:${upstreamPort}`, agent });

proxy.on('error', (err, _req, res) => {
  if (res && typeof res.writeHead === 'function' && !res.headersSent) {
    res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`bad gateway: ${err.message}\n`);
  } else if (res && typeof res.destroy === 'function') {
    res.destroy();
  }
});

const server = http.createServer((req, res) => proxy.web(req, res));
server.keepAliveTimeout = 65_000;
server.listen(listenPort, '127.0.0.1', () => {
  console.log(`http-proxy peer listening on 127.0.0.1:${listenPort} -> ${upstreamHost}:${upstreamPort}`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    server.close();
    agent.destroy();
    process.exit(0);
  });
}
