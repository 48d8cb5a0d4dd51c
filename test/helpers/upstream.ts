/** A real upstream HTTP server on 127.0.0.1:0 that records what it received. */
import http from 'node:http';
import type net from 'node:net';

export interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  remotePort: number;
  remoteAddress: string;
}

export interface Upstream {
  port: number;
  name: string;
  seen: Seen[];
  connections: number;
  server: http.Server;
  close(): Promise<void>;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string, u: Upstream) => void;

/** Default handler: 200 with a JSON echo of what arrived. */
export const echo: Handler = (req, res, body, u) => {
  res.setHeader('content-type', 'application/json');
  res.setHeader('x-upstream', u.name);
  res.end(JSON.stringify({ upstream: u.name, method: req.method, url: req.url, headers: req.headers, body }));
};

export async function startUpstream(name = 'up', handler: Handler = echo): Promise<Upstream> {
  const sockets = new Set<net.Socket>();
  const server = http.createServer();
  const u: Upstream = {
    port: 0,
    name,
    seen: [],
    connections: 0,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  server.on('connection', (s: net.Socket) => {
    u.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      u.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, remotePort: req.socket.remotePort ?? 0, remoteAddress: req.socket.remoteAddress ?? '' });
      handler(req, res, body, u);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  u.port = (server.address() as net.AddressInfo).port;
  return u;
}
