/**
 * Dapr's invocation API over real HTTP: the front end's part (path parsing, relaying the verb,
 * query, headers and body to the Invoker and the callee's answer back, Dapr's error codes). The
 * Invoker here echoes what it got; the real one (src/runtime/invoker.ts) has its own tests.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ComponentError } from '../../../src/components/errors.js';
import type { InvokeRequest } from '../../../src/runtime/invocation.js';
import { readJson, startRuntime, type RuntimeUnderTest } from '../../helpers/runtime.js';

describe('runtime HTTP API: invoke', () => {
  let rt: RuntimeUnderTest;
  let plain: RuntimeUnderTest;
  const seen: InvokeRequest[] = [];

  beforeAll(async () => {
    rt = await startRuntime('- name: s\n  type: state.memory\n', {
      invoker: {
        async invoke(req) {
          seen.push(req);
          if (req.appId === 'ghost') throw new ComponentError('not-found', 'no route to app id ghost');
          if (req.appId === 'down') throw new ComponentError('backend', 'connect ECONNREFUSED 127.0.0.1:9');
          return {
            status: 201,
            headers: { 'x-callee': 'yes', connection: 'close', 'transfer-encoding': 'chunked', 'content-type': 'text/plain' },
            body: Buffer.from(`${req.verb} ${req.method}?${req.query} ${req.body.toString()}`),
          };
        },
      },
    });
    plain = await startRuntime('- name: s\n  type: state.memory\n');
  });
  afterAll(async () => {
    await rt?.close();
    await plain?.close();
  });

  it('relays verb, method path, query, headers and body; returns status, headers (no hop-by-hop) and body', async () => {
    const r = await fetch(`${rt.base}/v1.0/invoke/orders/method/api/v1/items?x=1&y=2`, { method: 'PUT', body: 'payload', headers: { 'content-type': 'text/plain', 'x-caller': 'me', connection: 'keep-alive' } });
    expect(r.status).toBe(201);
    expect(r.headers.get('x-callee')).toBe('yes');
    expect(r.headers.get('transfer-encoding')).toBeNull();
    expect(await r.text()).toBe('PUT api/v1/items?x=1&y=2 payload');
    const req = seen.at(-1)!;
    expect(req).toMatchObject({ appId: 'orders', method: 'api/v1/items', verb: 'PUT', query: 'x=1&y=2', contentType: 'text/plain' });
    expect(req.headers['x-caller']).toBe('me');
    expect(req.headers.connection).toBeUndefined();
    expect(req.headers.host).toBeUndefined();
  });

  it('every verb goes through (GET, DELETE, PATCH)', async () => {
    for (const method of ['GET', 'DELETE', 'PATCH']) {
      const r = await fetch(`${rt.base}/v1.0/invoke/orders/method/m`, { method });
      expect(r.status).toBe(201);
      expect(seen.at(-1)!.verb).toBe(method);
    }
  });

  it('failures → ERR_DIRECT_INVOKE with the reason, status by kind; no method → 404', async () => {
    const ghost = await fetch(`${rt.base}/v1.0/invoke/ghost/method/x`);
    expect(ghost.status).toBe(404);
    expect(await readJson(ghost)).toEqual({ errorCode: 'ERR_DIRECT_INVOKE', message: 'fail to invoke, id: ghost, err: no route to app id ghost' });
    const down = await fetch(`${rt.base}/v1.0/invoke/down/method/x`, { method: 'POST', body: '{}' });
    expect(down.status).toBe(500);
    expect((await readJson(down)).message).toMatch(/ECONNREFUSED/);
    const noMethod = await fetch(`${rt.base}/v1.0/invoke/orders/method/`);
    expect(noMethod.status).toBe(404);
  });

  it('without a configured invoker → 501 ERR_DIRECT_INVOKE saying so', async () => {
    const r = await fetch(`${plain.base}/v1.0/invoke/orders/method/x`);
    expect(r.status).toBe(501);
    const body = await readJson(r);
    expect(body.errorCode).toBe('ERR_DIRECT_INVOKE');
    expect(body.message).toMatch(/service invocation is not configured/);
  });

  it('metadata: PUT /v1.0/metadata/{key} → 204, shown under extended', async () => {
    const put = await fetch(`${rt.base}/v1.0/metadata/team`, { method: 'PUT', body: 'payments' });
    expect(put.status).toBe(204);
    const m = await readJson(await fetch(`${rt.base}/v1.0/metadata`));
    expect(m.extended.team).toBe('payments');
    expect(m.subscriptions).toEqual([]);
  });
});
