/**
 * A Redis state store whose server is unreachable at start, comes up, then goes away again:
 * the sidecar starts anyway, reports the store in /v1.0/metadata, answers 500 with the reason
 * while Redis is away (nothing acknowledged that was not stored), and recovers by itself.
 * The "server" is a TCP relay to the real Redis that the test opens and closes.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { startSidecar, type Running } from '../../helpers/sidecar.js';
import { REDIS_HOST, deleteRedisPrefix } from '../../conformance/state/matrix.js';

class Relay {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  constructor(readonly port: number) {}

  static async freePort(): Promise<number> {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  }

  async open(): Promise<void> {
    const [host, port] = REDIS_HOST.split(':');
    this.server = net.createServer((c) => {
      const up = net.connect(Number(port), host);
      for (const s of [c, up]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      c.pipe(up).pipe(c);
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', r));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.server = null;
  }
}

describe('state.redis outage', () => {
  const prefix = `capa-test-outage-${randomUUID().slice(0, 8)}:`;
  let sc: Running | undefined;
  let relay: Relay | undefined;

  afterAll(async () => {
    await sc?.stop();
    await relay?.close();
    await deleteRedisPrefix(prefix);
  });

  it('starts without Redis, recovers when it appears, fails cleanly while it is gone', async () => {
    relay = new Relay(await Relay.freePort());
    sc = await startSidecar(`
components:
  - name: statestore
    type: state.redis
    metadata: { redisHost: "127.0.0.1:${relay.port}", keyPrefix: "${prefix}", connectTimeoutMs: 200, timeoutMs: 1000 }
`);
    const base = `http://127.0.0.1:${sc.sidecar.runtimeHttpPort}`;
    const save = (value: unknown) => fetch(`${base}/v1.0/state/statestore`, { method: 'POST', body: JSON.stringify([{ key: 'k', value }]) });
    const metaError = async () => ((await (await fetch(`${base}/v1.0/metadata`)).json()) as any).components[0].error as string | undefined;

    // Down at start: the sidecar runs, the store is reported, calls fail with the reason.
    expect(await metaError()).toMatch(new RegExp(`127\\.0\\.0\\.1:${relay.port}`));
    const down = await save(1);
    expect(down.status).toBe(500);
    expect(((await down.json()) as any).errorCode).toBe('ERR_STATE_SAVE');

    // Redis appears: ioredis reconnects, the error clears, writes succeed.
    expect((await fetch(`${base}/v1.0/healthz`)).status).toBe(500);
    await relay.open();
    await expect.poll(metaError, { timeout: 8000, interval: 100 }).toBeUndefined();
    expect((await fetch(`${base}/v1.0/healthz`)).status).toBe(204);
    expect((await save(2)).status).toBe(204);

    // Gone again: 500, and the failed write was not stored.
    await relay.close();
    await expect.poll(async () => (await save(3)).status, { timeout: 5000, interval: 100 }).toBe(500);
    expect((await fetch(`${base}/v1.0/state/statestore/k`)).status).toBe(500);
    await relay.open();
    await expect.poll(metaError, { timeout: 8000, interval: 100 }).toBeUndefined();
    const got = await fetch(`${base}/v1.0/state/statestore/k`);
    expect(got.status).toBe(200);
    expect(await got.json()).toBe(2);
  });
});
