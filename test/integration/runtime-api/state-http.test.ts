/**
 * Dapr's state HTTP API on a real sidecar: in-memory and real-Redis stores, status codes, ETag
 * headers, Dapr error codes, a store whose backend is down, config errors, and a restart of a
 * Redis-backed sidecar that keeps the data.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSidecar, type Running } from '../../helpers/sidecar.js';
import { REDIS_HOST, deleteRedisPrefix } from '../../conformance/state/matrix.js';

const prefix = `capa-test-http-${randomUUID().slice(0, 8)}:`;

const YAML = `
app:
  id: orders
components:
  - name: statestore
    type: state.memory
  - name: redisstore
    type: state.redis
    metadata:
      redisHost: "${REDIS_HOST}"
      keyPrefix: "${prefix}"
  - name: downstore
    type: state.redis
    metadata:
      redisHost: 127.0.0.1:1
      connectTimeoutMs: 300
`;

async function call(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, etag: res.headers.get('etag'), text, json };
}

describe('runtime HTTP API: state', () => {
  let sc: Running;
  let base: string;

  beforeAll(async () => {
    sc = await startSidecar(YAML);
    base = `http://127.0.0.1:${sc.sidecar.runtimeHttpPort}`;
  });
  afterAll(async () => {
    await sc?.stop();
    await deleteRedisPrefix(prefix);
  });

  it('healthz/outbound answers 204; healthz is 500 ERR_HEALTH_NOT_READY naming the failing component', async () => {
    expect((await call(base, 'GET', '/v1.0/healthz/outbound')).status).toBe(204);
    const h = await call(base, 'GET', '/v1.0/healthz');
    expect(h.status).toBe(500);
    expect(h.json.errorCode).toBe('ERR_HEALTH_NOT_READY');
    expect(h.json.message).toMatch(/component downstore: .*127\.0\.0\.1:1/);
    expect(h.json.message).not.toMatch(/statestore|redisstore/);
  });

  it('metadata lists the components with type, version, capabilities and the failing one with its error', async () => {
    const r = await call(base, 'GET', '/v1.0/metadata');
    expect(r.status).toBe(200);
    expect(r.json.id).toBe('orders');
    const byName = Object.fromEntries(r.json.components.map((c: any) => [c.name, c]));
    expect(byName.statestore).toEqual({ name: 'statestore', type: 'state.memory', version: 'v1', capabilities: ['ETAG', 'TRANSACTIONAL', 'TTL'] });
    expect(byName.redisstore.error).toBeUndefined();
    expect(byName.downstore.type).toBe('state.redis');
    expect(byName.downstore.error).toMatch(/127\.0\.0\.1:1/);
  });

  for (const store of ['statestore', 'redisstore']) {
    describe(store, () => {
      it('save → 204, get → 200 with the JSON value and an ETag, missing key → 204', async () => {
        const save = await call(base, 'POST', `/v1.0/state/${store}`, [
          { key: 'order-1', value: { id: 1, items: ['a'] } },
          { key: 'greeting', value: 'hello' },
        ]);
        expect(save.status).toBe(204);
        const got = await call(base, 'GET', `/v1.0/state/${store}/order-1`);
        expect(got.status).toBe(200);
        expect(got.json).toEqual({ id: 1, items: ['a'] });
        expect(got.etag).toMatch(/^\d+$/);
        expect((await call(base, 'GET', `/v1.0/state/${store}/greeting`)).json).toBe('hello');
        const missing = await call(base, 'GET', `/v1.0/state/${store}/nope`);
        expect(missing.status).toBe(204);
        expect(missing.etag).toBeNull();
      });

      it('etag: stale etag → 409 ERR_STATE_SAVE, malformed etag → 400, current etag → 204', async () => {
        await call(base, 'POST', `/v1.0/state/${store}`, [{ key: 'e', value: 1 }]);
        const { etag } = await call(base, 'GET', `/v1.0/state/${store}/e`);
        expect((await call(base, 'POST', `/v1.0/state/${store}`, [{ key: 'e', value: 2, etag, options: { concurrency: 'first-write' } }])).status).toBe(204);
        const stale = await call(base, 'POST', `/v1.0/state/${store}`, [{ key: 'e', value: 3, etag, options: { concurrency: 'first-write' } }]);
        expect(stale.status).toBe(409);
        expect(stale.json.errorCode).toBe('ERR_STATE_SAVE');
        expect(stale.json.message).toContain(`failed saving state in state store ${store}`);
        const bad = await call(base, 'POST', `/v1.0/state/${store}`, [{ key: 'e', value: 3, etag: 'xyz' }]);
        expect(bad.status).toBe(400);
        expect(bad.json.errorCode).toBe('ERR_STATE_SAVE');
        expect((await call(base, 'GET', `/v1.0/state/${store}/e`)).json).toBe(2);
      });

      it('delete with If-Match: stale → 409 ERR_STATE_DELETE, current → 204', async () => {
        await call(base, 'POST', `/v1.0/state/${store}`, [{ key: 'd', value: 1 }]);
        const first = (await call(base, 'GET', `/v1.0/state/${store}/d`)).etag!;
        await call(base, 'POST', `/v1.0/state/${store}`, [{ key: 'd', value: 2 }]);
        const stale = await call(base, 'DELETE', `/v1.0/state/${store}/d`, undefined, { 'if-match': first });
        expect(stale.status).toBe(409);
        expect(stale.json.errorCode).toBe('ERR_STATE_DELETE');
        const current = (await call(base, 'GET', `/v1.0/state/${store}/d`)).etag!;
        expect((await call(base, 'DELETE', `/v1.0/state/${store}/d`, undefined, { 'if-match': `"${current}"` })).status).toBe(204);
        expect((await call(base, 'GET', `/v1.0/state/${store}/d`)).status).toBe(204);
      });

      it('50 parallel first-write saves with the same etag: exactly one 204, the rest 409', async () => {
        await call(base, 'POST', `/v1.0/state/${store}`, [{ key: 'race', value: 0 }]);
        const { etag } = await call(base, 'GET', `/v1.0/state/${store}/race`);
        const rs = await Promise.all(
          Array.from({ length: 50 }, (_, i) => call(base, 'POST', `/v1.0/state/${store}`, [{ key: 'race', value: i, etag, options: { concurrency: 'first-write' } }])),
        );
        expect(rs.filter((r) => r.status === 204)).toHaveLength(1);
        expect(rs.filter((r) => r.status === 409)).toHaveLength(49);
      });

      it('ttlInSeconds metadata expires the key', async () => {
        expect((await call(base, 'POST', `/v1.0/state/${store}`, [{ key: 'ttl', value: 'x', metadata: { ttlInSeconds: '1' } }])).status).toBe(204);
        expect((await call(base, 'GET', `/v1.0/state/${store}/ttl`)).status).toBe(200);
        await new Promise((r) => setTimeout(r, 1300));
        expect((await call(base, 'GET', `/v1.0/state/${store}/ttl`)).status).toBe(204);
      });

      it('bulk get returns [{key, data, etag}] in order, missing keys without data', async () => {
        await call(base, 'POST', `/v1.0/state/${store}`, [
          { key: 'b1', value: { n: 1 } },
          { key: 'b2', value: 'two' },
        ]);
        const r = await call(base, 'POST', `/v1.0/state/${store}/bulk`, { keys: ['b1', 'bx', 'b2'], parallelism: 10 });
        expect(r.status).toBe(200);
        expect(r.json.map((x: any) => ({ key: x.key, data: x.data }))).toEqual([
          { key: 'b1', data: { n: 1 } },
          { key: 'bx', data: undefined },
          { key: 'b2', data: 'two' },
        ]);
        expect(r.json[0].etag).toMatch(/^\d+$/);
      });

      it('transaction: applies all; a stale etag → 409 ERR_STATE_TRANSACTION and nothing applied', async () => {
        await call(base, 'POST', `/v1.0/state/${store}`, [{ key: 'tx-old', value: 'old' }]);
        const ok = await call(base, 'POST', `/v1.0/state/${store}/transaction`, {
          operations: [
            { operation: 'upsert', request: { key: 'tx-a', value: 'A' } },
            { operation: 'delete', request: { key: 'tx-old' } },
          ],
        });
        expect(ok.status).toBe(204);
        expect((await call(base, 'GET', `/v1.0/state/${store}/tx-a`)).json).toBe('A');
        expect((await call(base, 'GET', `/v1.0/state/${store}/tx-old`)).status).toBe(204);
        const fail = await call(base, 'POST', `/v1.0/state/${store}/transaction`, {
          operations: [
            { operation: 'upsert', request: { key: 'tx-b', value: 'B' } },
            { operation: 'upsert', request: { key: 'tx-a', value: 'A2', etag: '999999' } },
          ],
        });
        expect(fail.status).toBe(409);
        expect(fail.json.errorCode).toBe('ERR_STATE_TRANSACTION');
        expect((await call(base, 'GET', `/v1.0/state/${store}/tx-b`)).status).toBe(204);
        expect((await call(base, 'GET', `/v1.0/state/${store}/tx-a`)).json).toBe('A');
        const badOp = await call(base, 'POST', `/v1.0/state/${store}/transaction`, { operations: [{ operation: 'merge', request: { key: 'x' } }] });
        expect(badOp.status).toBe(400);
        expect(badOp.json.errorCode).toBe('ERR_NOT_SUPPORTED_STATE_OPERATION');
      });
    });
  }

  it('unknown store → 400 ERR_STATE_STORE_NOT_FOUND naming it', async () => {
    for (const [method, path, body] of [
      ['GET', '/v1.0/state/nostore/k', undefined],
      ['POST', '/v1.0/state/nostore', [{ key: 'k', value: 1 }]],
      ['POST', '/v1.0/state/nostore/bulk', { keys: ['k'] }],
    ] as const) {
      const r = await call(base, method, path, body);
      expect(r.status).toBe(400);
      expect(r.json).toEqual({ errorCode: 'ERR_STATE_STORE_NOT_FOUND', message: 'state store nostore is not found' });
    }
  });

  it('malformed JSON and bad shapes → 400 ERR_MALFORMED_REQUEST', async () => {
    for (const [path, body] of [
      ['/v1.0/state/statestore', '{not json'],
      ['/v1.0/state/statestore', '{"key":"k"}'],
      ['/v1.0/state/statestore', '[{"value":1}]'],
      ['/v1.0/state/statestore/bulk', '{"keys":"k"}'],
      ['/v1.0/state/statestore/transaction', '[]'],
    ] as const) {
      const r = await call(base, 'POST', path, body);
      expect(r.status, `${path} ${body}`).toBe(400);
      expect(r.json.errorCode).toBe('ERR_MALFORMED_REQUEST');
    }
  });

  it('a store whose backend is down → 500 with the reason; the sidecar keeps serving', async () => {
    const r = await call(base, 'POST', '/v1.0/state/downstore', [{ key: 'k', value: 1 }]);
    expect(r.status).toBe(500);
    expect(r.json.errorCode).toBe('ERR_STATE_SAVE');
    expect(r.json.message).toMatch(/Redis at 127\.0\.0\.1:1/);
    const g = await call(base, 'GET', '/v1.0/state/downstore/k');
    expect(g.status).toBe(500);
    expect(g.json.errorCode).toBe('ERR_STATE_GET');
    expect((await call(base, 'GET', '/v1.0/state/statestore/order-1')).status).toBe(200);
  });

  it('unknown paths → 404, wrong methods → 405', async () => {
    expect((await call(base, 'GET', '/v1.0/nothing')).status).toBe(404);
    expect((await call(base, 'PATCH', '/v1.0/state/statestore/k')).status).toBe(405);
  });
});

describe('runtime HTTP API: restart and config errors', () => {
  it('a Redis-backed sidecar keeps its data across a restart', async () => {
    const p = `capa-test-restart-${randomUUID().slice(0, 8)}:`;
    const yaml = `components:\n  - name: statestore\n    type: state.redis\n    metadata: { redisHost: "${REDIS_HOST}", keyPrefix: "${p}" }\n`;
    try {
      const first = await startSidecar(yaml);
      const items = Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: { i } }));
      const save = await fetch(`http://127.0.0.1:${first.sidecar.runtimeHttpPort}/v1.0/state/statestore`, { method: 'POST', body: JSON.stringify(items) });
      expect(save.status).toBe(204);
      await first.stop();
      const second = await startSidecar(yaml);
      try {
        const r = await call(`http://127.0.0.1:${second.sidecar.runtimeHttpPort}`, 'POST', '/v1.0/state/statestore/bulk', { keys: items.map((x) => x.key) });
        expect(r.json.map((x: any) => x.data)).toEqual(items.map((x) => x.value));
      } finally {
        await second.stop();
      }
    } finally {
      await deleteRedisPrefix(p);
    }
  });

  it('an unknown component type is a config error naming the key and the known types', async () => {
    await expect(startSidecar('components:\n  - name: s\n    type: state.mongo\n')).rejects.toThrow(/components\[0\]\.type: unknown component type 'state\.mongo' \(known: [^)]*\bstate\.memory, [^)]*\bstate\.redis\b[^)]*\)/);
  });

  it('duplicate component names and bad metadata are config errors', async () => {
    const yaml = 'components:\n  - name: s\n    type: state.memory\n  - name: s\n    type: state.redis\n    metadata: { redisHost: nohostport, bogus: 1 }\n';
    const err = await startSidecar(yaml).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/components\[1\]\.name: duplicate component name 's'/);
    expect(err?.message).toMatch(/components\[1\]\.metadata\.redisHost: expected host:port/);
    expect(err?.message).toMatch(/components\[1\]\.metadata\.bogus: unknown key 'bogus'/);
  });
});
