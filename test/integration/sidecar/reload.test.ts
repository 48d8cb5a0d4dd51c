import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync, renameSync } from 'node:fs';
import { startSidecar, SERVICE_PORTS_ZERO, type Running } from '../../helpers/sidecar.js';
import { startUpstream, type Upstream } from '../../helpers/upstream.js';
import { request, waitFor } from '../../helpers/http.js';

const config = (port: number, cluster: string, extra = ''): string => `
listeners:
  - name: main
    address: 127.0.0.1
    port: 0
    routes:
      virtualHosts:
        - name: all
          domains: ["*"]
          routes:
            - match: { prefix: / }
              route: { cluster: ${cluster} }
clusters:
  - name: ${cluster}
    endpoints: ["127.0.0.1:${port}"]
${extra}`;

async function upstreamName(port: number): Promise<string> {
  const r = await request(port);
  return String(r.headers['x-upstream'] ?? r.status);
}

describe('hot reload', () => {
  let a: Upstream;
  let b: Upstream;
  let sc: Running;
  beforeAll(async () => {
    a = await startUpstream('a');
    b = await startUpstream('b');
    sc = await startSidecar(config(a.port, 'ca'));
  });
  afterAll(async () => {
    await sc.stop();
    await a.close();
    await b.close();
  });

  it('applies a valid edit within 2 s on the same listener socket', async () => {
    const port = sc.port('main');
    expect(await upstreamName(port)).toBe('a');
    writeFileSync(sc.file, SERVICE_PORTS_ZERO + config(b.port, 'cb'));
    await waitFor(async () => (await upstreamName(port)) === 'b', 2000);
    expect(sc.port('main')).toBe(port);
  });

  it('keeps serving the old routes when an edit is invalid, and names the line', async () => {
    const port = sc.port('main');
    const before = sc.sidecar.snapshot.version;
    writeFileSync(sc.file, SERVICE_PORTS_ZERO + config(a.port, 'cx').replace('prefix: /', 'prefix: 7').replace('cluster: cx }', 'cluster: nowhere }'));
    await new Promise((r) => setTimeout(r, 500));
    expect(sc.sidecar.snapshot.version).toBe(before);
    for (let i = 0; i < 5; i++) expect(await upstreamName(port)).toBe('b');
    writeFileSync(sc.file, 'listeners: [ {name: x\n');
    await new Promise((r) => setTimeout(r, 400));
    expect(sc.sidecar.snapshot.version).toBe(before);
    expect(await upstreamName(port)).toBe('b');
  });

  it('sees an atomic rename-replace of the file (ConfigMap style)', async () => {
    const port = sc.port('main');
    const tmp = `${sc.file}.new`;
    writeFileSync(tmp, SERVICE_PORTS_ZERO + config(a.port, 'ca2'));
    renameSync(tmp, sc.file);
    await waitFor(async () => (await upstreamName(port)) === 'a', 2000);
  });
});
