import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSidecar, type Running } from '../../helpers/sidecar.js';
import { startUpstream, type Upstream } from '../../helpers/upstream.js';
import { freePort, request, waitFor } from '../../helpers/http.js';

function pcapBytes(dir: string): number {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.pcap'))
      .reduce((n, f) => n + statSync(join(dir, f)).size, 0);
  } catch {
    return 0;
  }
}

describe('tcp-copy in a running sidecar', () => {
  let up: Upstream;
  let sc: Running;
  let outbound: number;
  const dir = mkdtempSync(join(tmpdir(), 'capa-tcpcopy-'));
  beforeAll(async () => {
    up = await startUpstream('up');
    outbound = await freePort();
    sc = await startSidecar(`
  traffic:
    interception: { enabled: true, outboundPort: ${outbound}, inboundPort: ${await freePort()} }
tcpCopy:
  enabled: true
  sampleRate: 1
  maxPerSecond: 100
  directory: ${dir}
`);
  });
  afterAll(async () => {
    await sc.stop();
    await up.close();
  });

  it('writes intercepted HTTP connections to a pcap that tshark decodes', async () => {
    const r = await request(outbound, { path: '/copied?x=1', headers: { host: `127.0.0.1:${up.port}` } });
    expect(r.status).toBe(200);
    await waitFor(() => pcapBytes(dir) > 200, 5000);
    // Let the connection close so its FIN and the queue reach the file.
    await new Promise((res) => setTimeout(res, 300));
    const files = readdirSync(dir).filter((f) => f.endsWith('.pcap'));
    const out = files
      .map((f) => execFileSync('tshark', ['-r', join(dir, f), '-Y', 'http.request', '-T', 'fields', '-e', 'http.request.method', '-e', 'http.request.uri', '-e', 'tcp.dstport'], { encoding: 'utf8' }))
      .join('');
    expect(out).toContain(`GET\t/copied?x=1\t${outbound}`);
  });

  it('is switched off at run time by POST /tcpcopy?enabled=false', async () => {
    const off = await request(sc.sidecar.adminPort, { method: 'POST', path: '/tcpcopy?enabled=false' });
    expect(off.status).toBe(200);
    const before = pcapBytes(dir);
    await request(outbound, { path: '/not-copied', headers: { host: `127.0.0.1:${up.port}` } });
    await new Promise((res) => setTimeout(res, 300));
    expect(pcapBytes(dir)).toBe(before);
    const bad = await request(sc.sidecar.adminPort, { method: 'POST', path: '/tcpcopy?rate=7' });
    expect(bad.status).toBe(400);
    expect(bad.body).toContain('rate');
  });
});
