import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';
import { errorsOf, load, registry } from './helpers.js';

describe('loadConfigText', () => {
  it('a YAML syntax error names file:line:col', () => {
    expect(errorsOf('listeners:\n  - name: a\n   port: 1\n')[0]).toMatch(/^sidecar\.yaml:3:\d+: /);
    expect(errorsOf('app: { id: x\n')[0]).toMatch(/^sidecar\.yaml:\d+:\d+: /);
  });

  it('a duplicate key is an error', () => {
    expect(errorsOf('mode: sidecar\nmode: proxyless\n')).toEqual(['sidecar.yaml:2:1: Map keys must be unique']);
  });

  it('the ConfigError message carries every detail line', () => {
    try {
      load('mode: x\nlogLevel: y\n');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const e = err as ConfigError;
      expect(e.details).toHaveLength(2);
      expect(e.message).toBe(`invalid configuration sidecar.yaml (2 problems)\n  ${e.details.join('\n  ')}`);
    }
  });

  it('anchors and aliases work; an error through an alias points at the alias', () => {
    const ok = load('clusters:\n  - { name: a, connectTimeout: &t 2s }\n  - { name: b, connectTimeout: *t }\n');
    expect(ok.snapshot.clusters.b!.connectTimeoutMs).toBe(2000);
    const text = 'clusters:\n  - { name: a, connectTimeout: &t 5 }\n  - { name: b, connectTimeout: *t }\n';
    expect(errorsOf(text)).toEqual([
      expect.stringMatching(/^sidecar\.yaml:2:35: clusters\[0\]\.connectTimeout: expected a duration/),
      expect.stringMatching(/^sidecar\.yaml:3:32: clusters\[1\]\.connectTimeout: expected a duration/),
    ]);
  });

  it('returns the parsed config next to the Snapshot', () => {
    const r = load('app: { id: a }\ndrainTime: 5s\n');
    expect(r.config.drainTime).toBe(5000);
    expect(r.snapshot.drainTimeMs).toBe(5000);
  });
});

describe('loadConfigFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'capa-load-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names the path in messages', () => {
    const p = join(dir, 'bad.yaml');
    writeFileSync(p, 'concurrency: many\n');
    expect(() => loadConfigFile(p, { filters: registry, env: {} })).toThrow(`${p}:1:14: concurrency: expected a worker count 1-1024, got "many"`);
  });

  it('a missing file is a ConfigError', () => {
    expect(() => loadConfigFile(join(dir, 'none.yaml'), { filters: registry })).toThrow(ConfigError);
    expect(() => loadConfigFile(join(dir, 'none.yaml'), { filters: registry })).toThrow(/cannot read config file .*none\.yaml: ENOENT/);
  });
});
