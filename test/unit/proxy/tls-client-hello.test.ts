import { describe, expect, it } from 'vitest';
import net from 'node:net';
import tls from 'node:tls';
import { looksLikeTls, parseClientHello } from '../../../src/proxy/tls-client-hello.js';

/** The first bytes a real Node TLS client sends (its ClientHello), captured by a plain TCP server. */
function captureClientHello(opts: tls.ConnectionOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer((s) => {
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => {
        chunks.push(d);
        const b = Buffer.concat(chunks);
        if (b.length >= 5 && b.length >= 5 + b.readUInt16BE(3)) {
          s.destroy();
          srv.close();
          resolve(b);
        }
      });
    });
    srv.listen(0, '127.0.0.1', () => {
      const c = tls.connect({ host: '127.0.0.1', port: (srv.address() as net.AddressInfo).port, rejectUnauthorized: false, ...opts });
      c.on('error', () => {});
    });
    srv.on('error', reject);
  });
}

describe('TLS ClientHello sniffing', () => {
  it('reads SNI and ALPN from a real ClientHello', async () => {
    const hello = await captureClientHello({ servername: 'payments.default.svc.cluster.local', ALPNProtocols: ['h2', 'http/1.1'] });
    expect(looksLikeTls(hello)).toBe(true);
    expect(parseClientHello(hello)).toEqual({ sni: 'payments.default.svc.cluster.local', alpn: ['h2', 'http/1.1'] });
  });

  it('reports incomplete until the whole record arrived, at every split point', async () => {
    const hello = await captureClientHello({ servername: 'a.example' });
    for (let i = 0; i < hello.length; i += 17) expect(parseClientHello(hello.subarray(0, i))).toBe('incomplete');
    expect(parseClientHello(hello)).toMatchObject({ sni: 'a.example' });
  });

  it('says no for HTTP, HTTP/2 and garbage', () => {
    expect(looksLikeTls(Buffer.from('GET / HTTP/1.1\r\n'))).toBe(false);
    expect(parseClientHello(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'))).toBeNull();
    expect(parseClientHello(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0x02, 0, 0, 1, 0]))).toBeNull();
    expect(parseClientHello(Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff]))).toBeNull();
  });
});
