import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { startSidecar, type Running } from '../../helpers/sidecar.js';
import { startUpstream, type Upstream } from '../../helpers/upstream.js';
import { freePort, request, waitFor } from '../../helpers/http.js';
import { admin, parseSamples } from '../../helpers/traffic.js';

function tcpEcho(): Promise<{ port: number; close(): void }> {
  return new Promise((resolve) => {
    const sockets = new Set<net.Socket>();
    const srv = net.createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.pipe(s);
    });
    srv.listen(0, '127.0.0.1', () =>
      resolve({
        port: (srv.address() as net.AddressInfo).port,
        close: () => {
          for (const s of sockets) s.destroy();
          srv.close();
        },
      }),
    );
  });
}

function tcpRoundTrip(port: number, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    let n = 0;
    const s = net.connect(port, '127.0.0.1', () => s.write(payload));
    s.on('data', (d: Buffer) => {
      got.push(d);
      n += d.length;
      if (n >= payload.length) s.end();
    });
    s.on('close', () => resolve(Buffer.concat(got)));
    s.on('error', reject);
  });
}

describe('capture listeners and TCP listeners', () => {
  let app: Upstream;
  let other: Upstream;
  let echo: { port: number; close(): void };
  let sc: Running;
  let outbound: number;
  let inbound: number;
  beforeAll(async () => {
    app = await startUpstream('app');
    other = await startUpstream('other');
    echo = await tcpEcho();
    outbound = await freePort();
    inbound = await freePort();
    sc = await startSidecar(`
  traffic:
    interception: { enabled: true, outboundPort: ${outbound}, inboundPort: ${inbound} }
app: { id: orders, port: ${app.port}, address: 127.0.0.1 }
listeners:
  - name: db
    address: 127.0.0.1
    port: 0
    protocol: tcp
    tcpCluster: echo
    trafficDirection: OUTBOUND
clusters:
  - name: echo
    endpoints: ["127.0.0.1:${echo.port}"]
`);
  });
  afterAll(async () => {
    await sc.stop();
    await app.close();
    await other.close();
    echo.close();
  });

  it('outbound capture sends HTTP to the original destination (Host fallback without SO_ORIGINAL_DST)', async () => {
    const r = await request(outbound, { path: '/x', headers: { host: `127.0.0.1:${other.port}` } });
    expect(r.status).toBe(200);
    expect(r.headers['x-upstream']).toBe('other');
    const stats = (await admin(sc.sidecar.adminPort, '/stats/prometheus')).body;
    // Passthrough clusters name no service: Istio falls back to the Host header's host.
    const s = parseSamples(stats, 'istio_requests_total').find((x) => x.labels.reporter === 'source' && x.labels.destination_service === '127.0.0.1');
    expect(s?.value).toBe(1);
  });

  it('inbound capture delivers to the application address with the original port, reporter=destination', async () => {
    const r = await request(inbound, { path: '/in', headers: { host: `10.1.2.3:${app.port}` } });
    expect(r.status).toBe(200);
    expect(r.headers['x-upstream']).toBe('app');
    // From Istio's inbound passthrough source, so the capture rules let it through to the app.
    expect(app.seen.at(-1)?.remoteAddress).toBe('127.0.0.6');
    const stats = (await admin(sc.sidecar.adminPort, '/stats/prometheus')).body;
    const s = parseSamples(stats, 'istio_requests_total').find((x) => x.labels.reporter === 'destination' && x.labels.destination_service === '10.1.2.3');
    expect(s?.value).toBe(1);
  });

  it('proxies opaque TCP byte for byte and counts it in the Istio TCP metrics', async () => {
    const payload = Buffer.alloc(300_000, 7);
    const back = await tcpRoundTrip(sc.port('db'), payload);
    expect(back.equals(payload)).toBe(true);
    let text = '';
    await waitFor(async () => {
      text = (await admin(sc.sidecar.adminPort, '/stats/prometheus')).body;
      return parseSamples(text, 'istio_tcp_connections_closed_total').some((x) => x.labels.destination_service === 'echo' && x.value >= 1);
    }, 3000);
    const sent = parseSamples(text, 'istio_tcp_sent_bytes_total').find((x) => x.labels.destination_service === 'echo');
    const received = parseSamples(text, 'istio_tcp_received_bytes_total').find((x) => x.labels.destination_service === 'echo');
    expect(sent?.value).toBe(payload.length);
    expect(received?.value).toBe(payload.length);
    const opened = parseSamples(text, 'istio_tcp_connections_opened_total').find((x) => x.labels.destination_service === 'echo');
    expect(opened?.value).toBe(1);
  });

  it('serves the Snapshot on /config_dump and the listeners it compiled', async () => {
    const dump = JSON.parse((await admin(sc.sidecar.adminPort, '/config_dump')).body);
    const text = JSON.stringify(dump);
    for (const name of ['virtualOutbound', 'virtualInbound', 'db', 'PassthroughCluster', 'InboundPassthroughCluster']) expect(text).toContain(name);
  });
});

describe('TLS on a sniffing listener', () => {
  it('passes a TLS ClientHello through to the TCP cluster untouched', async () => {
    const received: Buffer[] = [];
    const sink = net.createServer((s) => s.on('data', (d: Buffer) => received.push(d)));
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
    const sinkPort = (sink.address() as net.AddressInfo).port;
    const sc = await startSidecar(`
listeners:
  - name: auto
    address: 127.0.0.1
    port: 0
    protocol: auto
    tcpCluster: sink
    routes:
      virtualHosts: [{ name: all, domains: ["*"], routes: [{ match: { prefix: / }, route: { cluster: sink } }] }]
clusters:
  - name: sink
    endpoints: ["127.0.0.1:${sinkPort}"]
`);
    try {
      const { default: tls } = await import('node:tls');
      const c = tls.connect({ host: '127.0.0.1', port: sc.port('auto'), servername: 'shop.example', ALPNProtocols: ['h2'], rejectUnauthorized: false });
      c.on('error', () => {});
      await waitFor(() => {
        const b = Buffer.concat(received);
        return b.length >= 5 && b.length >= 5 + b.readUInt16BE(3);
      }, 3000);
      c.destroy();
      const { parseClientHello } = await import('../../../src/proxy/tls-client-hello.js');
      expect(parseClientHello(Buffer.concat(received))).toEqual({ sni: 'shop.example', alpn: ['h2'] });
    } finally {
      await sc.stop();
      sink.close();
    }
  });
});
