import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigurationStore } from '../../src/components/configuration/store.js';
import { CONFIGURATION_MATRIX } from './configuration/matrix.js';
import { configurationConformance } from './configuration/suite.js';
import { Changes } from './configuration/watch.js';
import { buildComponent, sleep } from './lock/build.js';
import { REDIS_HOST, deleteRedisPrefix } from './state/matrix.js';

for (const entry of CONFIGURATION_MATRIX) configurationConformance(entry);

describe('configuration.file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'capa-config-'));
  const logs: string[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => (logs.push(String(c)), cb()) }));
  const stores: ConfigurationStore[] = [];
  afterAll(async () => {
    for (const s of stores) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function open(name: string, content?: string): Promise<{ store: ConfigurationStore; file: string }> {
    const file = join(dir, name);
    if (content !== undefined) writeFileSync(file, content);
    const store = buildComponent<ConfigurationStore>(`name: cfg\ntype: configuration.file\nmetadata:\n  path: ${JSON.stringify(file)}\n`, logger);
    stores.push(store);
    await store.init();
    return { store, file };
  }

  it('reads the mapping form verbatim, with object items carrying group, label and tags', async () => {
    const { store } = await open('map.yaml', 'greeting: hello\nratio: 1.0\nflag: true\nempty:\nfeature: {value: "on", group: web, label: prod, tags: {owner: team-a}}\n');
    const all = await store.get({ keys: [] });
    expect(Object.fromEntries(all.map((i) => [i.key, i.value]))).toEqual({ greeting: 'hello', ratio: '1.0', flag: 'true', empty: '', feature: 'on' });
    expect(all.find((i) => i.key === 'feature')).toMatchObject({ group: 'web', label: 'prod', tags: { owner: 'team-a' } });
    expect((await store.get({ keys: [], group: 'web' })).map((i) => i.key)).toEqual(['feature']);
    expect(await store.get({ keys: ['feature'], label: 'dev' })).toEqual([]);
  });

  it('the list form: reads it, and save/delete keep the list form and the comments', async () => {
    const { store, file } = await open('list.yaml', '# team config\n- key: a\n  value: "1"\n  group: g1\n- {key: b, value: two}\n');
    expect((await store.get({ keys: ['a'] }))[0]).toMatchObject({ key: 'a', value: '1', group: 'g1' });
    await store.save([{ key: 'c', value: 'three', label: 'l' }, { key: 'a', value: 'uno', group: 'g1' }]);
    await store.delete({ keys: ['b'] });
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('# team config');
    expect(text).toMatch(/^- key: a/m);
    expect(await store.get({ keys: [] })).toMatchObject([
      { key: 'a', value: 'uno', group: 'g1' },
      { key: 'c', value: 'three', label: 'l' },
    ]);
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('a missing file is empty; the first save creates it', async () => {
    const { store, file } = await open('created.yaml');
    expect(await store.get({ keys: [] })).toEqual([]);
    await store.save([{ key: 'k', value: '30' }]);
    expect(readFileSync(file, 'utf8')).toMatch(/^k: "?30"?\n$/);
    expect((await store.get({ keys: ['k'] }))[0]?.value).toBe('30');
  });

  it('an edit made to the file directly reaches subscribers within 1 s, in place or by rename', async () => {
    const { store, file } = await open('edit.yaml', 'a: 1\nb: 2\n');
    const changes = new Changes();
    await store.subscribe({ keys: ['a', 'b'] }, changes.onChange);
    writeFileSync(file, 'a: 10\nb: 2\n');
    await changes.next((i) => i.key === 'a' && i.value === '10');
    expect(changes.keys()).not.toContain('b');
    // Editors write a new file and rename it over the old one.
    writeFileSync(`${file}.swp`, 'a: 10\n');
    renameSync(`${file}.swp`, file);
    await changes.next((i) => i.key === 'b' && i.deleted === true);
    expect((await store.get({ keys: [] })).map((i) => i.key)).toEqual(['a']);
  });

  it('an invalid edit keeps the last good items and logs the file and line; fixing it delivers again', async () => {
    const { store, file } = await open('bad.yaml', 'a: good\n');
    const changes = new Changes();
    await store.subscribe({ keys: [] }, changes.onChange);
    writeFileSync(file, 'a: changed\nb: [unclosed\n');
    const until = Date.now() + 1500;
    while (!logs.some((l) => l.includes('bad.yaml') && /line \d+/.test(l)) && Date.now() < until) await sleep(20);
    const line = logs.find((l) => l.includes('bad.yaml'));
    expect(line).toMatch(/"level":50.*invalid YAML.*line \d+/);
    expect((await store.get({ keys: ['a'] }))[0]?.value).toBe('good');
    expect(store.status?.()).toMatchObject({ ready: true, error: expect.stringContaining('bad.yaml') });
    await expect(store.save([{ key: 'x', value: '1' }])).rejects.toThrow(/bad\.yaml.*fix the file first/);
    expect(changes.items).toEqual([]);
    writeFileSync(file, 'a: fixed\n');
    await changes.next((i) => i.key === 'a' && i.value === 'fixed');
    expect(store.status?.()).toEqual({ ready: true });
  });

  it('a structural mistake names the file and the line; an invalid file at start fails init', async () => {
    const file = join(dir, 'dup.yaml');
    writeFileSync(file, '- key: a\n  value: 1\n- key: a\n  value: 2\n');
    const store = buildComponent<ConfigurationStore>(`name: cfg\ntype: configuration.file\nmetadata:\n  path: ${file}\n`);
    stores.push(store);
    await expect(store.init()).rejects.toThrow(/dup\.yaml line 3, column 3: key "a" appears twice/);
    writeFileSync(file, 'a:\n  value: 1\n  colour: red\n');
    await expect(store.init()).rejects.toThrow(/dup\.yaml line 3, column 3: unknown field 'colour'/);
    writeFileSync(file, 'a: 1\n');
    await store.init();
    expect((await store.get({ keys: ['a'] }))[0]?.value).toBe('1');
  });

  it('requires path, and init fails when its directory does not exist', async () => {
    expect(() => buildComponent('name: c\ntype: configuration.file\n')).toThrow(/path/);
    const s = buildComponent<ConfigurationStore>(`name: c\ntype: configuration.file\nmetadata:\n  path: ${join(dir, 'nope', 'c.yaml')}\n`);
    await expect(s.init()).rejects.toThrow(/directory .*nope does not exist/);
  });
});

describe('configuration.redis', () => {
  const prefix = `capa-test-config-${randomUUID().slice(0, 8)}:`;
  const [host, port] = REDIS_HOST.split(':');
  const raw = new Redis({ host, port: Number(port), lazyConnect: true });
  const stores: ConfigurationStore[] = [];
  beforeAll(() => raw.connect());
  afterAll(async () => {
    for (const s of stores) await s.close();
    await deleteRedisPrefix(prefix);
    raw.disconnect();
  });

  async function open(extra = ''): Promise<ConfigurationStore> {
    const s = buildComponent<ConfigurationStore>(`name: c\ntype: configuration.redis\nmetadata:\n  redisHost: "${REDIS_HOST}"\n  keyPrefix: "${prefix}"\n${extra}`);
    stores.push(s);
    await s.init();
    return s;
  }

  it("stores Dapr's value||version strings and reads hand-written ones", async () => {
    const store = await open();
    await store.save([{ key: 'k', value: 'v1' }]);
    await store.save([{ key: 'k', value: 'v2' }]);
    expect(await raw.get(`${prefix}k`)).toBe('v2||2');
    await raw.set(`${prefix}dapr`, 'from-dapr||7');
    await raw.set(`${prefix}plain`, 'no version');
    expect(await store.get({ keys: ['dapr', 'plain'] })).toEqual([
      { key: 'dapr', value: 'from-dapr', version: '7' },
      { key: 'plain', value: 'no version', version: '' },
    ]);
  });

  it('keyspace mode: notifications are enabled on the server; redis-cli writes and expiries reach subscribers', async () => {
    const store = await open();
    const [, flags] = (await raw.config('GET', 'notify-keyspace-events')) as string[];
    expect(flags).toContain('K');
    const changes = new Changes();
    await store.subscribe({ keys: ['ks'] }, changes.onChange);
    await raw.set(`${prefix}ks`, 'by-hand||3', 'PX', 300);
    expect(await changes.next((i) => i.key === 'ks')).toEqual({ key: 'ks', value: 'by-hand', version: '3' });
    await changes.next((i) => i.key === 'ks' && i.deleted === true, 1500);
  });

  it('poll mode delivers writes by others within 1 s without touching the server config', async () => {
    const store = await open('  subscribeMode: poll\n  pollIntervalMs: 200\n');
    const changes = new Changes();
    await store.subscribe({ keys: [] }, changes.onChange);
    await raw.set(`${prefix}polled`, 'p||1');
    expect(await changes.next((i) => i.key === 'polled')).toMatchObject({ value: 'p', version: '1' });
    await raw.del(`${prefix}polled`);
    await changes.next((i) => i.key === 'polled' && i.deleted === true);
  });

  it('backend down: init fails naming the server; nothing is acknowledged', async () => {
    const s = buildComponent<ConfigurationStore>('name: c\ntype: configuration.redis\nmetadata:\n  redisHost: 127.0.0.1:1\n  connectTimeoutMs: 300\n');
    try {
      await expect(s.init()).rejects.toThrow(/cannot connect to Redis at 127\.0\.0\.1:1/);
      await expect(s.save([{ key: 'a', value: 'b' }])).rejects.toMatchObject({ kind: 'backend' });
    } finally {
      await s.close();
    }
  });
});
