import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { SecretStore } from '../../src/components/secretstores/store.js';
import { buildComponent } from './lock/build.js';
import { SECRETS_MATRIX } from './secretstores/matrix.js';
import { secretsConformance } from './secretstores/suite.js';

for (const entry of SECRETS_MATRIX) secretsConformance(entry);

const dir = mkdtempSync(join(tmpdir(), 'capa-secrets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fileStore(name: string, content: string, extra = ''): SecretStore {
  const file = join(dir, name);
  writeFileSync(file, content);
  return buildComponent<SecretStore>(`name: s\ntype: secretstores.local.file\nmetadata:\n  secretsFile: ${JSON.stringify(file)}\n${extra}`);
}

describe('secretstores.local.file', () => {
  it('nestedSeparator joins nested names', async () => {
    const s = fileStore('sep.json', '{"db": {"main": {"pass": "x"}}}', '  nestedSeparator: "."\n');
    await s.init();
    expect(await s.bulkGet()).toEqual({ 'db.main.pass': { 'db.main.pass': 'x' } });
  });

  it('multiValued: a top-level key is one secret with its flattened children as keys', async () => {
    const s = fileStore('multi.json', '{"db": {"user": "u", "pass": "p", "opts": {"ssl": true}}, "token": "t"}', '  multiValued: "true"\n');
    await s.init();
    expect(await s.get({ key: 'db' })).toEqual({ user: 'u', pass: 'p', 'opts:ssl': 'true' });
    expect(await s.get({ key: 'token' })).toEqual({ token: 't' });
    await expect(s.get({ key: 'db:user' })).rejects.toMatchObject({ kind: 'not-found' });
  });

  it('accepts a YAML file', async () => {
    const s = fileStore('secrets.yaml', 'db:\n  user: u\napiKey: k\n');
    await s.init();
    expect(await s.bulkGet()).toEqual({ 'db:user': { 'db:user': 'u' }, apiKey: { apiKey: 'k' } });
  });

  it('a missing file fails init naming it', async () => {
    const s = buildComponent<SecretStore>(`name: s\ntype: secretstores.local.file\nmetadata:\n  secretsFile: ${join(dir, 'absent.json')}\n`);
    await expect(s.init()).rejects.toThrow(/absent\.json.*ENOENT/);
    expect(s.status?.().ready).toBe(false);
  });

  it('a broken file fails init with its line, never showing a secret value (errors or logs)', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'trace' }, new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }));
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{\n  "a": "hunter2-topsecret",\n  "b": [1, 2\n}\n');
    const s = buildComponent<SecretStore>(`name: s\ntype: secretstores.local.file\nmetadata:\n  secretsFile: ${file}\n`, logger);
    const e = (await s.init().catch((err: unknown) => err)) as Error;
    expect(e.message).toMatch(/broken\.json is neither valid JSON nor YAML: \w+ at line \d+, column \d+/);
    expect(e.message).not.toContain('hunter2');
    const ok = fileStore('ok.json', '{"a": "hunter2-topsecret"}');
    await ok.init();
    await ok.get({ key: 'a' });
    await ok.get({ key: 'zz' }).catch(() => undefined);
    expect(lines.join('')).not.toContain('hunter2');
  });

  it('requires secretsFile', () => {
    expect(() => buildComponent('name: s\ntype: secretstores.local.file\n')).toThrow(/secretsFile/);
  });
});

describe('secretstores.local.env', () => {
  it('without a prefix reads any variable by its full name', async () => {
    const name = `CAPA_TEST_ENV_${randomUUID().slice(0, 8).toUpperCase()}`;
    process.env[name] = 'v1';
    try {
      const s = buildComponent<SecretStore>('name: e\ntype: secretstores.local.env\n');
      await s.init();
      expect(await s.get({ key: name })).toEqual({ [name]: 'v1' });
      expect((await s.bulkGet())[name]).toEqual({ [name]: 'v1' });
    } finally {
      delete process.env[name];
    }
  });

  it('with a prefix hides the other variables and reads changes live', async () => {
    const prefix = `CAPA_TEST_${randomUUID().slice(0, 8).toUpperCase()}_`;
    const outside = `CAPA_OUT_${randomUUID().slice(0, 8).toUpperCase()}`;
    process.env[outside] = 'no';
    try {
      const s = buildComponent<SecretStore>(`name: e\ntype: secretstores.local.env\nmetadata:\n  prefix: ${prefix}\n`);
      await s.init();
      await expect(s.get({ key: outside })).rejects.toMatchObject({ kind: 'not-found' });
      expect(await s.bulkGet()).toEqual({});
      process.env[`${prefix}LATE`] = 'yes';
      expect(await s.get({ key: 'LATE' })).toEqual({ LATE: 'yes' });
      expect(await s.bulkGet()).toEqual({ LATE: { LATE: 'yes' } });
    } finally {
      delete process.env[outside];
      delete process.env[`${prefix}LATE`];
    }
  });
});
