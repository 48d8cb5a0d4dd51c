/**
 * Dapr's configuration, lock and secrets APIs over real HTTP, against components built from YAML:
 * configuration.file (+ updates POSTed to a real app) and configuration.redis, lock.memory and
 * lock.redis, secretstores.local.file and secretstores.local.env; Dapr's error codes.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_HOST, deleteRedisPrefix } from '../../conformance/state/matrix.js';
import { eventually, startRuntime, startTestApp, type RuntimeUnderTest } from '../../helpers/runtime.js';

const prefix = `capa-test-blocks-${randomUUID().slice(0, 8)}:`;
const envPrefix = `CAPA_TEST_SECRET_${randomUUID().slice(0, 6).toUpperCase()}_`;
const dir = mkdtempSync(join(tmpdir(), 'capa-blocks-'));
const configFile = join(dir, 'config.yaml');
const secretsFile = join(dir, 'secrets.json');

const COMPONENTS = `
- name: appconfig
  type: configuration.file
  metadata: { path: "${configFile}", pollIntervalMs: 100 }
- name: redisconfig
  type: configuration.redis
  metadata: { redisHost: "${REDIS_HOST}", keyPrefix: "${prefix}cfg:", subscribeMode: poll, pollIntervalMs: 100 }
- name: lockstore
  type: lock.memory
- name: redislock
  type: lock.redis
  metadata: { redisHost: "${REDIS_HOST}", keyPrefix: "${prefix}lock:" }
- name: downlock
  type: lock.redis
  metadata: { redisHost: "127.0.0.1:1", connectTimeoutMs: 200, timeoutMs: 300 }
- name: localsecrets
  type: secretstores.local.file
  metadata: { secretsFile: "${secretsFile}" }
- name: envsecrets
  type: secretstores.local.env
  metadata: { prefix: "${envPrefix}" }
`;

async function call(base: string, method: string, path: string, body?: unknown) {
  const res = await fetch(base + path, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

describe('runtime HTTP API: configuration, lock, secrets', () => {
  let rt: RuntimeUnderTest;
  let app: Awaited<ReturnType<typeof startTestApp>>;
  let redis: Redis;

  beforeAll(async () => {
    writeFileSync(configFile, 'greeting: hello\nretries: "3"\n');
    writeFileSync(secretsFile, JSON.stringify({ dbpass: 's3cret', nested: { token: 't0k' } }));
    process.env[`${envPrefix}API_KEY`] = 'from-env';
    const [host, port] = REDIS_HOST.split(':');
    redis = new Redis({ host, port: Number(port) });
    await redis.set(`${prefix}cfg:color`, 'blue||1');
    app = await startTestApp((r) => ({ status: r.path === '/dapr/subscribe' ? 404 : 200 }));
    rt = await startRuntime(COMPONENTS, { appPort: app.port });
  });
  afterAll(async () => {
    await rt?.close();
    await app?.close();
    delete process.env[`${envPrefix}API_KEY`];
    redis?.disconnect();
    await deleteRedisPrefix(prefix);
  });

  describe('configuration', () => {
    it('get by keys → {key: {value, version, metadata}}; no key → all; missing keys are absent; alpha path too', async () => {
      const r = await call(rt.base, 'GET', '/v1.0/configuration/appconfig?key=greeting&key=missing');
      expect(r.status).toBe(200);
      expect(Object.keys(r.json)).toEqual(['greeting']);
      expect(r.json.greeting).toMatchObject({ value: 'hello', metadata: {} });
      expect(r.json.greeting.version).toMatch(/.+/);
      const all = await call(rt.base, 'GET', '/v1.0-alpha1/configuration/appconfig');
      expect(Object.keys(all.json).sort()).toEqual(['greeting', 'retries']);
      const red = await call(rt.base, 'GET', '/v1.0/configuration/redisconfig?key=color');
      expect(red.json).toEqual({ color: { value: 'blue', version: '1', metadata: {} } });
    });

    it('subscribe → {id}; a change is POSTed to the app at /configuration/{store}/{key}; unsubscribe → {ok: true} and no more updates', async () => {
      const sub = await call(rt.base, 'GET', '/v1.0/configuration/appconfig/subscribe?key=greeting');
      expect(sub.status).toBe(200);
      expect(typeof sub.json.id).toBe('string');
      writeFileSync(configFile, 'greeting: bonjour\nretries: "3"\n');
      await eventually('update at the app', () => app.received.some((r) => r.path === '/configuration/appconfig/greeting'), 5000);
      const upd = app.received.find((r) => r.path === '/configuration/appconfig/greeting')!;
      expect(upd.method).toBe('POST');
      expect(upd.json).toMatchObject({ id: sub.json.id, items: { greeting: { value: 'bonjour' } } });
      const un = await call(rt.base, 'GET', `/v1.0/configuration/appconfig/${sub.json.id}/unsubscribe`);
      expect(un).toEqual({ status: 200, json: { ok: true } });
      const n = app.received.length;
      writeFileSync(configFile, 'greeting: hola\nretries: "3"\n');
      await new Promise((r) => setTimeout(r, 700));
      expect(app.received.length).toBe(n);
      const again = await call(rt.base, 'GET', `/v1.0/configuration/appconfig/${sub.json.id}/unsubscribe`);
      expect(again.status).toBe(500);
      expect(again.json.errorCode).toBe('ERR_CONFIGURATION_UNSUBSCRIBE');
    });

    it('a Redis write by someone else reaches the app', async () => {
      const sub = await call(rt.base, 'GET', '/v1.0-alpha1/configuration/redisconfig/subscribe?key=color');
      expect(sub.status).toBe(200);
      await redis.set(`${prefix}cfg:color`, 'red||2');
      await eventually('redis update at the app', () => app.received.some((r) => r.path === '/configuration/redisconfig/color' && r.json.items.color.value === 'red'), 5000);
    });

    it('unknown store → 400 ERR_CONFIGURATION_STORE_NOT_FOUND naming it', async () => {
      const r = await call(rt.base, 'GET', '/v1.0/configuration/nope?key=a');
      expect(r).toEqual({ status: 400, json: { errorCode: 'ERR_CONFIGURATION_STORE_NOT_FOUND', message: 'configuration store nope not found' } });
    });
  });

  describe('lock', () => {
    for (const store of ['lockstore', 'redislock']) {
      it(`${store}: lock → {success}; another owner fails; unlock statuses 0 / 1 / 2`, async () => {
        const res = `res-${randomUUID()}`;
        expect(await call(rt.base, 'POST', `/v1.0-alpha1/lock/${store}`, { resourceId: res, lockOwner: 'a', expiryInSeconds: 30 })).toEqual({ status: 200, json: { success: true } });
        expect((await call(rt.base, 'POST', `/v1.0-alpha1/lock/${store}`, { resourceId: res, lockOwner: 'b', expiryInSeconds: 30 })).json).toEqual({ success: false });
        expect((await call(rt.base, 'POST', `/v1.0-alpha1/unlock/${store}`, { resourceId: res, lockOwner: 'b' })).json).toEqual({ status: 2 });
        expect((await call(rt.base, 'POST', `/v1.0-alpha1/unlock/${store}`, { resourceId: res, lockOwner: 'a' })).json).toEqual({ status: 0 });
        expect((await call(rt.base, 'POST', `/v1.0-alpha1/unlock/${store}`, { resourceId: res, lockOwner: 'a' })).json).toEqual({ status: 1 });
        expect((await call(rt.base, 'POST', `/v1.0-alpha1/lock/${store}`, { resourceId: res, lockOwner: 'b', expiryInSeconds: 30 })).json).toEqual({ success: true });
      });
    }

    it('bad input → 400 naming the field; unknown store → 400 ERR_LOCK_STORE_NOT_FOUND; backend down → 500 ERR_TRY_LOCK', async () => {
      const noRes = await call(rt.base, 'POST', '/v1.0-alpha1/lock/lockstore', { lockOwner: 'a', expiryInSeconds: 1 });
      expect(noRes.status).toBe(400);
      expect(noRes.json).toMatchObject({ errorCode: 'ERR_MALFORMED_REQUEST', message: expect.stringContaining('resourceId') });
      const badExpiry = await call(rt.base, 'POST', '/v1.0-alpha1/lock/lockstore', { resourceId: 'r', lockOwner: 'a', expiryInSeconds: 0 });
      expect(badExpiry.status).toBe(400);
      expect(badExpiry.json.message).toContain('expiryInSeconds');
      const noOwner = await call(rt.base, 'POST', '/v1.0-alpha1/unlock/lockstore', { resourceId: 'r' });
      expect(noOwner.json.message).toContain('lockOwner');
      expect((await call(rt.base, 'POST', '/v1.0-alpha1/lock/lockstore', '{oops')).json.errorCode).toBe('ERR_MALFORMED_REQUEST');
      expect(await call(rt.base, 'POST', '/v1.0-alpha1/lock/nope', { resourceId: 'r', lockOwner: 'a', expiryInSeconds: 1 })).toEqual({ status: 400, json: { errorCode: 'ERR_LOCK_STORE_NOT_FOUND', message: 'lock store nope not found' } });
      const down = await call(rt.base, 'POST', '/v1.0-alpha1/lock/downlock', { resourceId: 'r', lockOwner: 'a', expiryInSeconds: 1 });
      expect(down.status).toBe(500);
      expect(down.json.errorCode).toBe('ERR_TRY_LOCK');
      expect(down.json.message).toMatch(/downlock: .+/);
    });
  });

  describe('secrets', () => {
    it('get → {name: value}; nested keys flattened; bulk → map of maps; env store', async () => {
      expect(await call(rt.base, 'GET', '/v1.0/secrets/localsecrets/dbpass')).toEqual({ status: 200, json: { dbpass: 's3cret' } });
      expect((await call(rt.base, 'GET', '/v1.0/secrets/localsecrets/nested:token')).json).toEqual({ 'nested:token': 't0k' });
      expect((await call(rt.base, 'GET', '/v1.0/secrets/localsecrets/bulk')).json).toEqual({ dbpass: { dbpass: 's3cret' }, 'nested:token': { 'nested:token': 't0k' } });
      expect((await call(rt.base, 'GET', '/v1.0/secrets/envsecrets/API_KEY')).json).toEqual({ API_KEY: 'from-env' });
    });

    it('missing secret → 500 ERR_SECRET_GET saying so; unknown store → 401 ERR_SECRET_STORE_NOT_FOUND (as Dapr)', async () => {
      const missing = await call(rt.base, 'GET', '/v1.0/secrets/localsecrets/nope');
      expect(missing.status).toBe(500);
      expect(missing.json.errorCode).toBe('ERR_SECRET_GET');
      expect(missing.json.message).toMatch(/failed getting secret with key nope from secret store localsecrets: .*not found/);
      expect(await call(rt.base, 'GET', '/v1.0/secrets/vault/x')).toEqual({ status: 401, json: { errorCode: 'ERR_SECRET_STORE_NOT_FOUND', message: 'failed finding secret store with key vault' } });
    });
  });

  it('blocks with no component configured answer Dapr\'s NOT_CONFIGURED codes', async () => {
    const none = await startRuntime('- name: s\n  type: state.memory\n');
    try {
      expect((await call(none.base, 'GET', '/v1.0/configuration/x?key=a')).json.errorCode).toBe('ERR_CONFIGURATION_STORE_NOT_CONFIGURED');
      expect((await call(none.base, 'POST', '/v1.0-alpha1/lock/x', { resourceId: 'r', lockOwner: 'a', expiryInSeconds: 1 })).json.errorCode).toBe('ERR_LOCK_STORE_NOT_CONFIGURED');
      expect((await call(none.base, 'GET', '/v1.0/secrets/x/y')).json.errorCode).toBe('ERR_SECRET_STORES_NOT_CONFIGURED');
      // No app channel: configuration updates have nowhere to go.
    } finally {
      await none.close();
    }
  });

  it('configuration subscribe without an app → 500 ERR_CONFIGURATION_SUBSCRIBE saying why', async () => {
    const noApp = await startRuntime(`- name: appconfig\n  type: configuration.file\n  metadata: { path: "${configFile}" }\n`);
    try {
      const r = await call(noApp.base, 'GET', '/v1.0/configuration/appconfig/subscribe?key=greeting');
      expect(r.status).toBe(500);
      expect(r.json.message).toMatch(/no app channel/);
    } finally {
      await noApp.close();
    }
  });
});
