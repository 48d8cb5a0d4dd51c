import { it } from 'vitest';
import http from 'node:http';
import { startSidecar } from '../../helpers/sidecar.js';
import { startUpstream } from '../../helpers/upstream.js';
import { request } from '../../helpers/http.js';
import { runMany } from '../../helpers/traffic.js';
it('perf', async () => {
  const a = await startUpstream('a');
  const sc = await startSidecar(`
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
              route: { cluster: a }
clusters:
  - name: a
    endpoints: ["127.0.0.1:${a.port}"]
`);
  for (const [label, port] of [['direct', a.port], ['proxy', sc.port('main')]] as const) {
    for (const conc of [1, 16]) {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
      const t0 = Date.now();
      await runMany(1000, conc, () => request(port, { path: '/w', agent }));
      console.log(label, conc, Date.now() - t0);
      agent.destroy();
    }
  }
  await sc.stop(); await a.close();
});
