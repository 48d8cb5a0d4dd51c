/* global process, Buffer */
/**
 * Runs inside a network namespace (`ip netns exec NS node servers.mjs '<json>'`), long-lived:
 *   {"role":"server","ips":[...],"httpPorts":[...],"echoPort":N,"grpcPort":N,"proto":"path"}
 *     HTTP servers on every ip × httpPort, a raw TCP echo and a gRPC server (unary Echo,
 *     bidi Chat) on every ip;
 *   {"role":"app","port":N}
 *     the "app" beside the sidecar: HTTP on 0.0.0.0:port (so 127.0.0.1 and the pod IP).
 * Every HTTP server answers JSON naming itself, the port, the path and the peer
 * (req.socket.remoteAddress), and prints one JSON line per request on stdout
 * ({"event":"request",...}); once everything listens it prints {"event":"ready"}.
 * Stops on SIGTERM.
 */
import http from 'node:http';
import net from 'node:net';

const cfg = JSON.parse(process.argv[2]);
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const servers = [];

function listen(srv, port, host) {
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, host, () => {
      srv.removeListener('error', reject);
      servers.push(srv);
      resolve();
    });
  });
}

function httpServer(who, port) {
  return http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const seen = {
        event: 'request',
        who,
        port,
        method: req.method,
        path: req.url,
        host: req.headers.host ?? null,
        peer: req.socket.remoteAddress,
        local: req.socket.localAddress,
        xff: req.headers['x-forwarded-for'] ?? null,
        bytes: Buffer.concat(chunks).length,
      };
      emit(seen);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(seen));
    });
  });
}

if (cfg.role === 'app') {
  await listen(httpServer('app', cfg.port), cfg.port, '0.0.0.0');
} else {
  for (const ip of cfg.ips) {
    for (const port of cfg.httpPorts) await listen(httpServer('server', port), port, ip);
    const echo = net.createServer((s) => {
      let n = 0;
      const peer = s.remoteAddress;
      s.on('data', (d) => (n += d.length));
      s.on('error', () => {});
      s.on('close', () => emit({ event: 'tcp', port: cfg.echoPort, peer, bytes: n }));
      s.pipe(s);
    });
    await listen(echo, cfg.echoPort, ip);
  }
  const grpc = await import('@grpc/grpc-js');
  const loader = await import('@grpc/proto-loader');
  const def = loader.loadSync(cfg.proto, { keepCase: true, defaults: true });
  const pkg = grpc.loadPackageDefinition(def).capa.e2e;
  const server = new grpc.Server();
  server.addService(pkg.Echo.service, {
    Echo(call, cb) {
      emit({ event: 'grpc', method: 'Echo', peer: call.getPeer(), text: call.request.text });
      cb(null, { text: `echo:${call.request.text}`, seq: call.request.seq, peer: call.getPeer() });
    },
    Chat(call) {
      let n = 0;
      call.on('data', (m) => {
        n++;
        call.write({ text: `chat:${m.text}`, seq: m.seq, peer: call.getPeer() });
      });
      call.on('end', () => {
        emit({ event: 'grpc', method: 'Chat', peer: call.getPeer(), messages: n });
        call.end();
      });
      call.on('error', () => {});
    },
  });
  await new Promise((resolve, reject) =>
    server.bindAsync(`${cfg.ips[0]}:${cfg.grpcPort}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
  );
  process.on('SIGTERM', () => server.forceShutdown());
}

process.on('SIGTERM', () => {
  for (const s of servers) s.close();
  process.exit(0);
});
emit({ event: 'ready' });
